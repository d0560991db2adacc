"""Extended: ingest all of ``../shared/data/advisories`` (~30k advisories) when present.

Skipped on machines without the shared folder (``shared_data`` fixture). Takes a few
seconds: it is the one test here that reads more than a handful of files.
"""

from __future__ import annotations

from pathlib import Path

from regsweep.matcher.advisories import EventKind, SkipReason, load

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
    "secdb:Wolfi": 50,
    "secdb:Chainguard": 150,
}

# What real, published feeds may legitimately produce; a parse failure is not among them.
EXPECTED_SKIPS = {
    SkipReason.WITHDRAWN,
    SkipReason.UNKNOWN_ECOSYSTEM,  # GHSA's SwiftURL
    SkipReason.NO_AFFECTED,  # a DHI record without "affected"
    SkipReason.UNSUPPORTED_FORMAT,  # Wolfi advisory YAML, recognised and not read
    SkipReason.BAD_SECFIX,  # alpine-secdb v3.6 heimdal lists a version with no ids
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
        assert stats.sources[source].records >= minimum, (source, stats.sources.get(source))
    assert set(stats.skipped) <= EXPECTED_SKIPS, stats.report()
    assert 40 <= stats.skipped[SkipReason.WITHDRAWN] <= 100
    assert set(stats.unknown_ecosystems) <= {"SwiftURL"}
    # Freshness is reported per source (Go's placeholders read as null, not year 1).
    assert stats.sources["osv:Debian"].newest_modified is not None
    newest_go = stats.sources["osv:Go"].newest_modified
    assert newest_go is None or newest_go.year >= 2020
