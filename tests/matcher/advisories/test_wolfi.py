"""Wolfi advisory documents (schema 2): the latest event decides; bad input is counted.

Real documents from wolfi-dev/advisories (``wolfi-yaml/real``) cover every event type the
published data uses; ``wolfi-yaml/synthetic`` adds the one it does not (analysis-not-planned)
and the ordering corner cases; ``wolfi-yaml/broken`` holds one fault per advisory or file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.advisories import (
    Advisory,
    Ecosystem,
    Format,
    IngestStats,
    Note,
    SkipReason,
    Status,
)
from regsweep.matcher.advisories.wolfi import SOURCE, EventType, read_document
from regsweep.matcher.index import store
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import Package
from regsweep.matcher.versions import Scheme
from tests.matcher.advisories.helpers import by_id, events, load_all

REAL = "wolfi-yaml/real"
SYNTHETIC = "wolfi-yaml/synthetic"
BROKEN = "wolfi-yaml/broken"


@pytest.fixture(scope="module")
def real() -> dict[str, Advisory]:
    """The real and synthetic documents' advisories, by CGA id."""
    advisories, _ = load_all(REAL, SYNTHETIC)
    return by_id(advisories)


def _verdict(adv: Advisory) -> tuple[Status, str | None, list[list[tuple[str, str]]]]:
    (aff,) = adv.affected
    return aff.status, aff.vendor_status, [events(adv, 0, i) for i in range(len(aff.ranges))]


FROM_ZERO = [[("introduced", "0")]]


@pytest.mark.parametrize(
    ("adv_id", "status", "vendor_status", "ranges"),
    [
        # go-1.21: fixed
        ("CGA-3vqc-vvrp-m34h", Status.FIXED, None, [[("introduced", "0"), ("fixed", "1.21.3-r0")]]),
        # go-1.21: false positive, after a detection
        ("CGA-42fw-c8vq-58fc", Status.NOT_AFFECTED, "false-positive-determination", []),
        # go-1.21: the version line reached end of life
        ("CGA-466j-hmf8-m8wc", Status.WILL_NOT_FIX, "fix-not-planned", FROM_ZERO),
        # go-1.21: confirmed, no fix yet
        ("CGA-wvwh-gjjr-vw5q", Status.UNFIXED, "true-positive-determination", FROM_ZERO),
        # libgcrypt: waiting for upstream
        ("CGA-gfvq-j3vc-vxvm", Status.UNFIXED, "pending-upstream-fix", FROM_ZERO),
        # lua5.3: a detection, then fix-not-planned
        ("CGA-jf7m-8wx7-62m5", Status.WILL_NOT_FIX, "fix-not-planned", FROM_ZERO),
        # bazel-3: only a scanner's detection
        ("CGA-92h6-h6x6-rmh2", Status.UNKNOWN, "detection", FROM_ZERO),
        # synthetic: analysis-not-planned
        ("CGA-aaaa-aaaa-aaaa", Status.UNKNOWN, "analysis-not-planned", FROM_ZERO),
    ],
)
def test_latest_event_type_maps_onto_status_and_ranges(
    real: dict[str, Advisory],
    adv_id: str,
    status: Status,
    vendor_status: str | None,
    ranges: list[list[tuple[str, str]]],
) -> None:
    """Invariant: every event type of the schema has one reading: fixed is a closed range,
    a false positive a statement without ranges, everything else an open range, and the
    event type survives as ``vendor_status`` where the status does not say it."""
    assert _verdict(real[adv_id]) == (status, vendor_status, ranges)


def test_every_schema_event_type_is_covered_by_the_samples(real: dict[str, Advisory]) -> None:
    """Invariant: the samples exercise every event type as a latest event (so a new type in
    ``EventType`` without a sample fails here)."""
    seen = {a.affected[0].vendor_status or "fixed" for a in real.values()}
    assert seen == {t.value for t in EventType}


