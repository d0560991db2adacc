"""The advisory index end to end: build, atomic swap, and the matching rules on tiny indexes.

Every index here is built per test from model records shaped like real feed records (a
Debian DSA, an Alpine secfix, a PyPI advisory), including deliberately broken rows.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from regsweep.matcher import match as match_module
from regsweep.matcher import reference, versions
from regsweep.matcher.advisories.ecosystems import parse_ecosystem
from regsweep.matcher.advisories.model import (
    Advisory,
    Affected,
    Event,
    EventKind,
    Range,
    RangeType,
    Severity,
    Status,
)
from regsweep.matcher.index import store
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import Package


def affected(
    ecosystem: str,
    package: str,
    events: list[tuple[str, str]] | None = None,
    *,
    ranges: list[list[tuple[str, str]]] | None = None,
    versions_: list[str] | None = None,
    status: Status = Status.FIXED,
) -> Affected:
    info = parse_ecosystem(ecosystem)
    assert info is not None
    all_ranges = ranges if ranges is not None else ([events] if events else [])
    return Affected(
        ecosystem=info.ecosystem,
        family=info.family,
        release=info.release,
        scheme=info.scheme,
        package=package,
        ranges=[
            Range(
                type=RangeType.ECOSYSTEM,
                events=[Event(kind=EventKind(k), version=v) for k, v in evs],
            )
            for evs in all_ranges
        ],
        versions=versions_ or [],
        status=status,
    )


def advisory(adv_id: str, *aff: Affected, source: str = "osv:Debian", **kw: object) -> Advisory:
    return Advisory(id=adv_id, source=source, affected=list(aff), **kw)  # type: ignore[arg-type]


def deb(name: str, version: str, release: str = "11", **kw: str | None) -> Package:
    return Package(name=name, version=version, type="deb", ecosystem=f"Debian:{release}", **kw)


@pytest.fixture
def build(tmp_path: Path):  # type: ignore[no-untyped-def]
    def _build(*advs: Advisory) -> Matcher:
        path = tmp_path / "adv.lmdb"
        store.build(path, advs)
        return Matcher(store.AdvisoryIndex(path))

    return _build


def ids(found: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(a.id for a in found)


DSA_5343 = advisory(
    "DSA-5343-1",
    affected("Debian:11", "openssl", [("introduced", "0"), ("fixed", "1.1.1n-0+deb11u4")]),
    related=["CVE-2023-0286"],
)


def test_distro_packages_match_by_source_package_and_version(build) -> None:  # type: ignore[no-untyped-def]
    """libssl1.1 is matched through its source package openssl, at the source version."""
    m = build(DSA_5343)
    found, errors = m.match(
        [
            deb("libssl1.1", "1.1.1n-0+deb11u3", source_name="openssl"),
            deb("libssl1.1", "1.1.1n-0+deb11u4", source_name="openssl"),
            deb("openssl", "1.1.1n-0+deb11u3"),  # no Source: field: the binary is the source
            deb("libssl1.1", "1.1.1n-0+deb11u3"),  # a binary name never matches a source table
        ]
    )
    assert [ids(f) for f in found] == [["DSA-5343-1"], [], ["DSA-5343-1"], []]
    assert errors == []
    adv = found[0][0]
    assert adv.fixed == ("1.1.1n-0+deb11u4",) and adv.status == "fixed"
    assert adv.related == ("CVE-2023-0286",) and adv.source == "osv:Debian"


def test_binnmu_binary_version_matches_as_its_source_version(build) -> None:  # type: ignore[no-untyped-def]
    """A +bN binNMU of a fixed source is fixed; of a vulnerable source, vulnerable."""
    m = build(
        advisory(
            "DSA-5111-1",
            affected(
                "Debian:11", "zlib", [("introduced", "0"), ("fixed", "1:1.2.11.dfsg-2+deb11u1")]
            ),
        )
    )
    found, _ = m.match(
        [
            deb("zlib1g", "1:1.2.11.dfsg-2+b1", source_name="zlib"),
            deb("zlib1g", "1:1.2.11.dfsg-2+deb11u1+b1", source_name="zlib"),
            # Source: zlib (1:1.2.11.dfsg-2+deb11u1) with a binNMU binary version
            deb(
                "zlib1g",
                "1:1.2.11.dfsg-2+deb11u1+b2",
                source_name="zlib",
                source_version="1:1.2.11.dfsg-2+deb11u1",
            ),
        ]
    )
    assert [ids(f) for f in found] == [["DSA-5111-1"], [], []]


def test_advisories_are_scoped_to_their_release(build) -> None:  # type: ignore[no-untyped-def]
    """A Debian 11 advisory never matches a Debian 12 package, whatever its version."""
    m = build(DSA_5343)
    found, _ = m.match([deb("openssl", "1.1.1n-0+deb11u3", release="12")])
    assert found == [()]


def test_language_packages_owned_by_the_os_are_not_matched_upstream(build) -> None:  # type: ignore[no-untyped-def]
    """A python module installed by dpkg is judged by the distro, not by PyPI advisories."""
    m = build(
        advisory(
            "PYSEC-2023-1",
            affected("PyPI", "requests", [("introduced", "0"), ("fixed", "2.31.0")]),
            source="osv:PyPI",
        )
    )
    mine = Package(name="requests", version="2.25.1", type="pypi", ecosystem="PyPI")
    owned = Package(
        name="requests", version="2.25.1", type="pypi", ecosystem="PyPI", owner="python3-requests"
    )
    found, _ = m.match([mine, owned])
    assert [ids(f) for f in found] == [["PYSEC-2023-1"], []]


def test_pypi_names_are_normalised_on_both_sides(build) -> None:  # type: ignore[no-untyped-def]
    """PEP 503: Foo_Bar, foo.bar and foo-bar are one project."""
    m = build(
        advisory(
            "PYSEC-X",
            affected("PyPI", "zope-interface", [("introduced", "0"), ("fixed", "5.0")]),
            source="osv:PyPI",
        )
    )
    pkgs = [
        Package(name=n, version="4.7.2", type="pypi", ecosystem="PyPI")
        for n in ("Zope.Interface", "zope_interface", "zope-interface")
    ]
    assert [ids(f) for f in m.match(pkgs)[0]] == [["PYSEC-X"]] * 3


def test_multiple_ranges_and_versions_lists_are_a_union(build) -> None:  # type: ignore[no-untyped-def]
    """Two ranges and a versions list of one affected entry: a version in any one matches,
    and the package gets one record per advisory."""
    aff = affected(
        "PyPI",
        "pkg",
        ranges=[
            [("introduced", "1.0"), ("fixed", "1.2")],
            [("introduced", "2.0"), ("last_affected", "2.1")],
            [("introduced", "1.1"), ("fixed", "1.3")],  # overlaps the first range
        ],
        versions_=["0.5"],
    )
    m = build(advisory("GHSA-x", aff, source="osv:PyPI"))
    vs = ["0.4", "0.5", "1.0", "1.1.5", "1.2.5", "1.3", "2.0", "2.1", "2.1.1"]
    found, _ = m.match([Package(name="pkg", version=v, type="pypi", ecosystem="PyPI") for v in vs])
    assert [len(f) for f in found] == [0, 1, 1, 1, 1, 0, 1, 1, 0]


def test_not_affected_statements_never_match(build) -> None:  # type: ignore[no-untyped-def]
    """secdb's fixed version "0" (not affected) is kept as a statement, never a range."""
    m = build(
        advisory(
            "CVE-2021-1",
            affected("Alpine:v3.15", "busybox", [("introduced", "0")], status=Status.NOT_AFFECTED),
            source="secdb:Alpine",
        )
    )
    pkg = Package(name="busybox", version="1.34.1-r3", type="apk", ecosystem="Alpine:v3.15")
    assert m.match([pkg])[0] == [()]


