"""The rpm analyzer against real rpm databases.

Fixtures are made at test time by the real tools: packages built by ``rpmbuild`` from tiny
specs (an epoch, a name with ``+``, a subpackage whose source rpm has another name, a
modularity label), installed with ``rpm -i --justdb`` into an ``rpmdb.sqlite`` with a
``gpg-pubkey`` imported by ``rpm --import``. Every expected value comes from ``rpm -qa
--queryformat`` on the same database, so the parser is checked against rpm itself.

Debian's rpm 4.18 cannot *write* the other two backends, so:

* Berkeley DB ``Packages``: the header blobs rpm wrote are loaded into a hash database by
  Berkeley DB's own ``db5.3_load`` (key = instance number, as rpm stores it), and rpm's
  ``bdb_ro`` backend must list the same packages from it before our reader is asked to.
* NDB ``Packages.db``: rpm here has no ndb backend and no other tool writes one, so
  ``_write_ndb`` below lays the file out byte for byte as rpm's ``rpmpkg.c`` does
  (``rpmpkgWriteHeader``, ``rpmpkgWriteEmptySlotpage``, ``rpmpkgWriteslot``,
  ``rpmpkgWriteBlob``: little-endian, 16-byte blocks, adler32 over head, blob and padding).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyze import assemble, default_analyzers
from regsweep.crawler.analyzers._rpmdb_bdb import read_bdb
from regsweep.crawler.analyzers._rpmdb_header import DatabaseError, HeaderError, parse_header
from regsweep.crawler.analyzers._rpmdb_ndb import read_ndb
from regsweep.crawler.analyzers.interface import AnalyzerError, AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.rpm import SIZE_CAP, RpmAnalyzer
from regsweep.crawler.layers import scan_layer
from regsweep.matcher.facts import ImageFacts
from regsweep.matcher.records import ImageRef, OsInfo

RPM = shutil.which("rpm")
RPMBUILD = shutil.which("rpmbuild")
DB_LOAD = shutil.which("db5.3_load")
pytestmark = pytest.mark.skipif(
    RPM is None or RPMBUILD is None, reason="rpm/rpmbuild not installed (apt-get install rpm)"
)
LAYER = "sha256:" + "ab" * 32

_HELLO = """\
Name: hello
Epoch: 2
Version: 1.0
Release: 3.fc39
Summary: t
License: MIT
BuildArch: noarch
%description
t
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/hello
echo hi > %{buildroot}/usr/bin/hello
echo x > %{buildroot}/usr/share/hello/a.txt
%files
/usr/bin/hello
/usr/share/hello
"""
# Binary ``libfoo++`` comes from source ``foo-tools`` (a name with a dash), and carries a
# modularity label as RHEL 8 module builds do.
_FOO = """\
Name: foo-tools
Version: 2.5
Release: 1.module+el8.1+123
Summary: t
License: MIT
BuildArch: noarch
%description
t
%package -n libfoo++
Summary: t
%description -n libfoo++
t
%install
mkdir -p %{buildroot}/usr/lib/python3.9/site-packages/foo-2.5.dist-info %{buildroot}/usr/bin
echo 'Name: foo' > %{buildroot}/usr/lib/python3.9/site-packages/foo-2.5.dist-info/METADATA
echo x > %{buildroot}/usr/bin/foo
%files
/usr/bin/foo
%files -n libfoo++
/usr/lib/python3.9/site-packages/foo-2.5.dist-info
"""
_QF = (
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{MODULARITYLABEL}\\n"
)


@dataclass(frozen=True)
class Fixture:
    """A real rpmdb and what rpm itself says is in it."""

    root: Path
    sqlite: bytes
    #: (hnum, blob) rows as rpm wrote them.
    rows: list[tuple[int, bytes]]
    #: rpm -qa: name → (epoch, version, release, arch, sourcerpm, modularitylabel), "(none)"
    #: where rpm has no value.
    query: dict[str, tuple[str, ...]]
    #: rpm -qa [%{FILENAMES}]: path → package name.
    files: dict[str, str]


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def _rpm_query(root: Path, qf: str, *extra: str) -> str:
    assert RPM is not None
    return _run(RPM, "-qa", "--root", str(root), "--dbpath", "/var/lib/rpm", *extra, "--qf", qf)


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """Build the packages, install them into a fresh sqlite rpmdb, import a gpg key."""
    assert RPM is not None and RPMBUILD is not None
    tmp = tmp_path_factory.mktemp("rpm")
    top, root = tmp / "top", tmp / "root"
    (top / "SPECS").mkdir(parents=True)
    for name, spec, extra in (
        ("hello", _HELLO, []),
        ("foo", _FOO, ["--define", "modularitylabel foo:2.5:8010020200101:c0ffee"]),
    ):
        path = top / "SPECS" / f"{name}.spec"
        path.write_text(spec)
        _run(RPMBUILD, "--quiet", "--define", f"_topdir {top}", *extra, "-bb", str(path))
    rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
    assert len(rpms) == 3
    common = ["--root", str(root), "--dbpath", "/var/lib/rpm"]
    _run(RPM, "--initdb", *common)
    _run(RPM, "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", *common, *rpms)
    # A gpg-pubkey pseudo-package, as ``rpm --import`` of a distro key leaves in every image.
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gen = ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "T <t@example.org>"]
    _run(*gen, "ed25519", "sign", "never", env=env)
    (tmp / "key.asc").write_text(_run("gpg", "--armor", "--export", env=env))
    _run(RPM, "--import", *common, str(tmp / "key.asc"))

    dbfile = root / "var/lib/rpm/rpmdb.sqlite"
    con = sqlite3.connect(dbfile)
    rows = con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    con.close()
    query = {}
    for line in _rpm_query(root, _QF).splitlines():
        name, *rest = line.split("\t")
        query[name] = tuple(rest)
    files = {}
    for line in _rpm_query(root, "[%{FILENAMES}\\t%{=NAME}\\n]").splitlines():
        path, name = line.split("\t")
        if name != "gpg-pubkey":  # it prints one "(none)" line
            files.setdefault(path.lstrip("/"), name)
    return Fixture(root=root, sqlite=dbfile.read_bytes(), rows=rows, query=query, files=files)


def _analyze(path: str, data: bytes, ctx: Context | None = None, **more: bytes) -> AnalyzerResult:
    files = {path: LayerFile(path=path, data=data, layer=LAYER)}
    for p, d in more.items():
        files[p] = LayerFile(path=p, data=d, layer=LAYER)
    return RpmAnalyzer().analyze(files, ctx or Context(ecosystem="Red Hat:8"))


def _expected_packages(fx: Fixture) -> dict[str, str]:
    """name → [epoch:]version-release, from rpm's own query, gpg-pubkey left out."""
    out = {}
    for name, (epoch, version, release, *_) in fx.query.items():
        if name != "gpg-pubkey":
            out[name] = (
                f"{version}-{release}" if epoch == "(none)" else f"{epoch}:{version}-{release}"
            )
    return out