def test_history_is_superseded_by_the_latest_event(real: dict[str, Advisory]) -> None:
    """coreutils' CVE-2016-2781 went false positive → true positive → fixed: only the fix
    counts; published/modified are the first and last event times."""
    adv = real["CGA-758j-cqx5-pjx9"]
    assert _verdict(adv) == (Status.FIXED, None, [[("introduced", "0"), ("fixed", "9.6-r30")]])
    assert adv.published == datetime(2022, 10, 11, 20, 29, 31, tzinfo=UTC)
    assert adv.modified == datetime(2025, 3, 21, 15, 13, 32, tzinfo=UTC)


def test_advisory_fields_and_ecosystem(real: dict[str, Advisory]) -> None:
    """Invariant: the CGA id, aliases in order, source ``wolfi-yaml:Wolfi``; the package is
    the document's (origin) package in the rolling Wolfi ecosystem, apk-ordered."""
    adv = real["CGA-ggw5-6vrf-vmqr"]
    assert (adv.id, adv.source, adv.aliases) == (
        "CGA-ggw5-6vrf-vmqr",
        "wolfi-yaml:Wolfi",
        ["CVE-2022-38533", "GHSA-7v55-wrg9-5rfp"],
    )
    (aff,) = adv.affected
    assert (aff.ecosystem, aff.family, aff.release, aff.scheme, aff.package) == (
        "Wolfi",
        Ecosystem.WOLFI,
        None,
        Scheme.APK,
        "binutils",
    )
    assert aff.fixed_versions() == ["2.39-r2"]
    # A repeated alias is kept once; an offset timestamp is normalised to UTC.
    synthetic = real["CGA-cccc-cccc-cccc"]
    assert synthetic.aliases == ["CVE-2099-0003"]
    assert synthetic.modified == datetime(2025, 3, 2, 0, 0, tzinfo=UTC)


def test_multiple_advisories_per_document_and_schema_spellings() -> None:
    """Invariant: every advisory of a document is one record; ``2``, ``2.0.1`` and ``2.0.2``
    are all schema 2."""
    advisories, stats = load_all(f"{REAL}/binutils.advisories.yaml", f"{REAL}/gmp.advisories.yaml")
    assert [a.id for a in advisories] == [
        "CGA-24mm-hr8r-vvp5",
        "CGA-2g36-84g3-35r2",
        "CGA-966m-f429-q5jc",
        "CGA-ggw5-6vrf-vmqr",
        "CGA-gxcj-jj66-mxg7",
        "CGA-x8jg-r778-x54g",
        "CGA-wg83-86mw-38g8",
    ]
    assert stats.formats == {Format.WOLFI_ADVISORY_YAML.value: 2}
    assert stats.sources[SOURCE].records == 7
    assert stats.skipped == {} and stats.notes == {}


def test_latest_is_by_timestamp_not_by_position(real: dict[str, Advisory]) -> None:
    """postgresql-13's CVE-2017-8806 lists a 2024 detection before a 2023 false positive:
    the newer detection decides (as in wolfictl), and the disorder is noted."""
    assert _verdict(real["CGA-2vjx-23jm-4246"]) == (Status.UNKNOWN, "detection", FROM_ZERO)
    _, stats = load_all(f"{REAL}/postgresql-13.advisories.yaml")
    assert stats.notes == {Note.EVENTS_OUT_OF_ORDER: 1}


def test_equal_timestamps_the_last_written_wins(real: dict[str, Advisory]) -> None:
    """A fixed event and a false positive at the same second: the later one in the list."""
    assert _verdict(real["CGA-bbbb-bbbb-bbbb"]) == (
        Status.NOT_AFFECTED,
        "false-positive-determination",
        [],
    )


def test_superseded_unknown_event_type_is_noted_not_fatal(real: dict[str, Advisory]) -> None:
    """An older event of an unknown type does not matter once a known one follows it."""
    assert _verdict(real["CGA-cccc-cccc-cccc"])[0] is Status.FIXED
    _, stats = load_all(SYNTHETIC)
    assert stats.notes == {Note.SUPERSEDED_UNKNOWN_EVENT: 1}
    assert stats.skipped == {}


