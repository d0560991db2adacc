"""secdb (Alpine, Wolfi, Chainguard): one advisory per (release, package, id); ``0`` means
not affected and is never a vulnerable range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.advisories import (
    Ecosystem,
    IngestStats,
    Note,
    SkipReason,
    Status,
)
from regsweep.matcher.advisories.secdb import distribution_of, read_document, vulnerability_ids
from regsweep.matcher.versions.interface import Scheme
from tests import paths
from tests.matcher.advisories.helpers import by_id, events, load_all


def test_alpine_yaml_becomes_one_advisory_per_package_and_id() -> None:
    """Invariant: ids are ``<ecosystem>/<package>/<vuln id>``, the release comes from the
    file's ``distroversion``, and each fixed version is ``[introduced 0, fixed V)``."""
    advisories, stats = load_all("secdb/alpine/v3.11/main.yaml")
    got = by_id(advisories)
    adv = got["Alpine:v3.11/ansible/CVE-2019-14904"]
    assert (adv.source, adv.aliases) == ("secdb:Alpine", ["CVE-2019-14904"])
    (aff,) = adv.affected
    assert (aff.ecosystem, aff.release, aff.family, aff.scheme) == (
        "Alpine:v3.11",
        "3.11",
        Ecosystem.ALPINE,
        Scheme.APK,
    )
    assert events(adv) == [("introduced", "0"), ("fixed", "2.9.3-r0")]
    assert aff.status is Status.FIXED
    assert stats.formats == {"secdb-yaml": 1}
    # 5 packages: ansible 10, busybox 5, ghostscript 25, lame 6, xen 29 distinct ids
    assert len(advisories) == 10 + 5 + 25 + 6 + 29


def test_id_fixed_in_several_versions_gets_one_range_per_version() -> None:
    """Invariant: a backported fix listed under two versions (busybox CVE-2019-5747 in
    1.29.3-r10 and 1.30.1-r2) is one advisory whose ranges are a union: vulnerable below
    the newest fix (conservative between branches, exact within a release)."""
    advisories, _ = load_all("secdb/alpine/v3.11/main.yaml")
    adv = by_id(advisories)["Alpine:v3.11/busybox/CVE-2019-5747"]
    assert [[(e.kind.value, e.version) for e in r.events] for r in adv.affected[0].ranges] == [
        [("introduced", "0"), ("fixed", "1.30.1-r2")],
        [("introduced", "0"), ("fixed", "1.29.3-r10")],
    ]


def test_xen_lines_with_two_ids_keep_the_second_as_alias() -> None:
    """Invariant: ``CVE-2016-9932 XSA-200`` is the CVE with XSA-200 as alias; a line with
    only an XSA id is keyed by it."""
    advisories, _ = load_all("secdb/alpine/v3.11/main.yaml")
    got = by_id(advisories)
    assert got["Alpine:v3.11/xen/CVE-2016-9932"].aliases == ["CVE-2016-9932", "XSA-200"]
    assert "Alpine:v3.11/xen/XSA-207" in got


def test_fixed_version_zero_is_not_affected_and_has_no_range() -> None:
    """Invariant: secdb ``"0"`` is "not affected": status not_affected, no range at all."""
    advisories, stats = load_all("secdb/alpine-current")
    got = by_id(advisories)
    na = got["Alpine:v3.22/busybox/CVE-2021-42373"]
    (aff,) = na.affected
    assert (aff.status, aff.ranges, aff.versions) == (Status.NOT_AFFECTED, [], [])
    assert got["Alpine:v3.22/busybox/ALPINE-13661"].affected[0].status is Status.FIXED
    assert stats.formats == {"secdb-json": 1}


def test_wolfi_and_chainguard_security_json() -> None:
    """Invariant: Wolfi and Chainguard documents (no distroversion) are told apart by their
    URL; they are rolling (no release), apk-ordered, and ``0`` is not affected there too."""
    advisories, _ = load_all("secdb/wolfi", "secdb/chainguard")
    got = by_id(advisories)
    wolfi = got["Wolfi/busybox/CVE-2022-28391"]
    assert (wolfi.source, wolfi.affected[0].release, wolfi.affected[0].scheme) == (
        "secdb:Wolfi",
        None,
        Scheme.APK,
    )
    assert got["Wolfi/coreutils/CVE-2016-2781"].affected[0].status is Status.NOT_AFFECTED
    cg = got["Chainguard/grafana/CVE-2022-31130"]
    assert cg.source == "secdb:Chainguard" and cg.affected[0].ecosystem == "Chainguard"
    assert got["Chainguard/coreutils/CVE-2016-2781"].affected[0].status is Status.NOT_AFFECTED


