"""Extended: ingest all of ``../shared/data/advisories`` (~30k advisories) when present.

Skipped on machines without the shared folder (``shared_data`` fixture). Takes a few
seconds: it is the one test here that reads more than a handful of files.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from regsweep.matcher.advisories import EventKind, SkipReason, Status, load
from regsweep.matcher.advisories.wolfi import SOURCE as WOLFI_YAML

# Lower bounds from the corpus README (records per feed, less withdrawn ones): a reader
# that silently dropped a share of a feed would fall below them.
MINIMUM_RECORDS = {
    "osv:Debian": 8_800,
    "osv:Go": 4_200,
    "osv:PyPI": 2_600,
    "osv:crates.io": 1_150,
    "osv:DHI": 650,
    "osv:Ubuntu": 5,
    "osv:Chainguard": 3,
    "secdb:Alpine": 11_500,
    # Before supersession by the advisory documents (see below).
    "secdb:Wolfi": 50,
    "secdb:Chainguard": 150,
    WOLFI_YAML: 20_000,
}

# What real, published feeds may legitimately produce; a parse failure is not among them.
EXPECTED_SKIPS = {
    SkipReason.WITHDRAWN,
    SkipReason.UNKNOWN_ECOSYSTEM,  # GHSA's SwiftURL
    SkipReason.NO_AFFECTED,  # a DHI record without "affected"
    SkipReason.BAD_SECFIX,  # alpine-secdb v3.6 heimdal lists a version with no ids
    SkipReason.BAD_VERSION,  # Wolfi opa-envoy's fixed-version "1.1.0-r1-r0"
    SkipReason.SUPERSEDED,  # Wolfi's secdb records that its advisory documents cover
}


def test_whole_shared_corpus_ingests_cleanly(shared_data: Path) -> None:
    """Invariant: every real feed in the corpus reads without a crash or a parse failure,
    each source yields a plausible number of records, and every advisory is well formed
    (an id, a source, an affected package, every range opened by an ``introduced``)."""
    records, stats = load(shared_data / "advisories")
    count = 0
    for adv in records:
        count += 1
        assert adv.id and adv.source and adv.affected
        for aff in adv.affected:
            assert aff.package and aff.ecosystem
            for rng in aff.ranges:
                assert any(e.kind is EventKind.INTRODUCED for e in rng.events), adv.id
    assert count == stats.records
    for source, minimum in MINIMUM_RECORDS.items():
        read = stats.sources[source].records
        if source == "secdb:Wolfi":
            # Its records that Wolfi's advisory documents cover are superseded, not lost.
            read += stats.skipped.get(SkipReason.SUPERSEDED, 0)
        assert read >= minimum, (source, stats.sources.get(source))
    assert set(stats.skipped) <= EXPECTED_SKIPS, stats.report()
    assert 40 <= stats.skipped[SkipReason.WITHDRAWN] <= 100
    assert set(stats.unknown_ecosystems) <= {"SwiftURL"}
    # Freshness is reported per source (Go's placeholders read as null, not year 1).
    assert stats.sources["osv:Debian"].newest_modified is not None
    newest_go = stats.sources["osv:Go"].newest_modified
    assert newest_go is None or newest_go.year >= 2020


# An advisory entry as wolfictl writes it: a line of its own, two spaces and a dash.
_ADVISORY_LINE = re.compile(rb"^  - id: ", re.MULTILINE)


def test_every_wolfi_advisory_document_is_read(shared_data: Path) -> None:
    """Invariant: all of wolfi-dev/advisories' documents (1,278 in the corpus) read without
    a crash; every advisory in them (counted here by line, independently of the reader)
    is either a record or a counted skip, and only real data typos are skipped. The counts
    per status are printed (``pytest -s``) for the record."""
    root = shared_data / "advisories" / "wolfi-yaml"
    files = sorted(root.glob("*.advisories.yaml"))
    written = sum(len(_ADVISORY_LINE.findall(f.read_bytes())) for f in files)
    records, stats = load(root)
    statuses: Counter[tuple[Status, str | None]] = Counter()
    for adv in records:
        assert adv.source == WOLFI_YAML and adv.id.startswith("CGA-") and adv.modified
        (aff,) = adv.affected
        statuses[aff.status, aff.vendor_status] += 1
    assert len(files) >= 1_200
    assert stats.formats == {"wolfi-advisory-yaml": len(files)}
    assert stats.records + stats.skipped_total == written
    assert set(stats.skipped) <= {SkipReason.BAD_VERSION}, stats.report()
    assert stats.skipped_total <= 5
    assert {status for status, _ in statuses} == {
        Status.FIXED,
        Status.NOT_AFFECTED,
        Status.WILL_NOT_FIX,
        Status.UNFIXED,
        Status.UNKNOWN,
    }
    print(stats.report())
    for (status, vendor), n in sorted(statuses.items()):
        print(f"  {status.value:13} {vendor or '':30} {n}")