def test_bad_advisories_cost_only_themselves() -> None:
    """Invariant: one fault per advisory: each is skipped under its own reason with its
    place; the good advisory of the same document is read; nothing raises."""
    advisories, stats = load_all(f"{BROKEN}/broken-pkg.advisories.yaml")
    assert [a.id for a in advisories] == ["CGA-good-good-good"]
    assert stats.skipped == {
        SkipReason.MISSING_ID: 1,
        SkipReason.INVALID_RECORD: 2,  # aliases a string; an advisory that is a string
        SkipReason.BAD_EVENT: 6,  # none; no timestamp; bad date; no type; no fixed-version;
        # an event that is a string
        SkipReason.UNKNOWN_EVENT_TYPE: 1,
        SkipReason.BAD_VERSION: 1,
    }
    details = {(e.reason, e.location.split("(")[-1], e.detail) for e in stats.examples}
    assert (
        SkipReason.UNKNOWN_EVENT_TYPE,
        "broken-pkg CGA-unkn-own0-type)",
        "latest event (event 2) is 'fix-in-progress'",
    ) in details
    assert any(
        r is SkipReason.BAD_VERSION and "'1.18.-r2'" in d and "CGA-badv-ersi-on00" in loc
        for r, loc, d in details
    )
    assert any(r is SkipReason.MISSING_ID and loc == "broken-pkg [1])" for r, loc, _ in details)


@pytest.mark.parametrize(
    ("file", "reason", "fmt"),
    [
        ("no-package-name", SkipReason.INVALID_RECORD, Format.WOLFI_ADVISORY_YAML),
        ("advisories-not-a-list", SkipReason.INVALID_RECORD, Format.WOLFI_ADVISORY_YAML),
        ("schema-3", SkipReason.UNSUPPORTED_FORMAT, Format.WOLFI_ADVISORY_YAML),
        ("truncated", SkipReason.MALFORMED_YAML, Format.MALFORMED),
    ],
)
def test_bad_documents_are_skipped_whole(file: str, reason: SkipReason, fmt: Format) -> None:
    """Invariant: a document that cannot be read at all is one skip, with its path."""
    advisories, stats = load_all(f"{BROKEN}/{file}.advisories.yaml")
    assert advisories == []
    assert stats.skipped == {reason: 1}
    assert stats.formats == {fmt.value: 1}
    (example,) = stats.examples
    assert example.location.endswith(f"{file}.advisories.yaml") and example.detail


def test_schema_1_document_is_recognised_and_not_read() -> None:
    """The pre-2023 shape (VEX statuses keyed by CVE, no schema-version) is not guessed at."""
    advisories, stats = load_all("broken/wolfi-advisory.yaml")
    assert advisories == []
    assert stats.formats == {Format.WOLFI_ADVISORY_YAML.value: 1}
    assert stats.skipped == {SkipReason.UNSUPPORTED_FORMAT: 1}
    assert "schema version None" in stats.examples[0].detail


def test_real_typo_in_a_fixed_version_is_a_bad_version_skip() -> None:
    """opa-envoy's ``1.1.0-r1-r0`` (two revisions) cannot be ordered: that advisory is
    skipped, the document's seven others are read."""
    advisories, stats = load_all(f"{REAL}/opa-envoy.advisories.yaml")
    assert len(advisories) == 7
    assert "CGA-f73f-594w-h296" not in {a.id for a in advisories}
    assert stats.skipped == {SkipReason.BAD_VERSION: 1}
    # Named in full (the examples keep only the first few of a reason), and in the report.
    (refused,) = stats.refused_versions
    assert (refused.advisory, refused.package, refused.version) == (
        "CGA-f73f-594w-h296",
        "opa-envoy",
        "1.1.0-r1-r0",
    )
    assert refused.location.endswith("opa-envoy.advisories.yaml")
    assert refused.reason == "a second '-r' revision at offset 8"
    assert "CGA-f73f-594w-h296 (opa-envoy fixed '1.1.0-r1-r0'" in stats.report()


# --- Wolfi's secdb beside the advisory documents ----------------------------------------------