def test_bad_versions_in_advisories_are_skipped_and_counted(tmp_path: Path) -> None:
    """A range with an unparseable version is left out (never a match) and the meta says so."""
    path = tmp_path / "adv.lmdb"
    meta = store.build(
        path,
        [
            advisory(
                "DSA-BAD",
                affected("Debian:11", "foo", [("introduced", "0"), ("fixed", "1:")]),
            ),
            DSA_5343,
        ],
    )
    assert meta.build_skipped == {"invalid dpkg version in range": 1}
    with store.AdvisoryIndex(path) as index:
        assert index.meta.build_skipped == meta.build_skipped
        found, _ = Matcher(index).match([deb("foo", "0.1"), deb("openssl", "1.0")])
    assert [ids(f) for f in found] == [[], ["DSA-5343-1"]]


def test_an_installed_version_that_does_not_parse_is_an_error_not_a_miss(build) -> None:  # type: ignore[no-untyped-def]
    """The package is reported as unmatched with the reason; the others still match."""
    m = build(DSA_5343)
    found, errors = m.match([deb("openssl", "1:"), deb("openssl", "1.0")])
    assert [ids(f) for f in found] == [[], ["DSA-5343-1"]]
    assert [(e.package, e.error) for e in errors] == [(0, "invalid_version")]