def test_bad_secdb_entries_are_skipped_one_by_one() -> None:
    """Invariant: a bad entry costs only itself: the rest of the file is read; typos in ids
    are normalised (and counted); a 0-and-fixed contradiction believes the fix."""
    advisories, stats = load_all("broken/secdb-bad-entries.yaml")
    got = by_id(advisories)
    assert set(got) == {
        "Alpine:v3.99/heimdal/CVE-2017-17439",
        "Alpine:v3.99/xen/XSA-295",
        "Alpine:v3.99/typos/CVE-2019-2426",
        "Alpine:v3.99/typos/CVE-2018-16859",
        "Alpine:v3.99/typos/CVE-2017-17434",
        "Alpine:v3.99/conflict/CVE-2021-0001",
    }
    assert stats.skipped == {SkipReason.BAD_SECFIX: 5}
    assert stats.notes[Note.SECFIX_ID_NORMALISED] == 6
    assert stats.notes[Note.SECFIX_CONFLICT] == 1
    conflict = got["Alpine:v3.99/conflict/CVE-2021-0001"].affected[0]
    assert conflict.status is Status.FIXED and conflict.fixed_versions() == ["2.0-r0"]
    # CVE-2017-17434-1 and -2 are one CVE fixed in two releases of the package.
    rsync = got["Alpine:v3.99/typos/CVE-2017-17434"].affected[0]
    assert rsync.fixed_versions() == ["1.0-r0", "1.0-r1"]


#: Real secdb data with apk fixed versions of both kinds (see its README).
APK_SECDB = paths.DATA / "apk-secdb"


def test_fixed_version_with_digits_after_the_letter_is_read() -> None:
    """Alpine 3.11's fix of CVE-2020-7247, ``6.6.2p1-r0`` (apk-tools 2.10's form), is an
    ordinary range, and nothing about it is refused."""
    advisories, stats = load_all(APK_SECDB / "v3.11" / "main.yaml")
    adv = by_id(advisories)["Alpine:v3.11/opensmtpd/CVE-2020-7247"]
    assert events(adv) == [("introduced", "0"), ("fixed", "6.6.2p1-r0")]
    assert not any(r.package == "opensmtpd" for r in stats.refused_versions)


def test_fixed_version_no_scheme_orders_is_refused_and_named() -> None:
    """python2's ``2.7.16-33`` (a misspelt revision) orders against nothing meaningfully:
    each advisory it was the only fix of is skipped (``bad_version``) and named, with its
    package, version, file and the scheme's objection, in the stats and in the report."""
    advisories, stats = load_all(APK_SECDB / "v3.11" / "main.yaml")
    got = by_id(advisories)
    assert "Alpine:v3.11/python2/CVE-2019-16056" not in got
    assert "Alpine:v3.11/python2/CVE-2019-16935" not in got
    assert events(got["Alpine:v3.11/python2/CVE-2019-9636"])[1] == ("fixed", "2.7.16-r1")
    assert stats.skipped == {SkipReason.BAD_VERSION: 2}
    assert [(r.advisory, r.package, r.version) for r in stats.refused_versions] == [
        ("Alpine:v3.11/python2/CVE-2019-16056", "python2", "2.7.16-33"),
        ("Alpine:v3.11/python2/CVE-2019-16935", "python2", "2.7.16-33"),
    ]
    refused = stats.refused_versions[0]
    assert refused.location.endswith("main.yaml (packages[1])")
    assert refused.reason == "'-' may only start an '-rN' revision at offset 6"
    report = stats.report()
    assert "warning: 2 versions not indexed" in report
    assert "Alpine:v3.11/python2/CVE-2019-16935 (python2 fixed '2.7.16-33', " in report


def test_a_refused_fix_keeps_the_ids_other_fixes_and_never_reads_as_not_affected() -> None:
    """One bad version of several drops only its own range; an id whose only real fix is
    refused is skipped even when it is also listed under ``0``: "not affected" would be an
    assertion the feed never made."""
    doc = {
        "distroversion": "v3.99",
        "packages": [
            {
                "pkg": {
                    "name": "pkg",
                    "secfixes": {
                        "1.0-r1": ["CVE-2020-0001"],
                        "1.0.-r2": ["CVE-2020-0001", "CVE-2020-0002"],
                        "0": ["CVE-2020-0002"],
                    },
                }
            }
        ],
    }
    stats = IngestStats()
    got = by_id(read_document(doc, "v3.99/main.json", stats))
    assert list(got) == ["Alpine:v3.99/pkg/CVE-2020-0001"]
    assert got["Alpine:v3.99/pkg/CVE-2020-0001"].affected[0].fixed_versions() == ["1.0-r1"]
    assert [r.advisory for r in stats.refused_versions] == [
        "Alpine:v3.99/pkg/CVE-2020-0001",
        "Alpine:v3.99/pkg/CVE-2020-0002",
    ]
    assert stats.skipped == {SkipReason.BAD_VERSION: 1}


