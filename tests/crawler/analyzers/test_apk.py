"""The apk analyzer on a real Alpine installed database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.apk import ApkAnalyzer
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.matcher.advisories.ecosystems import parse_ecosystem
from regsweep.matcher.records import OsInfo
from tests import paths

DB = (paths.DATA / "crawler" / "apk" / "installed").read_bytes()
PATH = "lib/apk/db/installed"
LAYER = "sha256:" + "d" * 64
ALPINE_314 = Context(
    os=OsInfo(family="alpine", name="Alpine Linux", version="3.14.2"), ecosystem="Alpine:v3.14"
)


def _analyze(
    data: bytes, ctx: Context = ALPINE_314, path: str = PATH, truncated: bool = False
) -> AnalyzerResult:
    f = LayerFile(path=path, data=data, layer=LAYER, truncated=truncated)
    return ApkAnalyzer().analyze({path: f}, ctx)


def test_real_database_packages_and_origins() -> None:
    """Invariant: every entry becomes a package with its P/V, and its origin (``o:``) as the
    source package that Alpine advisories are keyed by."""
    r = _analyze(DB)
    assert r.notes == []
    got = {p.name: (p.version, p.source_name, p.source_version) for p in r.packages}
    assert got == {
        "musl": ("1.2.2-r3", "musl", "1.2.2-r3"),
        "libcrypto1.1": ("1.1.1k-r0", "openssl", "1.1.1k-r0"),
        "libssl1.1": ("1.1.1k-r0", "openssl", "1.1.1k-r0"),
        "ca-certificates-bundle": ("20191127-r5", "ca-certificates", "20191127-r5"),
        "zlib": ("1.2.11-r3", "zlib", "1.2.11-r3"),
        "libc-utils": ("0.7.2-r3", "libc-dev", "0.7.2-r3"),
        "ssl_client": ("1.33.1-r3", "busybox", "1.33.1-r3"),
    }
    for p in r.packages:
        assert (p.type, p.ecosystem, p.layer, p.path) == ("apk", "Alpine:v3.14", LAYER, PATH)
    info = parse_ecosystem("Alpine:v3.14")
    assert info is not None and info.ecosystem == "Alpine:v3.14"


def test_purl() -> None:
    """Invariant: apk purls name the distro namespace, arch and release."""
    purls = {p.name: p.purl for p in _analyze(DB).packages}
    assert (
        purls["libssl1.1"] == "pkg:apk/alpine/libssl1.1@1.1.1k-r0?arch=armv7&distro=alpine-3.14.2"
    )


def test_file_ownership_from_f_and_r_lines() -> None:
    """Invariant: each ``R:`` file joined to the ``F:`` directory before it is owned by the
    entry's package; the same file name in two directories gets two paths."""
    owners = _analyze(DB).owners
    assert owners["lib/ld-musl-armhf.so.1"] == "musl"
    assert owners["lib/libcrypto.so.1.1"] == "libcrypto1.1"
    assert owners["usr/lib/libcrypto.so.1.1"] == "libcrypto1.1"
    assert owners["usr/lib/engines-1.1/padlock.so"] == "libcrypto1.1"
    assert owners["etc/ssl/certs/ca-certificates.crt"] == "ca-certificates-bundle"
    assert owners["usr/bin/ssl_client"] == "ssl_client"
    assert "etc/ssl" not in owners  # directories are not files
    # libc-utils is a meta package: no files.
    assert "libc-utils" not in owners.values()


def test_entry_without_version_is_skipped_with_a_note() -> None:
    """Invariant: an entry missing ``V:`` costs that entry only, and says so."""
    r = _analyze(DB.replace(b"V:1.2.11-r3\n", b""))
    assert "zlib" not in {p.name for p in r.packages}
    assert len(r.packages) == 6
    assert len(r.notes) == 1 and "zlib" in r.notes[0]


def test_missing_origin_falls_back_to_the_name() -> None:
    """Invariant: without ``o:`` the package is its own source (apk's own rule)."""
    r = _analyze(DB.replace(b"o:zlib\n", b""))
    assert {p.name: p.source_name for p in r.packages}["zlib"] == "zlib"