def test_aliases_find_their_advisories(tmp_path: Path) -> None:
    """A CVE id finds every advisory that lists it as an alias."""
    path = tmp_path / "adv.lmdb"
    store.build(path, [advisory("GHSA-1", aliases=["CVE-2024-1"], source="osv:PyPI")])
    with store.AdvisoryIndex(path) as index:
        assert [a.id for a in index.lookup_alias("CVE-2024-1")] == ["GHSA-1"]
        assert index.lookup_alias("CVE-1999-0") == []


@pytest.mark.parametrize("batch", [1, 2, 1024])
def test_package_tables_yields_every_table_once_in_key_order(tmp_path: Path, batch: int) -> None:
    """Walking the tables a few per read transaction loses and repeats none of them, even
    where one key is a prefix of the next (``openssl`` then ``openssl1.1``)."""
    path = tmp_path / "adv.lmdb"
    store.build(
        path,
        [
            advisory(
                "DSA-1",
                affected("Debian:11", "openssl", [("introduced", "0"), ("fixed", "1.1.1n-1")]),
                affected("Debian:11", "openssl1.1", [("introduced", "0"), ("fixed", "1.1.1-2")]),
                affected("Debian:12", "zlib", [("introduced", "0"), ("fixed", "1:1.2.13-1")]),
            ),
            advisory(
                "PYSEC-1",
                affected("PyPI", "django", [("introduced", "0"), ("fixed", "4.2.1")]),
                source="osv:PyPI",
            ),
        ],
    )
    with store.AdvisoryIndex(path) as index:
        rows = list(index.package_tables(batch=batch))
        assert [(e, n) for e, n, _ in rows] == [
            ("Debian:11", "openssl"),
            ("Debian:11", "openssl1.1"),
            ("Debian:12", "zlib"),
            ("PyPI", "django"),
        ]
        assert len(rows) == index.package_count()
        assert index.hits(rows[-1][2])[0].fixed == ("4.2.1",)


def test_one_id_twice_in_a_feed_is_one_merged_advisory_with_every_package(
    tmp_path: Path,
) -> None:
    """Docker's DHI feed repeats a CVE once per component: both packages match, and the
    record is one advisory (ids unioned, the newer copy's summary and severity)."""
    older = advisory(
        "CVE-2025-49844",
        affected("npm", "redis-a", [("introduced", "0"), ("fixed", "1.2.0")]),
        source="osv:DHI",
        aliases=["GHSA-a"],
        summary="old words",
        severity=Severity.LOW,
        modified=datetime(2025, 1, 1, tzinfo=UTC),
    )
    newer = advisory(
        "CVE-2025-49844",
        affected("npm", "valkey-a", [("introduced", "0"), ("fixed", "8.0.1")]),
        source="osv:DHI",
        aliases=["GHSA-b", "GHSA-a"],
        summary="new words",
        severity=Severity.CRITICAL,
        modified=datetime(2025, 6, 1, tzinfo=UTC),
    )
    path = tmp_path / "adv.lmdb"
    for order in ([older, newer], [newer, older]):
        meta = store.build(path, order)
        assert meta.advisories == 1
        with store.AdvisoryIndex(path) as index:
            found, _ = Matcher(index).match(
                [
                    Package(name="redis-a", version="1.1.0", type="npm", ecosystem="npm"),
                    Package(name="valkey-a", version="8.0.0", type="npm", ecosystem="npm"),
                    Package(name="valkey-a", version="8.0.1", type="npm", ecosystem="npm"),
                ]
            )
            assert [ids(f) for f in found] == [["CVE-2025-49844"]] * 2 + [[]]
            adv = found[0][0]
            assert adv.summary == "new words"
            assert adv.severity == "CRITICAL"
            assert sorted(adv.aliases) == ["GHSA-a", "GHSA-b"]
            assert [a.id for a in index.lookup_alias("GHSA-a")] == ["CVE-2025-49844"]