def test_secdb_without_distribution_is_skipped() -> None:
    """Invariant: a document that cannot be placed in a distribution matches nothing."""
    advisories, stats = load_all("broken/secdb-unknown-distribution.json")
    assert advisories == []
    assert stats.skipped == {SkipReason.UNKNOWN_DISTRIBUTION: 1}


@pytest.mark.parametrize(
    ("line", "ids", "normalised"),
    [
        ("CVE-2019-14904", ["CVE-2019-14904"], False),
        ("CVE-2016-9932 XSA-200", ["CVE-2016-9932", "XSA-200"], False),
        ("XSA-207", ["XSA-207"], False),
        ("CVE_2019-2426", ["CVE-2019-2426"], True),
        ("CVE 2018-16859", ["CVE-2018-16859"], True),
        ("CVE-2017-17434-1", ["CVE-2017-17434"], True),
        ("cve-2020-1234", ["CVE-2020-1234"], True),
        ("CVE-????-?????  XSA-295", ["XSA-295"], True),
        ("CVE-2017-12122 TALOS-2017-0488", ["CVE-2017-12122", "TALOS-2017-0488"], False),
        ("wnpa-sec-2017-18", ["wnpa-sec-2017-18"], False),
        ("ZBX-11023", ["ZBX-11023"], False),
        ("CVE-????-?????", [], True),
        ("fixed a crash", [], False),
    ],
)
def test_vulnerability_ids_of_real_secfixes_lines(
    line: str, ids: list[str], normalised: bool
) -> None:
    """Invariant: every id spelling seen in alpine-secdb yields the canonical id first."""
    assert vulnerability_ids(line) == (ids, normalised)


@pytest.mark.parametrize(
    ("doc", "location", "ecosystem"),
    [
        ({"distroversion": "v3.20"}, "x.json", "Alpine:v3.20"),
        ({"urlprefix": "https://packages.wolfi.dev"}, "security.json", "Wolfi"),
        ({"urlprefix": "https://libraries.cgr.dev"}, "security.json", "Chainguard"),
        ({"reponame": "chainguard"}, "security.json", "Chainguard"),
        ({}, "/data/wolfi-security.json", "Wolfi"),
        ({}, "/data/alpine-secdb/v3.9/main.yaml", "Alpine:v3.9"),
        ({}, "/data/alpine/3.22/main/zlib.json", "Alpine:v3.22"),
        ({}, "/data/secdb.zip!v3.18/community.json", "Alpine:v3.18"),
        # only the end of a path is trusted: a checkout called "wolfi-work" is not Wolfi.
        ({}, "/home/me/wolfi-work/alpine/v3.11/main.yaml", "Alpine:v3.11"),
        ({}, "/home/v3.11/a/b/c/main.yaml", None),
    ],
)
def test_distribution_of_a_secdb_document(
    doc: dict[str, str], location: str, ecosystem: str | None
) -> None:
    """Invariant: the file's own fields decide, then only the end of its path."""
    info = distribution_of(doc, location)
    assert (info.ecosystem if info else None) == ecosystem


def test_stats_type_is_unaffected_by_a_secdb_only_load() -> None:
    """Invariant: secdb records have no ``modified``; the source's newest stays null."""
    _, stats = load_all("secdb/wolfi")
    assert isinstance(stats, IngestStats)
    assert stats.sources["secdb:Wolfi"].newest_modified is None
    assert stats.sources["secdb:Wolfi"].records == 8


_scalar = st.none() | st.integers() | st.text(max_size=12)
_secfixes = st.dictionaries(
    st.sampled_from(["0", "1.0-r0", "2.0-r1", ""]) | st.text(max_size=4),
    st.none() | _scalar | st.lists(_scalar | st.sampled_from(["CVE-2020-1234", "XSA-1"])),
    max_size=4,
)
_package = st.fixed_dictionaries({}, optional={"name": _scalar, "secfixes": _secfixes | _scalar})
_doc = st.fixed_dictionaries(
    {"packages": st.lists(st.fixed_dictionaries({"pkg": _package}) | _scalar, max_size=4)},
    optional={
        "distroversion": _scalar,
        "urlprefix": st.sampled_from(["", "https://packages.wolfi.dev"]),
    },
)


@given(doc=_doc)
def test_arbitrary_secdb_documents_never_raise(doc: dict[str, object]) -> None:
    """Invariant: no secdb content ends a load: whatever the shape, read_document returns,
    and every advisory it returns is well formed (one affected, an id with three parts)."""
    stats = IngestStats()
    for adv in read_document(doc, "fuzz/v3.1/main.json", stats):
        assert len(adv.affected) == 1
        assert adv.id.count("/") >= 2 and adv.aliases
        aff = adv.affected[0]
        assert (aff.status is Status.NOT_AFFECTED) == (aff.ranges == [])
