"""OSV records: full range semantics kept, real feeds read right, broken records counted."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.advisories import (
    Advisory,
    CvssType,
    Ecosystem,
    IngestStats,
    Note,
    RangeType,
    Severity,
    SeveritySource,
    SkipReason,
    Status,
    osv,
)
from regsweep.matcher.versions.interface import Scheme
from tests import paths
from tests.matcher.advisories.helpers import by_id, events, load_all

INTRO, FIX, LAST, LIMIT = "introduced", "fixed", "last_affected", "limit"

# --- every event combination (synthetic/event-combinations.json) ----------------------------


@pytest.mark.parametrize(
    ("record", "expected_events", "status"),
    [
        ("SYN-INTRODUCED-ONLY", [(INTRO, "1.0")], Status.UNFIXED),
        ("SYN-INTRODUCED-FIXED", [(INTRO, "0"), (FIX, "1.2")], Status.FIXED),
        ("SYN-LAST-AFFECTED", [(INTRO, "0"), (LAST, "1.4")], Status.UNKNOWN),
        ("SYN-LIMIT", [(INTRO, "1.0"), (LIMIT, "2.0")], Status.UNKNOWN),
        (
            "SYN-MULTI-INTERVAL",
            [(INTRO, "1.0"), (FIX, "1.1"), (INTRO, "2.0"), (FIX, "2.1"), (INTRO, "3.0")],
            Status.FIXED,
        ),
        (
            "SYN-OUT-OF-ORDER",
            [(FIX, "2.0"), (INTRO, "1.0"), (FIX, "1.5"), (INTRO, "0")],
            Status.FIXED,
        ),
        (
            "SYN-MIXED-FIXED-LAST-AFFECTED",
            [(INTRO, "0"), (LAST, "1.0"), (INTRO, "2.0"), (FIX, "2.2")],
            Status.FIXED,
        ),
    ],
)
def test_events_are_kept_exactly_in_feed_order(
    synthetic: dict[str, Advisory],
    record: str,
    expected_events: list[tuple[str, str]],
    status: Status,
) -> None:
    """Invariant: every event kind survives, in feed order and unsorted (sorting needs the
    scheme and happens at index build); the status summarises what the events say."""
    adv = synthetic[record]
    assert events(adv) == expected_events
    assert adv.affected[0].status is status


def test_several_ranges_keep_their_types_and_git_contributes_only_versions(
    synthetic: dict[str, Advisory],
) -> None:
    """Invariant: ECOSYSTEM and SEMVER ranges are both kept; a GIT range is dropped but the
    ``versions`` list (where osv.dev expands it) is kept."""
    aff = synthetic["SYN-SEVERAL-RANGES"].affected[0]
    assert [r.type for r in aff.ranges] == [RangeType.ECOSYSTEM, RangeType.SEMVER]
    assert aff.versions == ["0.9", "2.0.1"]
    git_only = synthetic["SYN-GIT-ONLY"].affected[0]
    assert git_only.ranges == [] and git_only.versions == ["1.0"]
    assert git_only.status is Status.UNKNOWN


def test_several_affected_entries_are_kept_and_unknown_ones_dropped(
    synthetic: dict[str, Advisory],
) -> None:
    """Invariant: one record may list a package several times (one entry per interval) and
    several ecosystems; an unknown ecosystem drops only its own entry."""
    adv = synthetic["SYN-SEVERAL-AFFECTED"]
    assert [(a.ecosystem, a.package) for a in adv.affected] == [
        ("npm", "left-pad"),
        ("npm", "left-pad"),
        ("Debian:12", "left-pad"),
    ]
    assert adv.affected[2].scheme is Scheme.DPKG
    assert adv.source == "osv:npm"  # the first kept entry names the feed


def test_versions_only_entry_has_no_ranges(synthetic: dict[str, Advisory]) -> None:
    """Invariant: an explicit ``versions`` list is kept on its own, status unknown."""
    aff = synthetic["SYN-VERSIONS-ONLY"].affected[0]
    assert aff.ranges == [] and aff.versions == ["1.0", "1.1"]
    assert aff.status is Status.UNKNOWN


def test_yaml_scalars_stay_strings() -> None:
    """Invariant: YAML never mistypes a version or a name (``1.10`` is not the float 1.1,
    ``0`` not an int, ``on`` not True), and YAML timestamps parse like JSON ones."""
    (adv,), stats = load_all("synthetic/yaml-scalars.yaml")
    aff = adv.affected[0]
    assert aff.package == "on"
    assert events(adv) == [(INTRO, "0"), (FIX, "1.10")]
    assert aff.versions == ["1.0", "2", "1.9"]
    assert adv.modified == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert adv.published == datetime(2024, 1, 1, tzinfo=UTC)
    assert adv.summary is None and adv.aliases == []
    assert stats.formats == {"osv-yaml": 1}


# --- severity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "severity", "source", "vendor_word"),
    [
        # database_specific beats a vendor word, which beats CVSS.
        ("SYN-SEVERITY-PREFERENCE", Severity.MEDIUM, SeveritySource.DATABASE_SPECIFIC, "MODERATE"),
        # per-package ratings (low, Important) beat CVSS; the worst is reported.
        ("SYN-SEVERITY-AFFECTED-ONLY", Severity.HIGH, SeveritySource.AFFECTED, None),
        ("SYN-SEVERITY-V2-ONLY", Severity.HIGH, SeveritySource.CVSS_V2, None),
        # v4 is kept but not scored: no rating can be derived from it.
        ("SYN-SEVERITY-V4-ONLY", Severity.UNKNOWN, None, None),
        ("SYN-SEVERITY-INVALID-VECTOR", Severity.UNKNOWN, None, None),
    ],
)
def test_severity_comes_from_the_most_specific_source(
    synthetic: dict[str, Advisory],
    record: str,
    severity: Severity,
    source: SeveritySource | None,
    vendor_word: str | None,
) -> None:
    """Invariant: a vendor's own rating is preferred to one computed from CVSS, and
    ``severity_source`` always says which one was used."""
    adv = synthetic[record]
    assert (adv.severity, adv.severity_source, adv.severity_vendor) == (
        severity,
        source,
        vendor_word,
    )


def test_per_package_severity_is_kept_on_the_entry(synthetic: dict[str, Advisory]) -> None:
    """Invariant: a per-package rating stays with its package (DHI, Red Hat write them)."""
    a, b = synthetic["SYN-SEVERITY-AFFECTED-ONLY"].affected
    assert (a.severity, b.severity) == (Severity.LOW, Severity.HIGH)


def test_vectors_are_kept_even_when_unscored(synthetic: dict[str, Advisory]) -> None:
    """Invariant: a v4 or malformed vector is kept with score null, never dropped."""
    (v4,) = synthetic["SYN-SEVERITY-V4-ONLY"].cvss
    assert (v4.type, v4.score) == (CvssType.V4, None)
    (bad,) = synthetic["SYN-SEVERITY-INVALID-VECTOR"].cvss
    assert (bad.vector, bad.score) == ("CVSS:3.1/AV:N/AC:L", None)


# --- real feeds -----------------------------------------------------------------------------


def test_debian_dsa_is_scoped_per_release_by_source_package() -> None:
    """Invariant: a DSA becomes one entry per Debian release, keyed by source package, with
    the CVEs it fixes in ``related``."""
    advisories, _ = load_all("osv/debian")
    dsa = by_id(advisories)["DSA-5044-1"]
    assert dsa.source == "osv:Debian"
    assert [(a.ecosystem, a.release, a.package) for a in dsa.affected] == [
        ("Debian:10", "10", "firefox-esr"),
        ("Debian:11", "11", "firefox-esr"),
    ]
    assert dsa.affected[1].fixed_versions() == ["91.5.0esr-1~deb11u1"]
    assert dsa.affected[1].status is Status.FIXED
    assert "CVE-2022-22751" in dsa.related and dsa.aliases == []
    assert dsa.severity is Severity.UNKNOWN and dsa.severity_source is None


def test_ubuntu_pro_entries_join_the_base_release_and_keep_vendor_priority() -> None:
    """Invariant: Ubuntu Pro fixes are keyed under the base release with ``variant="pro"``,
    the as-written ecosystem is kept, and Ubuntu's priority (a vendor word) rates it."""
    advisories, _ = load_all("osv/ubuntu")
    adv = by_id(advisories)["UBUNTU-CVE-2014-9913"]
    pro, plain = adv.affected
    assert (pro.ecosystem, pro.variant, pro.ecosystem_as_written) == (
        "Ubuntu:14.04",
        "pro",
        "Ubuntu:Pro:14.04:LTS",
    )
    assert (plain.ecosystem, plain.variant) == ("Ubuntu:16.04", None)
    assert (adv.severity, adv.severity_source, adv.severity_vendor) == (
        Severity.LOW,
        SeveritySource.VENDOR,
        "negligible",
    )
    assert adv.upstream == ["CVE-2014-9913"]
    assert adv.cvss[0].score == 4.0
    netty = by_id(advisories)["UBUNTU-CVE-2022-24823"]
    # An entry without a fix (14.04 Pro: introduced 0 only) is unfixed, not dropped.
    assert [a.status for a in netty.affected][:2] == [Status.UNFIXED, Status.FIXED]
    # Ubuntu repeats identical CVSS entries: kept once.
    assert len(netty.cvss) == 1