def _check_against_rpm(fx: Fixture, path: str, data: bytes) -> None:
    result = RpmAnalyzer().analyze(
        {path: LayerFile(path=path, data=data, layer=LAYER)}, Context(ecosystem="Red Hat:8")
    )
    assert result.notes == []
    assert {p.name: p.version for p in result.packages} == _expected_packages(fx)
    assert result.owners == fx.files
    for p in result.packages:
        assert (p.type, p.layer, p.path, p.ecosystem) == ("rpm", LAYER, path, "Red Hat:8")
    # The module build carries its stream into the package record (module advisories).
    labels = {p.name: p.modularity_label for p in result.packages}
    module = "foo:2.5:8010020200101:c0ffee"
    assert labels["foo-tools"] == labels["libfoo++"] == module
    assert labels["hello"] is None


# --- header fields, differential against rpm -------------------------------------------------


def test_header_fields_equal_rpm_queryformat(rpmdb: Fixture) -> None:
    """Every field decoded from every blob equals what ``rpm -qa --qf`` prints for it."""
    seen = {}
    for _, blob in rpmdb.rows:
        h = parse_header(blob)
        none = "(none)"
        seen[h.name] = (
            none if h.epoch is None else str(h.epoch),
            h.version,
            h.release,
            h.arch or none,
            h.sourcerpm or none,
            h.modularitylabel or none,
        )
    assert seen == rpmdb.query
    assert rpmdb.query["libfoo++"][-1] == "foo:2.5:8010020200101:c0ffee"