def test_rebuild_replaces_the_index_atomically_for_open_readers(tmp_path: Path) -> None:
    """A reader that opened the old index keeps reading it whole; new readers see the new."""
    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    old = store.AdvisoryIndex(path)
    store.build(path, [advisory("DSA-2", affected("Debian:11", "bash", [("introduced", "0")]))])
    assert [a.id for a in old.lookup_alias("DSA-5343-1")] == ["DSA-5343-1"]
    with store.AdvisoryIndex(path) as new:
        assert new.lookup_alias("DSA-5343-1") == []
        assert new.meta.advisories == 1
    old.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adv.lmdb", "adv.lmdb.build-lock"]


def _hold_lock(
    path: str, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:  # type: ignore[name-defined]
    with store._build_lock(Path(path)):
        ready.set()
        done.wait(10)


def test_a_second_concurrent_build_fails_cleanly(tmp_path: Path) -> None:
    """While one build runs, another of the same path raises BuildLocked and changes nothing."""
    path = tmp_path / "adv.lmdb"
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(path), ready, done))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(store.BuildLocked):
            store.build(path, [DSA_5343])
        assert not path.exists()
    finally:
        done.set()
        proc.join(10)
    store.build(path, [DSA_5343])  # and once the other build is gone, it works
    assert path.exists()


def test_missing_or_foreign_index_is_a_clear_error(tmp_path: Path) -> None:
    """Opening nothing, or a file that is not an index, says so instead of crashing."""
    with pytest.raises(store.IndexMissing):
        store.AdvisoryIndex(tmp_path / "nope.lmdb")
    junk = tmp_path / "junk.lmdb"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(store.AdvisoryIndexError):
        store.AdvisoryIndex(junk)


_READ_ALL = textwrap.dedent(
    """
    import sys
    from regsweep.matcher.index import store
    from regsweep.matcher.index.errors import AdvisoryIndexError
    try:
        with store.AdvisoryIndex(sys.argv[1]) as index:
            for _, _, raw in index.package_tables():
                for hit in index.hits(raw):
                    index.advisory(hit.advisory)
    except AdvisoryIndexError as err:
        print(err)
        sys.exit(3)
    print("read whole")
    """
)


def _many_advisories(n: int) -> list[Advisory]:
    return [
        advisory(
            f"DSA-{i}-1",
            affected("Debian:12", f"pkg{i}", [("introduced", "0"), ("fixed", f"1.{i}-1")]),
            summary="x" * 200,
        )
        for i in range(n)
    ]