def test_ghsa_records_across_language_ecosystems() -> None:
    """Invariant: GHSA records of every supported language ecosystem are read with their
    scheme, name normalisation and GHSA's severity word (MODERATE → MEDIUM)."""
    advisories, stats = load_all("osv/ghsa")
    got = by_id(advisories)
    assert len(got) == 9  # the SwiftURL record is the tenth
    maven = got["GHSA-32qq-m9fh-f74w"]
    assert [a.package for a in maven.affected] == [
        "com.baomidou:mybatis-plus",
        "com.baomidou:mybatis-plus-copy",
    ]
    assert maven.affected[0].scheme is Scheme.MAVEN and maven.severity is Severity.CRITICAL
    nuget = got["GHSA-266m-wp2v-x7mq"].affected[0]
    assert nuget.package == "microsoft.netcore.app.runtime.linux-arm"
    assert nuget.package_as_written == "Microsoft.NetCore.App.Runtime.linux-arm"
    php = got["GHSA-wjx8-cgrm-hh8p"]
    assert {a.scheme for a in php.affected} == {Scheme.COMPOSER}
    assert [events(php, i) for i in (0, 1)] == [
        [(INTRO, "4.0.0"), (FIX, "4.4.46")],
        [(INTRO, "4.5.0"), (FIX, "4.8.6")],
    ]
    go = got["GHSA-4v7x-pqxf-cx7m"]
    assert [events(go, i) for i in (0, 1)] == [
        [(INTRO, "0"), (FIX, "1.21.9")],
        [(INTRO, "1.22.0-0"), (FIX, "1.22.2")],
    ]
    spring = got["GHSA-xx65-cc7g-9pfp"]
    assert (spring.severity, spring.severity_vendor) == (Severity.MEDIUM, "MODERATE")
    temporal = got["GHSA-f5pg-7wfw-84q9"].cvss[0]
    assert temporal.score == 9.8  # vector with temporal metrics and a trailing "/"
    assert stats.unknown_ecosystems == {"SwiftURL": 3}
    assert stats.skipped == {SkipReason.UNKNOWN_ECOSYSTEM: 1}