def test_sqlite_packages_and_owners_equal_rpm(rpmdb: Fixture) -> None:
    """rpmdb.sqlite (WAL-mode file, read from memory) yields rpm's packages and file owners."""
    assert rpmdb.sqlite[18:20] == b"\x02\x02"  # rpm really left it in WAL mode
    _check_against_rpm(rpmdb, "var/lib/rpm/rpmdb.sqlite", rpmdb.sqlite)


def test_package_record_fields(rpmdb: Fixture) -> None:
    """EVR, source from the source rpm filename (with the binary's epoch), purl per spec."""
    ctx = Context(ecosystem="Red Hat:8", os=OsInfo(family="rhel", version="8.9"))
    result = RpmAnalyzer().analyze(
        {
            "usr/lib/sysimage/rpm/rpmdb.sqlite": LayerFile(
                path="usr/lib/sysimage/rpm/rpmdb.sqlite", data=rpmdb.sqlite, layer=LAYER
            )
        },
        ctx,
    )
    by = {p.name: p for p in result.packages}
    assert "gpg-pubkey" not in by
    hello, foo = by["hello"], by["libfoo++"]
    assert (hello.version, hello.source_name, hello.source_version) == (
        "2:1.0-3.fc39",
        "hello",
        "2:1.0-3.fc39",
    )
    assert hello.purl == "pkg:rpm/redhat/hello@1.0-3.fc39?arch=noarch&distro=rhel-8.9&epoch=2"
    assert (foo.source_name, foo.source_version) == ("foo-tools", "2.5-1.module+el8.1+123")
    assert foo.purl == (
        "pkg:rpm/redhat/libfoo%2B%2B@2.5-1.module%2Bel8.1%2B123?arch=noarch&distro=rhel-8.9"
    )
    # Without a known OS the purl has no vendor namespace and no distro qualifier.
    bare = _analyze("var/lib/rpm/rpmdb.sqlite", rpmdb.sqlite, Context())
    assert {p.name: p.purl for p in bare.packages}[
        "hello"
    ] == "pkg:rpm/hello@1.0-3.fc39?arch=noarch&epoch=2"
    assert all(p.ecosystem is None for p in bare.packages)
    assert result.owners["usr/lib/python3.9/site-packages/foo-2.5.dist-info/METADATA"] == "libfoo++"


# --- Berkeley DB -----------------------------------------------------------------------------


def _write_bdb(tmp: Path, rows: list[tuple[int, bytes]], *config: str) -> bytes:
    """A Berkeley DB hash ``Packages`` holding ``rows`` as rpm keys them, written by db_load."""
    assert DB_LOAD is not None
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "HEADER=END"]
    # rpm's record 0: the highest instance number, 4 bytes in host order.
    lines += [
        " " + struct.pack("<I", 0).hex(),
        " " + struct.pack("<I", max(h for h, _ in rows)).hex(),
    ]
    for hnum, blob in rows:
        lines += [" " + struct.pack("<I", hnum).hex(), " " + blob.hex()]
    lines.append("DATA=END")
    dump, out = tmp / "dump.txt", tmp / "var/lib/rpm/Packages"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    dump.write_text("\n".join(lines) + "\n")
    args = [a for c in config for a in ("-c", c)]
    _run(DB_LOAD, *args, "-f", str(dump), str(out))
    return out.read_bytes()