def test_advisory_documents_supersede_wolfi_secdb_in_either_order() -> None:
    """Invariant: within one load, a secdb:Wolfi record whose package and CVE an advisory
    document covers is dropped (a ``superseded`` skip), whichever is read first; the secdb
    records the documents do not cover (busybox, curl here) are kept."""
    loads = [load_all("secdb/wolfi", REAL), load_all(REAL, "secdb/wolfi")]
    for advisories, stats in loads:
        got = by_id(advisories)
        secdb = sorted(i for i, a in got.items() if a.source == "secdb:Wolfi")
        assert secdb == [
            "Wolfi/busybox/CVE-2022-28391",
            "Wolfi/busybox/CVE-2022-30065",
            "Wolfi/curl/CVE-2022-32221",
            "Wolfi/curl/CVE-2022-42916",
        ]
        # binutils' three secfixes and coreutils' "0" are the documents' now.
        assert stats.skipped[SkipReason.SUPERSEDED] == 4
        assert stats.sources["secdb:Wolfi"].records == 4
        superseded = {
            e.location.split("(")[-1] for e in stats.examples if e.reason.value == "superseded"
        }
        assert "Wolfi/binutils/CVE-2022-38126)" in superseded
    assert sorted(by_id(loads[0][0])) == sorted(by_id(loads[1][0]))


def test_secdb_alone_is_read_unchanged() -> None:
    """Without advisory documents in the load, Wolfi's secdb is not touched."""
    advisories, stats = load_all("secdb/wolfi")
    assert len(advisories) == 8 and SkipReason.SUPERSEDED not in stats.skipped


# --- through the index ----------------------------------------------------------------------


def _apk(name: str, version: str, origin: str | None = None) -> Package:
    return Package(
        name=name,
        version=version,
        type="apk",
        ecosystem="Wolfi",
        source_name=origin,
        source_version=version if origin else None,
    )


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    """An index built from the real and synthetic documents plus Wolfi's secdb sample."""
    advisories, stats = load_all(REAL, SYNTHETIC, "secdb/wolfi")
    path = tmp_path / "adv.lmdb"
    store.build(path, advisories, stats)
    return Matcher(store.AdvisoryIndex(path))


def _found(matcher: Matcher, pkg: Package) -> dict[str, str]:
    (found,), errors = matcher.match([pkg])
    assert errors == []
    return {a.id: a.status for a in found}


def test_fixed_matches_below_the_fix_and_not_at_or_above_it(matcher: Matcher) -> None:
    """binutils-gold (origin binutils): CVE-2022-38533 is fixed in 2.39-r2."""
    below = _found(matcher, _apk("binutils-gold", "2.39-r1", "binutils"))
    at = _found(matcher, _apk("binutils-gold", "2.39-r2", "binutils"))
    above = _found(matcher, _apk("binutils", "2.40-r3"))
    assert below["CGA-ggw5-6vrf-vmqr"] == "fixed"
    assert "CGA-ggw5-6vrf-vmqr" not in at and "CGA-ggw5-6vrf-vmqr" not in above
    assert "CGA-966m-f429-q5jc" in at  # fixed in 2.39-r3
    # Every fixed advisory is behind 2.40-r3; the unanalysed detection still matches.
    assert above == {"CGA-gxcj-jj66-mxg7": "unknown"}


def test_false_positive_never_matches(matcher: Matcher) -> None:
    """CVE-2022-38126 is a false positive for binutils, and the secdb's older secfix for it
    (2.39-r1) was superseded: at 2.39-r0 neither reports it."""
    found = _found(matcher, _apk("binutils", "2.39-r0"))
    assert "CGA-24mm-hr8r-vvp5" not in found
    assert "Wolfi/binutils/CVE-2022-38126" not in found
    assert {"CGA-ggw5-6vrf-vmqr", "CGA-966m-f429-q5jc"} <= set(found)
    for version in ("0", "1.21.0-r0", "1.21.99-r9"):
        assert "CGA-42fw-c8vq-58fc" not in _found(matcher, _apk("go-1.21", version))