def test_pypi_yaml_keeps_ecosystem_range_and_drops_git_range() -> None:
    """Invariant: PyPA YAML records read like JSON; withdrawn ones are skipped, counted."""
    advisories, stats = load_all("osv/pypi")
    got = by_id(advisories)
    assert set(got) == {"PYSEC-2017-5", "PYSEC-2020-342"}
    vault = got["PYSEC-2017-5"]
    assert events(vault) == [(INTRO, "0"), (FIX, "1.0.5")]
    assert vault.affected[0].versions[-1] == "1.0.4"
    assert vault.modified == datetime(2021, 7, 5, 0, 1, 14, 915465, tzinfo=UTC)
    assert stats.notes[Note.GIT_RANGE_DROPPED] == 1
    assert stats.skipped == {SkipReason.WITHDRAWN: 1}


def test_go_zero_time_is_read_as_absent() -> None:
    """Invariant: Go's ``0001-01-01`` placeholder is null, not a date 2000 years old."""
    advisories, stats = load_all("osv/go")
    gin = by_id(advisories)["GO-2020-0001"]
    assert gin.modified is None
    assert gin.published == datetime(2021, 4, 14, 20, 4, 52, tzinfo=UTC)
    assert gin.affected[0].ecosystem == "Go" and gin.affected[0].scheme is Scheme.SEMVER
    # GO-2020-0001: modified; GO-2026-4806: modified and published.
    assert stats.notes[Note.PLACEHOLDER_TIMESTAMP] == 3
    assert stats.sources["osv:Go"].newest_modified is None