needs_db_load = pytest.mark.skipif(DB_LOAD is None, reason="db5.3-util not installed")


@needs_db_load
@pytest.mark.parametrize(
    "config",
    [
        pytest.param(("db_pagesize=512",), id="overflow-chains"),
        pytest.param(("db_pagesize=65536",), id="inline-items"),
        pytest.param(("db_pagesize=4096", "chksum=1"), id="checksummed-pages"),
    ],
)
def test_bdb_packages_equal_rpm(rpmdb: Fixture, tmp_path: Path, config: tuple[str, ...]) -> None:
    """A Berkeley DB Packages that rpm's bdb_ro backend reads yields the same packages here,
    whether headers sit in overflow chains, inline, or behind page checksums."""
    data = _write_bdb(tmp_path, rpmdb.rows, *config)
    listed = _rpm_query(tmp_path, "%{NAME}\\n", "--define", "_db_backend bdb_ro")
    # rpm's bdb_ro reader ignores page checksums and so reads nothing from such a file (rpm
    # never turns them on); that case is checked against rpm's sqlite answers only.
    assert sorted(listed.split()) == ([] if "chksum=1" in config else sorted(rpmdb.query))
    _check_against_rpm(rpmdb, "var/lib/rpm/Packages", data)


@needs_db_load
def test_bdb_overflow_loop_and_truncation_are_notes(rpmdb: Fixture, tmp_path: Path) -> None:
    """A looping overflow chain skips that package with a note; a truncated file still
    yields the packages whose pages survive."""
    data = bytearray(_write_bdb(tmp_path, rpmdb.rows, "db_pagesize=512"))
    pagesize = 512
    overflow = [n for n in range(1, len(data) // pagesize) if data[n * pagesize + 25] == 7]
    first = overflow[0]
    # Point the first overflow page's next_pgno at itself.
    struct.pack_into("<I", data, first * pagesize + 16, first)
    blobs, notes = read_bdb(bytes(data))
    assert len(blobs) == len(rpmdb.rows) - 1
    assert any("overflow chain" in n for n in notes)
    blobs, notes = read_bdb(bytes(data[: len(data) // 2]))
    assert any("truncated" in n for n in notes)


# --- NDB -------------------------------------------------------------------------------------


def _write_ndb(rows: list[tuple[int, bytes]]) -> bytes:
    """An NDB Packages.db laid out as rpm's rpmpkg.c writes it (one slot page)."""
    page = bytearray(4096)
    for i in range(256):
        page[i * 16 : i * 16 + 4] = b"Slot"
    blobs = bytearray()
    blkoff = 4096 // 16
    for slotno, (pkgidx, blob) in enumerate(rows, start=2):
        blkcnt = (16 + len(blob) + 12 + 15) // 16
        head = struct.pack("<4sIII", b"BlbS", pkgidx, 7, len(blob))
        pad = bytes(blkcnt * 16 - (16 + len(blob) + 12))
        adler = zlib.adler32(head + blob + pad)
        blobs += head + blob + pad + struct.pack("<II4s", adler, len(blob), b"BlbE")
        struct.pack_into("<4sIII", page, slotno * 16, b"Slot", pkgidx, blkoff, blkcnt)
        blkoff += blkcnt
    nextpkgidx = max(h for h, _ in rows) + 1
    page[:32] = struct.pack("<4sIIII12x", b"RpmP", 0, len(rows) + 1, 1, nextpkgidx)
    return bytes(page + blobs)


def test_ndb_packages_equal_rpm(rpmdb: Fixture) -> None:
    """An NDB Packages.db holding rpm's blobs yields rpm's packages and owners."""
    _check_against_rpm(rpmdb, "var/lib/rpm/Packages.db", _write_ndb(rpmdb.rows))


def test_ndb_bad_checksum_skips_only_that_package(rpmdb: Fixture) -> None:
    """A blob failing its adler32 is skipped with a note; the others are still read."""
    data = bytearray(_write_ndb(rpmdb.rows))
    data[4096 + 40] ^= 0xFF  # inside the first blob's header bytes
    blobs, notes = read_ndb(bytes(data))
    assert len(blobs) == len(rpmdb.rows) - 1
    assert len(notes) == 1 and "adler32" in notes[0]


# --- choice of database, wants ---------------------------------------------------------------


def test_wants_only_rpm_databases() -> None:
    """The analyzer asks for the three database files in both locations, and nothing else."""
    a = RpmAnalyzer()
    for path in (
        "var/lib/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages",
        "var/lib/rpm/Packages.db",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
        "usr/lib/sysimage/rpm/Packages.db",
    ):
        assert a.wants(path) == SIZE_CAP
    assert a.wants("var/lib/rpm/rpmdb.sqlite-wal") == 64
    for path in ("var/lib/rpm/Name", "var/lib/rpm/Packages.bak", "etc/os-release", "Packages"):
        assert a.wants(path) is None


def test_newest_format_wins_and_the_other_is_noted(rpmdb: Fixture) -> None:
    """With a stale BDB Packages beside rpmdb.sqlite, sqlite is read and the other noted."""
    result = _analyze(
        "var/lib/rpm/Packages",
        b"\0" * 4096,
        **{"var/lib/rpm/rpmdb.sqlite": rpmdb.sqlite},
    )
    assert {p.path for p in result.packages} == {"var/lib/rpm/rpmdb.sqlite"}
    assert result.notes == ["var/lib/rpm/Packages ignored: var/lib/rpm/rpmdb.sqlite is preferred"]


def test_nonempty_wal_is_noted(rpmdb: Fixture) -> None:
    """Changes still in rpmdb.sqlite-wal are not read, and the result says so."""
    result = _analyze(
        "var/lib/rpm/rpmdb.sqlite", rpmdb.sqlite, **{"var/lib/rpm/rpmdb.sqlite-wal": b"\x37"}
    )
    assert any("not yet checkpointed" in n for n in result.notes)


# --- corrupt and hostile input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages", "var/lib/rpm/Packages.db"],
)
@pytest.mark.parametrize(
    "data", [b"", b"\0" * 8192, random.Random(0).randbytes(8192)], ids=["empty", "zeros", "random"]
)
def test_unreadable_database_raises_analyzer_error(path: str, data: bytes) -> None:
    """A file that is not a database at all is an AnalyzerError naming the file, never
    another exception."""
    with pytest.raises(AnalyzerError, match=path):
        _analyze(path, data)


def test_corrupt_sqlite_row_is_a_note(rpmdb: Fixture, tmp_path: Path) -> None:
    """A garbage blob in one sqlite row skips that package with a note; the rest is read."""
    db = tmp_path / "rpmdb.sqlite"
    db.write_bytes(rpmdb.sqlite)
    con = sqlite3.connect(db)
    con.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (b"\xff" * 64, rpmdb.rows[0][0]))
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (999, 'text')")
    con.commit()
    con.close()
    result = _analyze("var/lib/rpm/rpmdb.sqlite", db.read_bytes())
    assert len(result.packages) == len(_expected_packages(rpmdb)) - 1
    assert len(result.notes) == 2


def _blob(entries: list[tuple[int, int, int, int]], data: bytes, il: int | None = None) -> bytes:
    index = b"".join(struct.pack(">iIiI", *e) for e in entries)
    return struct.pack(">II", len(entries) if il is None else il, len(data)) + index + data


_OK = [(1000, 6, 0, 1), (1001, 6, 2, 1), (1002, 6, 4, 1)]


def test_minimal_handmade_header_parses() -> None:
    """The test's own header layout is right (so the hostile variants below test the checks)."""
    h = parse_header(_blob(_OK, b"a\x001\x002\x00"))
    assert (h.name, h.version, h.release, h.epoch, h.files) == ("a", "1", "2", None, [])


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"\0\0\0", id="short"),
        pytest.param(_blob(_OK, b"a\x001\x002\x00", il=0xFFFFFFFF), id="huge-nindex"),
        pytest.param(struct.pack(">II", 3, 0xFFFFFFF0) + b"\0" * 64, id="huge-hsize"),
        pytest.param(_blob(_OK, b"a\x001\x002\x00")[:-1], id="truncated"),
        pytest.param(_blob([*_OK[:2], (1002, 6, 99, 1)], b"a\x001\x002\x00"), id="offset-out"),
        pytest.param(_blob(_OK, b"a\x001\x002"), id="unterminated"),
        pytest.param(_blob([(1000, 4, 0, 1), *_OK[1:]], b"a\x001\x002\x00"), id="wrong-type"),
        pytest.param(
            _blob([(1000, 8, 0, 0xFFFFFFFF), *_OK[1:]], b"a\x001\x002\x00"), id="huge-count"
        ),
        pytest.param(
            _blob([(1003, 4, 1, 1), *_OK], b"a\x001\x002\x00\0\0\0\0"), id="misaligned-int"
        ),
    ],
)
def test_hostile_header_is_header_error(blob: bytes) -> None:
    """Lying counts, sizes and offsets are rejected before any allocation they would drive."""
    with pytest.raises(HeaderError):
        parse_header(blob)