def test_a_truncated_index_is_refused_at_open_with_a_rebuild_hint(tmp_path: Path) -> None:
    """An index cut short anywhere (a copy interrupted, a full disk) is refused when it is
    opened, naming the file and how to rebuild it, instead of killing the process with
    SIGBUS when a read reaches a page past the end. Run in a child process so that a
    SIGBUS shows as its exit status, not as a crashed test run."""
    whole = tmp_path / "whole.lmdb"
    store.build(whole, _many_advisories(3000))
    data = whole.read_bytes()
    page = 4096
    assert len(data) > 20 * page
    run = [sys.executable, "-c", _READ_ALL]
    proc = subprocess.run([*run, str(whole)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "read whole"), proc.stderr
    sizes = (1, page, 2 * page, 3 * page, len(data) // 2, len(data) - page, len(data) - 1)
    outcomes = {}
    for size in sizes:
        cut = tmp_path / f"cut-{size}.lmdb"
        cut.write_bytes(data[:size])
        proc = subprocess.run([*run, str(cut)], capture_output=True, text=True, timeout=60)
        # -7 is SIGBUS; 3 is a refusal, which must name the file and the way out.
        hinted = str(cut) in proc.stdout and "regsweep db build" in proc.stdout
        outcomes[size] = (proc.returncode, hinted, "Traceback" in proc.stderr)
    assert outcomes == dict.fromkeys(sizes, (3, True, False))


def test_commands_refuse_a_truncated_index_as_they_refuse_any_unusable_one(
    tmp_path: Path,
) -> None:
    """``match`` (like ``scan`` and ``crawl``) exits 2 and ``db info`` exits 1, with one line
    naming the file and saying to rebuild it: what they do for a missing index."""
    whole = tmp_path / "adv.lmdb"
    store.build(whole, _many_advisories(3000))
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    regsweep = str(Path(sys.executable).parent / "regsweep")
    for args, code in ((["match", "-i", os.devnull], 2), (["db", "info"], 1)):
        proc = subprocess.run(
            [regsweep, *args, "--db", str(whole)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        [line] = proc.stderr.splitlines()
        assert line.startswith("regsweep: error: ") and str(whole) in line
        assert "truncated" in line and "regsweep db build" in line


# ----------------------------------------------------------------- differential test

# Real Debian versions (openssl, zlib, bash … as in DSA/DLA fixed versions) and neighbours.
DEB_VERSIONS = [
    "0.9.8c-4etch1", "0.9.8g-15+lenny1", "1.0.1e-2+deb7u14", "1.0.1t-1+deb8u12",
    "1.1.0l-1~deb9u1", "1.1.1d-0+deb10u7", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4",
    "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u1", "3.0.11-1~deb12u2", "1:1.2.11.dfsg-2",
    "1:1.2.11.dfsg-2+deb11u1", "1:1.2.11.dfsg-2+deb11u2", "1:1.2.13.dfsg-1", "5.1-2+deb11u1",
    "5.1-2", "5.2.15-2+b2", "4.3-14", "2.2.5-2", "2.2.5-2~bpo1", "1.0", "1.0~rc1", "1.0-1",
    "2:1.0-1", "0", "0.1",
]  # fmt: skip


@pytest.mark.parametrize("cache_max", [None, 7])
def test_compiled_matcher_equals_the_osv_reference_on_random_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_max: int | None
) -> None:
    """On thousands of random (package, version) pairs against random advisories, the
    index answers exactly what the transcribed OSV algorithm answers — also when the
    matcher's caches overflow and start over between batches."""
    if cache_max is not None:
        monkeypatch.setattr(match_module, "_CACHE_MAX", cache_max)
    rng = random.Random(1128)
    mod = versions.module("dpkg")
    names = [f"src{i}" for i in range(12)]
    advs, truth_ranges = [], {}
    for n in range(150):
        name = rng.choice(names)
        ranges = []
        for _ in range(rng.randint(1, 3)):
            pts = sorted(rng.sample(DEB_VERSIONS, rng.randint(1, 4)), key=mod.key)
            evs: list[tuple[str, str]] = [("introduced", "0" if rng.random() < 0.5 else pts[0])]
            kinds = ["fixed", "last_affected", "introduced", "limit"]
            evs += [(rng.choice(kinds), v) for v in pts[1:]]
            rng.shuffle(evs)  # events in any order
            ranges.append(evs)
        listed = rng.sample(DEB_VERSIONS, rng.randint(0, 2))
        advs.append(
            advisory(f"DSA-{n}", affected("Debian:11", name, ranges=ranges, versions_=listed))
        )
        truth_ranges[f"DSA-{n}"] = (name, ranges, listed)
    path = tmp_path / "adv.lmdb"
    store.build(path, advs)
    pkgs = [deb(rng.choice(names), rng.choice(DEB_VERSIONS)) for _ in range(3000)]
    with store.AdvisoryIndex(path) as index:
        matcher = Matcher(index)
        # In batches, as a crawl feeds it, the later ones mostly answered from the caches;
        # the last batch is re-decoded so its packages are equal, not identical, objects.
        found, errors = [], []
        batches = [pkgs[:500], pkgs[500:2000], pkgs[2000:]]
        batches[2] = msgspec.json.decode(msgspec.json.encode(batches[2]), type=list[Package])
        for batch in batches:
            got, errs = matcher.match(batch)
            found += got
            errors += errs
    assert errors == []
    for pkg, got in zip(pkgs, found, strict=True):
        source_version = re.sub(r"\+b\d+$", "", pkg.version)  # binNMU: see its own test
        expected = sorted(
            adv_id
            for adv_id, (name, ranges, listed) in truth_ranges.items()
            if name == pkg.name and reference.is_affected(mod, source_version, ranges, listed)
        )
        assert ids(got) == expected, pkg


def test_nuget_versions_and_names_compare_case_insensitively(build) -> None:  # type: ignore[no-untyped-def]
    """NuGet orders pre-release labels without case (semver would put "Beta2" below
    "beta1") and treats package ids without case: both sides are folded the same way."""
    m = build(
        advisory(
            "GHSA-nuget",
            affected("NuGet", "newtonsoft.json", [("introduced", "0"), ("fixed", "13.0.1-Beta2")]),
            source="osv:NuGet",
        )
    )
    pkgs = [
        Package(name="Newtonsoft.Json", version=v, type="nuget", ecosystem="NuGet")
        for v in ("13.0.1-beta1", "13.0.1-BETA2", "13.0.1")
    ]
    assert [ids(f) for f in m.match(pkgs)[0]] == [["GHSA-nuget"], [], []]


def test_go_pseudo_versions_below_an_introduced_zero_range_match(build) -> None:  # type: ignore[no-untyped-def]
    """OSV's introduced "0" is below every version, including Go pseudo-versions of 0.0.0
    (semver's "0" would sort above them and match nothing)."""
    m = build(
        advisory(
            "GO-2020-0001",
            affected(
                "Go",
                "github.com/gin-gonic/gin",
                [("introduced", "0"), ("fixed", "0.0.0-20200101000000-abcdefabcdef")],
            ),
            source="osv:Go",
        )
    )
    pkgs = [
        Package(name="github.com/gin-gonic/gin", version=v, type="go", ecosystem="Go")
        for v in ("v0.0.0-20190101000000-123456789abc", "v0.0.0-20200101000000-abcdefabcdef")
    ]
    assert [ids(f) for f in m.match(pkgs)[0]] == [["GO-2020-0001"], []]


def test_match_command_output_is_byte_identical_to_encoding_the_records(tmp_path: Path) -> None:
    """``regsweep match`` writes vulnerability lines through a fast path (image, package and
    advisory encoded once each); every line equals msgspec's encoding of the record."""
    import io

    import msgspec

    from regsweep.matcher.output.ndjson import NdjsonSink
    from regsweep.matcher.records import ImageRef, PackageRecord, VulnerabilityRecord
    from regsweep.matcher.stream import match_stream

    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    image = ImageRef(ref="oci:x", digest="sha256:" + "2" * 64)
    pkgs = [deb("openssl", v) for v in ("1.0", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4", "1.0")]
    lines = b"".join(
        msgspec.json.encode(PackageRecord(image=image, package=p)) + b"\n" for p in pkgs
    )
    out = io.BytesIO()
    writer = NdjsonSink(out)
    with store.AdvisoryIndex(path) as index:
        matcher = Matcher(index)
        match_stream(matcher, io.BytesIO(lines), writer)
        writer.flush()
        found, _ = Matcher(index).match(pkgs)
    expected = b"".join(
        msgspec.json.encode(VulnerabilityRecord(image=image, package=p, advisory=a)) + b"\n"
        for p, advs in zip(pkgs, found, strict=True)
        for a in advs
    )
    assert out.getvalue() == expected and expected.count(b"\n") == 3


def test_matching_leaves_the_cyclic_gc_as_it_found_it(build) -> None:  # type: ignore[no-untyped-def]
    """The matcher pauses the collector while it resolves new packages, and only then."""
    matcher = build(DSA_5343)
    assert gc.isenabled()
    found, _ = matcher.match([deb("openssl", "1.1.1n-0+deb11u3")])
    assert ids(found[0]) == ["DSA-5343-1"] and gc.isenabled()
    gc.disable()
    try:
        matcher.match([deb("openssl", "1.1.1n-0+deb11u1")])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_match_stream_reports_bad_lines_and_reads_repeated_packages_once(
    tmp_path: Path,
) -> None:
    """Bad lines become ``error`` records with their line numbers (malformed JSON, a package
    of the wrong shape — also when its bytes come again), other record kinds are passed
    over, blank lines skipped; a package whose bytes repeat is matched like the first."""
    import io

    from regsweep.matcher.output.ndjson import NdjsonSink
    from regsweep.matcher.stream import match_stream

    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    vulnerable = (
        b'{"kind":"package","image":{"ref":"oci:a"},"package":{"name":"openssl",'
        b'"version":"1.1.1n-0+deb11u3","type":"deb","ecosystem":"Debian:11"}}'
    )
    bad_package = b'{"kind":"package","package":{"name":7,"version":"1","type":"deb"}}'
    lines = [
        vulnerable,  # 1
        b"{not json",  # 2
        bad_package,  # 3
        b"",  # 4
        b'{"kind":"error","stage":"x","error":"y","message":"z"}',  # 5: passed over
        bad_package,  # 6: the same bad bytes again
        vulnerable.replace(b"oci:a", b"oci:b"),  # 7: the same package bytes, another image
        b'{"kind":"package","package":{"name":"x","version":"1","type":"deb",'
        b'"ecosystem":"Mars:1"}}',  # 8: unknown ecosystem
    ]
    out = io.BytesIO()
    writer = NdjsonSink(out)
    with store.AdvisoryIndex(path) as index:
        match_stream(Matcher(index), io.BytesIO(b"\n".join(lines) + b"\n"), writer, batch=3)
    writer.flush()
    records = [msgspec.json.decode(r) for r in out.getvalue().splitlines()]
    vulns = [r for r in records if r["kind"] == "vulnerability"]
    assert [(v["image"]["ref"], v["advisory"]["id"]) for v in vulns] == [
        ("oci:a", "DSA-5343-1"),
        ("oci:b", "DSA-5343-1"),
    ]
    errors = [(r["stage"], r["error"], r["message"]) for r in records if r["kind"] == "error"]
    assert [e[:2] for e in errors] == [("input", "malformed_record")] * 3 + [
        ("match", "unknown_ecosystem")
    ]
    assert [e[2].split(":")[0] for e in errors[:3]] == ["line 2", "line 3", "line 6"]
    assert "`$.package.name`" in errors[1][2] and errors[1][2] == errors[2][2].replace(
        "line 6", "line 3"
    )


def test_a_failure_while_resolving_leaves_the_matcher_usable(
    build, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """If resolving new packages raises (a damaged index, a bug), the matcher forgets what
    it had half-learned, so the next batch with the same packages is answered normally."""
    matcher = build(DSA_5343)
    pkg = deb("openssl", "1.1.1n-0+deb11u3")
    real = Matcher._resolve

    def broken(self: Matcher, distinct: list[Package]) -> list[object]:
        raise RuntimeError("damaged")

    monkeypatch.setattr(Matcher, "_resolve", broken)
    with pytest.raises(RuntimeError):
        matcher.match([pkg])
    monkeypatch.setattr(Matcher, "_resolve", real)
    found, errors = matcher.match([pkg, pkg])
    assert [ids(f) for f in found] == [["DSA-5343-1"]] * 2 and errors == []


def test_a_package_that_cannot_be_read_leaves_the_matcher_usable(build) -> None:  # type: ignore[no-untyped-def]
    """``assign`` slots the packages before one it cannot read (a field that is not a str)
    and raises; the matcher then forgets them, so they are answered normally later."""
    matcher = build(DSA_5343)
    # Enough packages before the bad one for some to be slotted when it is read (``assign``
    # is a pipeline a dozen packages deep).
    pkgs = [deb("openssl", f"1.1.1n-0+deb11u{i}") for i in range(20)]
    bad = deb("openssl", b"1.1.1n")  # type: ignore[arg-type]  # not checked on construction
    with pytest.raises(TypeError):
        matcher.match([*pkgs, bad])
    found, errors = matcher.match(pkgs)
    # Fixed in 1.1.1n-0+deb11u4: u0 to u3 are affected.
    assert [ids(f) for f in found] == [["DSA-5343-1"]] * 4 + [[]] * 16 and errors == []


def test_match_stream_reports_json_nested_too_deep_and_goes_on(tmp_path: Path) -> None:
    """A line nested 100,000 deep (in a field nobody reads) is an ``error`` record; the
    lines after it are still matched."""
    import io

    from regsweep.matcher.output.ndjson import NdjsonSink
    from regsweep.matcher.stream import match_stream

    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    deep = b'{"kind":"package","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    vulnerable = (
        b'{"kind":"package","image":{"ref":"oci:a"},"package":{"name":"openssl",'
        b'"version":"1.1.1n-0+deb11u3","type":"deb","ecosystem":"Debian:11"}}'
    )
    out = io.BytesIO()
    sink = NdjsonSink(out)
    with store.AdvisoryIndex(path) as index:
        match_stream(Matcher(index), io.BytesIO(deep + b"\n" + vulnerable + b"\n"), sink)
    sink.end()
    records = [msgspec.json.decode(r) for r in out.getvalue().splitlines()]
    assert [(r["kind"], r.get("message")) for r in records][0] == (
        "error",
        "line 1: JSON nested too deeply",
    )
    assert [r["advisory"]["id"] for r in records if r["kind"] == "vulnerability"] == ["DSA-5343-1"]


def test_match_stream_refuses_other_schema_versions_and_flushes_every_batch(
    tmp_path: Path,
) -> None:
    """A record of a schema version this regsweep does not read is an ``error`` record (never
    guessed at); the output is flushed after each batch, so a pipe's reader sees matches as
    they are known."""
    import io

    from regsweep.matcher.output.ndjson import NdjsonSink
    from regsweep.matcher.stream import match_stream

    class Counting(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            Counting.flushes += 1
            super().flush()

    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    line = (
        b'{"kind":"package","schema_version":%d,"image":{"ref":"oci:a"},"package":{"name":'
        b'"openssl","version":"1.1.1n-0+deb11u3","type":"deb","ecosystem":"Debian:11"}}\n'
    )
    out = Counting()
    sink = NdjsonSink(out)
    with store.AdvisoryIndex(path) as index:
        match_stream(Matcher(index), io.BytesIO(line % 2 + line % 1 * 5), sink, batch=2)
    records = [msgspec.json.decode(r) for r in out.getvalue().splitlines()]
    assert (records[0]["kind"], records[0]["error"]) == ("error", "unsupported_schema_version")
    assert [r["kind"] for r in records[1:]] == ["vulnerability"] * 5
    assert Counting.flushes >= 3  # batches of 2, 2 and 1


def test_a_build_removes_what_killed_builds_left_beside_the_index(tmp_path: Path) -> None:
    """``db build`` killed mid-way leaves ``PATH.tmp-PID`` (and its ``-lock``); the next
    build, holding the build lock, removes them; another index's are left alone."""
    path = tmp_path / "adv.lmdb"
    leftovers = [tmp_path / "adv.lmdb.tmp-99999", tmp_path / "adv.lmdb.tmp-99999-lock"]
    for f in leftovers:
        f.write_bytes(b"\0" * 4096)
    unrelated = tmp_path / "other.lmdb.tmp-1"
    unrelated.write_text("another index's")
    store.build(path, [DSA_5343])
    assert not any(f.exists() for f in leftovers)
    assert unrelated.exists() and path.exists()


def test_the_index_is_created_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "adv.lmdb"
    store.build(path, [DSA_5343])
    assert path.stat().st_mode & 0o777 == 0o600


def test_has_advisory_knows_an_id_but_not_an_alias(tmp_path: Path) -> None:
    """``has_advisory`` (``rematch --changes``: withdrawn or not) is true for an advisory's
    own id in any source, false for an id that is only another advisory's alias or absent."""
    path = tmp_path / "adv.lmdb"
    store.build(
        path,
        [
            advisory("GHSA-1", aliases=["CVE-2024-1"], source="osv:PyPI"),
            advisory("CVE-2024-2", source="nvd"),
        ],
    )
    with store.AdvisoryIndex(path) as index:
        assert index.has_advisory("GHSA-1") and index.has_advisory("CVE-2024-2")
        assert not index.has_advisory("CVE-2024-1")
        assert not index.has_advisory("GHSA-2")