def test_dhi_multi_interval_last_affected_and_empty_ranges() -> None:
    """Invariant: DHI's multi-interval SEMVER ranges keep every pair; an empty ``events``
    range is dropped while the entry's ``versions`` survive; an entry left with nothing is
    kept and noted (the index decides what "no version information" means)."""
    advisories, stats = load_all("osv/dhi")
    got = by_id(advisories)
    spark = got["CVE-2019-10099"].affected[0]
    assert spark.family is Ecosystem.DHI and spark.ranges[0].type is RangeType.SEMVER
    assert len(spark.ranges[0].events) == 10
    versions_only = got["CVE-2020-27218"].affected[0]
    assert versions_only.ranges == [] and versions_only.versions == ["2.4.8", "3.0.3"]
    empty = got["GHSA-2r7g-8hpc-rpq9"].affected[0]
    assert empty.ranges == [] and empty.versions == []
    assert stats.notes[Note.EMPTY_RANGE_DROPPED] == 2
    assert stats.notes[Note.AFFECTED_WITHOUT_VERSIONS] == 1
    node = got["CVE-2024-22018"]
    assert (node.severity, node.severity_source) == (Severity.LOW, SeveritySource.AFFECTED)


def test_chainguard_osv_splits_into_chainguard_and_wolfi_entries() -> None:
    """Invariant: one Chainguard record may cover Chainguard and Wolfi packages; each entry
    keeps its own ecosystem (both apk)."""
    (adv,), _ = load_all("osv/chainguard")
    assert [a.ecosystem for a in adv.affected] == ["Chainguard", "Chainguard", "Wolfi", "Wolfi"]
    assert {a.scheme for a in adv.affected} == {Scheme.APK}
    assert adv.upstream == ["CVE-2025-32464", "GHSA-frg5-h47x-75j9"]


def test_crates_record_scores_its_cvss() -> None:
    """Invariant: a record with only a CVSS vector is rated from the computed base score."""
    advisories, stats = load_all("osv/crates")
    (adv,) = advisories
    assert adv.cvss[0].score == 8.1
    assert (adv.severity, adv.severity_source) == (Severity.HIGH, SeveritySource.CVSS_V3)
    assert stats.skipped == {SkipReason.WITHDRAWN: 1}