def test_bad_file_list_keeps_the_package() -> None:
    """A dirindex past the dirnames loses the file list (noted), not the package."""
    data = b"a\x001\x002\x00b\x00/d/\x00\0\0\0\x07"
    entries = [*_OK, (1117, 8, 6, 1), (1118, 8, 8, 1), (1116, 4, 12, 1)]
    h = parse_header(_blob(entries, data))
    assert h.files == [] and h.files_error is not None and "dirindex 7" in h.files_error


@given(st.binary(max_size=512))
def test_parse_header_fuzz_raises_only_header_error(data: bytes) -> None:
    """Arbitrary bytes parse or raise HeaderError, nothing else."""
    with contextlib.suppress(HeaderError):
        parse_header(data)


@pytest.fixture(scope="module")
def databases(rpmdb: Fixture, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The fixture's packages in each backend's file, keyed by path in the image."""
    out = {
        "var/lib/rpm/Packages.db": _write_ndb(rpmdb.rows),
        "var/lib/rpm/rpmdb.sqlite": rpmdb.sqlite,
    }
    if DB_LOAD is not None:
        tmp = tmp_path_factory.mktemp("bdb")
        out["var/lib/rpm/Packages"] = _write_bdb(tmp, rpmdb.rows, "db_pagesize=512")
    return out


@given(st.data())
def test_database_readers_fuzz(databases: dict[str, bytes], data: st.DataObject) -> None:
    """Real NDB, sqlite and BDB files with random bytes overwritten raise at most
    DatabaseError (an AnalyzerError), whatever the damage."""
    for path, real in databases.items():
        buf = bytearray(real)
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        with contextlib.suppress(DatabaseError):
            _analyze(path, bytes(buf))


def test_empty_database_is_no_packages_and_no_notes(tmp_path: Path) -> None:
    """A database fresh from ``rpm --initdb`` is valid and empty, not an error."""
    assert RPM is not None
    _run(RPM, "--initdb", "--root", str(tmp_path), "--dbpath", "/var/lib/rpm")
    data = (tmp_path / "var/lib/rpm/rpmdb.sqlite").read_bytes()
    result = _analyze("var/lib/rpm/rpmdb.sqlite", data)
    assert (result.packages, result.owners, result.notes) == ([], {}, [])


def test_sqlite_error_message_with_garbage_bytes_is_analyzer_error(rpmdb: Fixture) -> None:
    """Found by the fuzz test: a corrupt schema makes sqlite quote non-UTF-8 bytes in its
    error message, which the sqlite3 module turns into UnicodeDecodeError; it must surface
    as an AnalyzerError like any other unreadable database."""
    data = rpmdb.sqlite.replace(b"CREATE TABLE", b"CREATE\xffTABLE")
    with pytest.raises(AnalyzerError, match="malformed database schema"):
        _analyze("var/lib/rpm/rpmdb.sqlite", data)


def _layer_tar(entries: dict[str, bytes | str]) -> bytes:
    """A layer tar: bytes are files, str are symlink targets."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, payload in entries.items():
            info = tarfile.TarInfo(name)
            if isinstance(payload, str):
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def test_database_reached_through_a_symlinked_directory_is_read_as_rpm_reads_it(
    rpmdb: Fixture,
) -> None:
    """An image that moved its database (Fedora's ``var/lib/rpm`` became a symlink to
    ``../../usr/lib/sysimage/rpm`` in a later layer, the database now an NDB there): rpm
    opening ``var/lib/rpm/rpmdb.sqlite`` finds no file through the link, so the stale
    sqlite database the lower layer left at that path is not what the image holds; the
    NDB is, read once and without a note, and its packages are rpm's own."""
    stale = bytearray(rpmdb.sqlite)
    stale[100:4096] = bytes(3996)  # not what rpm would read any more
    base = _layer_tar(
        {
            "etc/os-release": b'ID="rocky"\nVERSION_ID="9.3"\nNAME="Rocky Linux"\n',
            "var/lib/rpm/rpmdb.sqlite": bytes(stale),
        }
    )
    top = _layer_tar(
        {
            "usr/lib/sysimage/rpm/Packages.db": _write_ndb(rpmdb.rows),
            "var/lib/rpm": "../../usr/lib/sysimage/rpm",
        }
    )
    scanned = [
        scan_layer(
            io.BytesIO(raw),
            media_type="application/vnd.oci.image.layer.v1.tar",
            digest="sha256:" + hashlib.sha256(raw).hexdigest(),
            diff_id=None,
            analyzers=default_analyzers(),
        )
        for raw in (base, top)
    ]
    facts = ImageFacts(image=ImageRef(ref="t"), config=b"{}", layers=2, size=0)
    assemble(scanned, default_analyzers(), facts)
    rpms = sorted((p.name, p.version, p.path) for p in facts.packages if p.type == "rpm")
    expected = sorted(
        (
            name,
            f"{q[1]}-{q[2]}" if q[0] == "(none)" else f"{q[0]}:{q[1]}-{q[2]}",
            "usr/lib/sysimage/rpm/Packages.db",
        )
        for name, q in rpmdb.query.items()
        if name != "gpg-pubkey"
    )
    assert rpms == expected and rpms
    assert facts.problems == []
    assert facts.ecosystem == "Rocky Linux:9"


def test_large_rpmdb_sqlite_is_read_fully_in_bounded_memory(
    rpmdb: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 40 MB ``rpmdb.sqlite`` (rpm's real database, grown by rows of junk blobs) streamed
    in the walker's 1 MiB pieces is read to its end, every real package found, while the
    reader holds a few MiB: it spools the file to disk for SQLite, rather than holding it
    (and the copies ``deserialize`` makes, and every row's blob) in memory. The spooled
    copy is gone once the reader is closed."""
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    db = tmp_path / "rpmdb.sqlite"
    db.write_bytes(rpmdb.sqlite)
    con = sqlite3.connect(db)
    junk = random.Random(14).randbytes(64 << 10)
    with con:
        for i in range(640):
            con.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (10_000 + i, junk))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = db.read_bytes()
    assert len(data) > 40 << 20
    path = "var/lib/rpm/rpmdb.sqlite"
    reader = RpmAnalyzer().open(path, len(data), SIZE_CAP)
    tracemalloc.start()
    try:
        for at in range(0, len(data), 1 << 20):
            assert reader.feed(data[at : at + (1 << 20)])
        facts = reader.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts is not None and facts.error is None
    assert {p.name: p.version for p in facts.packages} == _expected_packages(rpmdb)
    assert facts.notes[-1] == "600 more notes left out"  # 640 junk rows: 40 notes, the rest counted
    assert peak < 8 << 20, peak
    assert list(spool_dir.iterdir()) == []