def test_truncated_database_drops_only_the_cut_entry() -> None:
    """Invariant: a database cut at the size cap yields the whole entries before the cut,
    never one with a partial version, and a note."""
    cut = DB.index(b"P:zlib") + 9
    r = _analyze(DB[:cut], truncated=True)
    assert [p.name for p in r.packages] == [
        "musl",
        "libcrypto1.1",
        "libssl1.1",
        "ca-certificates-bundle",
    ]
    assert any("size cap" in n for n in r.notes)


def test_usr_lib_spelling_and_precedence() -> None:
    """Invariant: a usr-merged image's ``usr/lib/apk/db/installed`` is read; when both
    spellings exist, ``lib/…`` is used once (not both)."""
    r = _analyze(DB, path="usr/lib/apk/db/installed")
    assert len(r.packages) == 7
    files = {
        p: LayerFile(path=p, data=DB, layer=LAYER)
        for p in ("lib/apk/db/installed", "usr/lib/apk/db/installed")
    }
    assert len(ApkAnalyzer().analyze(files, ALPINE_314).packages) == 7


def test_wolfi_namespace_and_unknown_os() -> None:
    """Invariant: the purl namespace follows the OS family; without an ecosystem the
    packages are inventoried, unmatched, and a note says so."""
    wolfi = Context(os=OsInfo(family="wolfi", version="20230201"), ecosystem="Wolfi")
    p = _analyze(DB, wolfi).packages[0]
    assert p.purl is not None and p.purl.startswith("pkg:apk/wolfi/musl@")
    r = _analyze(DB, Context())
    assert all(p.ecosystem is None for p in r.packages)
    assert any("not matched" in n for n in r.notes)


def test_garbage_is_a_note() -> None:
    """Invariant: binary data or non-database text is a note, not an exception."""
    assert _analyze(b"\x00" * 100).notes
    r = _analyze(b"hello world\nthis is not apk\n")
    assert r.packages == [] and r.notes


def test_wants() -> None:
    """Invariant: only the installed database is asked for."""
    a = ApkAnalyzer()
    assert a.wants("lib/apk/db/installed") == a.wants("usr/lib/apk/db/installed")
    assert a.wants("lib/apk/db/triggers") is None
    assert a.wants("etc/apk/world") is None


@given(st.binary(max_size=2048), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, truncated: bool) -> None:
    """Invariant: any bytes give a result, never an exception."""
    _analyze(data, truncated=truncated)


@given(st.lists(st.sampled_from(DB.split(b"\n")), max_size=80))
def test_shuffled_real_lines_never_raise(lines: list[bytes]) -> None:
    """Invariant: any arrangement of real database lines parses; every package reported
    has a name and version, and every owner is a reported package."""
    r = _analyze(b"\n".join(lines))
    names = {p.name for p in r.packages}
    assert all(p.name and p.version for p in r.packages)
    assert set(r.owners.values()) <= names


def test_a_nul_byte_in_one_entry_skips_that_entry_only() -> None:
    """One damaged entry (a NUL byte inside it) is skipped with a note; the others stay."""
    whole = _analyze(DB)
    entries = DB.split(b"\n\n")
    entries[1] = entries[1].replace(b"\nV:", b"\x00\nV:", 1)
    r = _analyze(b"\n\n".join(entries))
    assert len(r.packages) == len(whole.packages) - 1 > 1
    assert any("NUL byte" in n for n in r.notes)


def test_a_hostile_database_is_read_in_bounded_memory_and_capped() -> None:
    """A 20 MB database of a million tiny entries (a hostile layer's): the lines are read
    one at a time and the entries stop at ``MAX_PACKAGES`` with a note (a split into a
    list of lines and every entry kept reached 2.3 GB for 50 MB)."""
    import tracemalloc

    from regsweep.crawler.analyzers.apk import MAX_PACKAGES

    data = b"".join(b"P:p%d\nV:1.0-r0\n\n" % i for i in range(1_000_000))
    tracemalloc.start()
    try:
        facts = ApkAnalyzer().read("lib/apk/db/installed", data, False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts is not None and len(facts.packages) == MAX_PACKAGES
    assert any("more than 50000 packages" in n for n in facts.notes)
    assert peak < 120 << 20, peak