def test_include_withdrawn_yields_withdrawn_records_with_their_date() -> None:
    """Invariant: asked for, withdrawn records come through marked (to delete them from an
    index being updated)."""
    advisories, stats = load_all("osv/crates", include_withdrawn=True)
    withdrawn = by_id(advisories)["RUSTSEC-2020-0053"]
    assert withdrawn.withdrawn == datetime(2021, 4, 19, 12, 0, tzinfo=UTC)
    assert SkipReason.WITHDRAWN not in stats.skipped


# --- broken records -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("malformed.json", SkipReason.MALFORMED_JSON),
        ("malformed.yaml", SkipReason.MALFORMED_YAML),
        ("missing-id.json", SkipReason.MISSING_ID),
        ("unknown-ecosystem.json", SkipReason.UNKNOWN_ECOSYSTEM),
        ("withdrawn.json", SkipReason.WITHDRAWN),
        ("bad-event-two-keys.json", SkipReason.BAD_EVENT),
        ("bad-event-unknown-key.json", SkipReason.BAD_EVENT),
        ("bad-event-empty-version.json", SkipReason.BAD_EVENT),
        ("bad-range-no-introduced.json", SkipReason.BAD_RANGE),
        ("wrong-type.json", SkipReason.INVALID_RECORD),
        ("no-affected.json", SkipReason.NO_AFFECTED),
        ("not-osv.json", SkipReason.UNSUPPORTED_FORMAT),
        ("wolfi-advisory.yaml", SkipReason.UNSUPPORTED_FORMAT),
    ],
)
def test_broken_record_is_skipped_with_its_reason(file: str, reason: SkipReason) -> None:
    """Invariant: a bad record yields nothing, is counted under the right reason, and its
    location is kept as an example; loading never raises for it."""
    advisories, stats = load_all(f"broken/{file}")
    assert advisories == []
    assert stats.skipped == {reason: 1}
    (example,) = stats.examples
    assert example.location.endswith(file) or file in example.location
    assert example.detail


def test_unknown_ecosystems_are_counted_by_name() -> None:
    """Invariant: every unknown ecosystem string is reported with its count, including a
    known family that lacks its mandatory release (``Ubuntu:Pro``)."""
    _, stats = load_all("broken/unknown-ecosystem.json")
    assert stats.unknown_ecosystems == {"Hackage": 1, "Ubuntu:Pro": 1}


# --- robustness -----------------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_event_keys = st.sampled_from([INTRO, FIX, LAST, LIMIT, "fixd", ""])
_osv_like = st.fixed_dictionaries(
    {"id": st.text(max_size=6)},
    optional={
        "withdrawn": st.none() | st.text(max_size=4),
        "modified": st.text(max_size=25),
        "severity": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu", "x"]),
                    "score": st.text(max_size=30),
                }
            ),
            max_size=2,
        ),
        "affected": st.lists(
            st.fixed_dictionaries(
                {
                    "package": st.fixed_dictionaries(
                        {
                            "ecosystem": st.sampled_from(
                                ["PyPI", "Debian:12", "Ubuntu:Pro", "Nope", ""]
                            ),
                            "name": st.text(max_size=6),
                        }
                    )
                },
                optional={
                    "ranges": st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT", "X"]),
                                "events": st.lists(
                                    st.dictionaries(_event_keys, st.text(max_size=4), max_size=2),
                                    max_size=4,
                                ),
                            }
                        ),
                        max_size=3,
                    ),
                    "versions": st.lists(st.text(max_size=4), max_size=3),
                    "database_specific": _json,
                },
            ),
            max_size=3,
        ),
        "database_specific": _json,
    },
)