def test_fix_not_planned_matches_every_version_as_will_not_fix(matcher: Matcher) -> None:
    """lua5.3's CVE-2020-15945 and go-1.21's end-of-life CVEs match whatever the version."""
    for version in ("5.3.0-r0", "5.3.6-r4", "5.3.99-r99"):
        assert _found(matcher, _apk("lua5.3", version)) == {"CGA-jf7m-8wx7-62m5": "will_not_fix"}
    go = _found(matcher, _apk("go-1.21", "1.21.13-r5"))
    assert go["CGA-466j-hmf8-m8wc"] == "will_not_fix"
    assert go["CGA-wvwh-gjjr-vw5q"] == "unfixed"  # true positive, no fix
    assert "CGA-3vqc-vvrp-m34h" not in go  # fixed in 1.21.3-r0


def test_secdb_records_not_covered_still_match(matcher: Matcher) -> None:
    """busybox has no advisory document in the sample: its secdb fixes still apply; and
    coreutils' secdb "0" gave way to the document's fix in 9.6-r30."""
    assert _found(matcher, _apk("busybox", "1.35.0-r2")) == {
        "Wolfi/busybox/CVE-2022-28391": "fixed",
        "Wolfi/busybox/CVE-2022-30065": "fixed",
    }
    assert _found(matcher, _apk("coreutils", "9.6-r29")) == {"CGA-758j-cqx5-pjx9": "fixed"}
    assert _found(matcher, _apk("coreutils", "9.6-r30")) == {}


# --- robustness -----------------------------------------------------------------------------

# What the YAML loader can hand over: strings, None, lists and mappings, nothing else.
_yaml_value = st.recursive(
    st.none() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_event = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.sampled_from(["2025-01-01T00:00:00Z", "2025-01-02T00:00:00+01:00", "x"])
        | _yaml_value,
        "type": st.sampled_from([*EventType, "future-type", ""]) | _yaml_value,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "fixed-version": st.sampled_from(["1.0-r0", "1.0.-r0", ""]) | _yaml_value,
                "type": _yaml_value,
                "note": _yaml_value,
            },
        )
        | _yaml_value,
    },
)
_advisory_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["CGA-xxxx-xxxx-xxxx", ""]) | _yaml_value,
        "aliases": st.lists(st.text(max_size=6), max_size=2) | _yaml_value,
        "events": st.lists(_event | _yaml_value, max_size=3) | _yaml_value,
    },
)
_document = st.fixed_dictionaries(
    {"schema-version": st.sampled_from(["2", "2.0.2", "1", "3.0"]) | _yaml_value},
    optional={
        "package": st.fixed_dictionaries({"name": st.text(max_size=6) | _yaml_value}) | _yaml_value,
        "advisories": st.lists(_advisory_like | _yaml_value, max_size=4) | _yaml_value,
    },
)


@given(doc=_document)
def test_arbitrary_documents_never_raise_and_every_advisory_is_accounted_for(
    doc: dict[str, object],
) -> None:
    """Invariant: whatever the document, reading it never raises, and when the document
    itself is readable, each advisory entry is one record or one counted skip."""
    stats = IngestStats()
    out = read_document(doc, "fuzz.advisories.yaml", stats)
    schema, package, entries = doc["schema-version"], doc.get("package"), doc.get("advisories")
    name = package.get("name") if isinstance(package, dict) else None
    readable = (
        isinstance(schema, str)
        and schema.strip().split(".")[0] == "2"
        and isinstance(name, str)
        and name.strip() != ""
        and isinstance(entries, list)
    )
    if readable:
        assert isinstance(entries, list)
        assert len(out) + stats.skipped_total == len(entries)
    else:
        # Skipped whole (or, with no "advisories" at all, nothing to read).
        assert out == [] and stats.skipped_total <= 1
    for adv in out:
        (aff,) = adv.affected
        assert adv.source == SOURCE and adv.modified is not None
        assert (aff.status is Status.NOT_AFFECTED) == (aff.ranges == [])