@given(doc=_osv_like | _json)
def test_arbitrary_documents_never_raise_and_every_record_is_accounted_for(doc: object) -> None:
    """Invariant: whatever the JSON, reading it neither raises nor loses a record silently:
    each top-level record either becomes an advisory or is one counted skip."""
    stats = IngestStats()
    out = osv.read_json(msgspec.json.encode(doc), "fuzz.json", stats)
    expected = len(doc) if isinstance(doc, list) else 1
    if stats.skipped.get(SkipReason.INVALID_RECORD):
        # A list fails as a whole when one element has a wrong type (one decode call).
        assert out == [] and stats.skipped_total == 1
    else:
        assert len(out) + stats.skipped_total == expected
    for adv in out:
        assert adv.id and adv.affected
        for aff in adv.affected:
            for r in aff.ranges:
                assert any(e.kind.value == INTRO for e in r.events)


# --- range bounds the version scheme cannot order ------------------------------------------


def test_a_bound_the_scheme_cannot_order_drops_its_range_and_is_named() -> None:
    """Any bound (fixed, introduced, last_affected, limit) the package's scheme cannot order
    drops the range it is in, whole, and is listed with the record, package, entry and the
    scheme's objection; the entry keeps its other ranges and its versions list; an entry
    left with nothing is dropped; ``introduced: 0`` and a ``*`` limit need no key."""
    rng = [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.-r2"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "2.0-r0"}, {"fixed": "2.1-r0"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "3.0-r0"}, {"limit": "*"}]},
    ]
    record = {
        "id": "SYN-REFUSED",
        "affected": [
            {"package": {"ecosystem": "Alpine:v3.20", "name": "a"}, "ranges": rng},
            {
                "package": {"ecosystem": "Alpine:v3.20", "name": "b"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "x y"}, {"fixed": "2"}]}
                ],
            },
            {
                "package": {"ecosystem": "Alpine:v3.20", "name": "c"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1-"}]}
                ],
                "versions": ["1.0-r0"],
            },
        ],
    }
    stats = IngestStats()
    (adv,) = osv.read_json(msgspec.json.encode(record), "f.json", stats)
    assert [(a.package, len(a.ranges), a.versions) for a in adv.affected] == [
        ("a", 2, []),
        ("c", 0, ["1.0-r0"]),
    ]
    assert events(adv, 0, 0) == [(INTRO, "2.0-r0"), (FIX, "2.1-r0")]
    assert [
        (r.advisory, r.package, r.event, r.version, r.location) for r in stats.refused_versions
    ] == [
        ("SYN-REFUSED", "a", FIX, "1.0.-r2", "f.json (affected[0], Alpine:v3.20)"),
        ("SYN-REFUSED", "b", INTRO, "x y", "f.json (affected[1], Alpine:v3.20)"),
        ("SYN-REFUSED", "c", LAST, "1-", "f.json (affected[2], Alpine:v3.20)"),
    ]
    assert all(r.reason for r in stats.refused_versions)
    assert stats.skipped == {}


def test_a_record_whose_every_range_is_refused_is_skipped_not_read_as_affecting_nothing() -> None:
    """osv.dev's Alpine record of CVE-2019-16935, python2 in v3.11 fixed in the misspelt
    ``2.7.16-33``: no advisory at all (``bad_version``), as the secdb reader does with the
    same entry; never a record with no range, which the index would hold as affecting
    nothing. The record of CVE-2019-16056 keeps its python3 entries."""
    got, stats = load_all(paths.DATA / "osv-alpine")
    assert [a.id for a in got] == ["ALPINE-CVE-2019-16056"]
    assert [(a.ecosystem, a.package) for a in got[0].affected] == [
        ("Alpine:v3.8", "python3"),
        ("Alpine:v3.9", "python3"),
        ("Alpine:v3.10", "python3"),
        ("Alpine:v3.11", "python3"),
    ]
    assert stats.skipped == {SkipReason.BAD_VERSION: 1}
    assert [(r.advisory, r.package, r.version) for r in stats.refused_versions] == [
        ("ALPINE-CVE-2019-16056", "python2", "2.7.16-33"),
        ("ALPINE-CVE-2019-16935", "python2", "2.7.16-33"),
    ]
    assert stats.refused_versions[0].reason == "'-' may only start an '-rN' revision at offset 6"
