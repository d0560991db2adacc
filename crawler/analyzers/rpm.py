"""rpm: installed packages from the rpm database, in any of its three formats.

* ``rpmdb.sqlite`` (rpm ≥ 4.16: Fedora 33+, RHEL/Rocky/Alma 9, Amazon Linux 2023): table
  ``Packages(hnum, blob)``. Spooled as it streams by to a private temporary file (removed
  once read), which ``sqlite3`` opens read-only: SQLite reads the pages it needs through its
  small page cache, and the rows are decoded one at a time, so memory stays a few MB
  whatever the database's size (held in memory, a 250 MB database cost 1.4 GB: the buffer,
  the copies ``deserialize`` needs, every row's blob).
* ``Packages``, Berkeley DB hash (RHEL/CentOS 7–8, Amazon Linux 2): walked page by page
  (``_rpmdb_bdb``), no libdb.
* ``Packages.db``, rpm's NDB (SUSE / openSUSE): slots and ``BlbS`` blobs (``_rpmdb_ndb``).

All three store the same thing, an rpm header blob per package, decoded by ``_rpmdb_header``.
The database lives in ``var/lib/rpm`` or, on newer Fedora/openSUSE, ``usr/lib/sysimage/rpm``
(``var/lib/rpm`` then being a symlink to it); one database is read per image, the newest format
first, because an image converted from one backend to another may keep the stale old file.

Each package: type ``rpm``, version ``[epoch:]version-release`` (rpm's EVR, the form the rpm
version scheme and the advisories use), source name and version from the ``SOURCERPM``
filename (with the binary's epoch: a source rpm filename never carries one, and the
advisories for Red Hat-family distros key fixes by the epoch-ful EVR), purl per the purl spec
(``pkg:rpm/<vendor>/<name>@<version>-<release>?arch=…&distro=…&epoch=…``). ``gpg-pubkey``
entries are the keys rpm trusts, stored as fake packages; they are skipped. Every file of every
package goes into ``owners`` so that language analyzers can tell a distro-installed Python or
npm package from one installed by pip or npm.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Iterator
from typing import ClassVar, assert_never
from urllib.parse import quote

from regsweep.crawler.analyzers._pkgutil import Notes, package_url, placed
from regsweep.crawler.analyzers._rpmdb_bdb import read_bdb
from regsweep.crawler.analyzers._rpmdb_header import (
    DatabaseError,
    HeaderError,
    RpmHeader,
    parse_header,
)
from regsweep.crawler.analyzers._rpmdb_ndb import read_ndb
from regsweep.crawler.analyzers._spool import Spool
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    FileReader,
)
from regsweep.matcher.records import OsInfo, Package

__all__ = ["RpmAnalyzer"]

#: Largest rpm database read from a layer. A full RHEL 8 ``Packages`` is around 100 MB.
SIZE_CAP = 256 << 20
#: Notes beyond this many are counted, not listed (a garbage file can yield one per page).
MAX_NOTES = 40


class Backend(enum.Enum):
    """The on-disk formats of the rpm database."""

    SQLITE = "sqlite"
    NDB = "ndb"
    BDB = "bdb"


_DIRS = ("usr/lib/sysimage/rpm", "var/lib/rpm")
_FILES = ((Backend.SQLITE, "rpmdb.sqlite"), (Backend.NDB, "Packages.db"), (Backend.BDB, "Packages"))
#: The databases in order of preference: newest format first, then the newer location.
_CANDIDATES = tuple((f"{d}/{name}", backend) for backend, name in _FILES for d in _DIRS)
_WANTED = frozenset(path for path, _ in _CANDIDATES)
_WAL_SUFFIX = "-wal"
#: A WAL file is only looked at to say whether it holds anything.
_WAL_CAP = 64

# os-release ``ID`` → the vendor the purl spec puts in an rpm purl's namespace, where the two
# differ; any other ID is used as it is.
_PURL_VENDOR = {
    "rhel": "redhat",
    "amzn": "amazon",
    "ol": "oracle",
    "sles": "suse",
    "sled": "suse",
    "sle-micro": "suse",
    "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse",
    "opensuse-leap-micro": "opensuse",
}


def _sqlite_message(exc: sqlite3.Error | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        # The undecodable bytes *are* sqlite's message.
        return bytes(exc.object).decode("utf-8", "replace")
    return str(exc)


_SQLITE_MAGIC = b"SQLite format 3\0"


def _read_sqlite(path: str, notes: list[str]) -> Iterator[bytes]:
    """The header blobs of the ``rpmdb.sqlite`` file at ``path`` (in ``hnum`` order), one at
    a time; what was skipped is added to ``notes``. ``DatabaseError`` when not even the
    first row can be read."""
    with open(path, "r+b") as f:
        head = f.read(100)
        if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
            raise DatabaseError("not an SQLite database")
        # rpm runs sqlite in WAL mode, recorded as format version 2 in bytes 18–19; a
        # read-only connection to such a file without its -shm would refuse it. Marking it
        # rollback-journal (1) reads the same pages: everything already checkpointed into
        # the main file. (The file is this reader's own copy.)
        if head[18:20] == b"\x02\x02":
            f.seek(18)
            f.write(b"\x01\x01")
    # immutable: no locks, no journal or WAL looked for beside the file.
    con = sqlite3.connect(f"file:{quote(path)}?mode=ro&immutable=1", uri=True)
    # A corrupt page can turn a row into TEXT that is not UTF-8; decoding it would raise
    # outside sqlite3.Error. As bytes it is just a blob that fails to parse, and is noted.
    con.text_factory = bytes
    # sqlite's error messages quote names from the (possibly garbage) schema, and the sqlite3
    # module raises UnicodeDecodeError when it cannot decode such a message.
    failures = (sqlite3.Error, UnicodeDecodeError)
    rows = 0
    try:
        try:
            cursor = con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
        except failures as exc:
            raise DatabaseError(f"unreadable: {_sqlite_message(exc)}") from exc
        while True:
            try:
                row = cursor.fetchone()
            except failures as exc:
                # A corrupt page mid-table: what was read so far stands.
                if not rows:
                    raise DatabaseError(f"unreadable: {_sqlite_message(exc)}") from exc
                notes.append(f"stopped after {rows} rows: {_sqlite_message(exc)}")
                break
            if row is None:
                break
            rows += 1
            hnum, blob = row
            if isinstance(blob, bytes):
                yield blob
            else:
                notes.append(f"row {hnum} holds no blob, skipped")
    finally:
        con.close()


def _read(backend: Backend, data: bytes) -> tuple[list[bytes], list[str]]:
    """The header blobs of a database held in memory (Berkeley DB or NDB)."""
    if backend is Backend.NDB:
        return read_ndb(data)
    if backend is Backend.BDB:
        return read_bdb(data)
    if backend is Backend.SQLITE:
        raise AssertionError("rpmdb.sqlite is spooled to disk, never read from memory")
    assert_never(backend)


def _evr(epoch: int | None, version: str, release: str) -> str:
    return f"{epoch}:{version}-{release}" if epoch is not None else f"{version}-{release}"


def _source(sourcerpm: str | None) -> tuple[str, str, str] | None:
    """(name, version, release) from ``name-version-release.src.rpm``, read from the right:
    release and version cannot contain ``-``, a name can."""
    if not sourcerpm:
        return None
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if sourcerpm.endswith(suffix):
            parts = sourcerpm[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], parts[1], parts[2]
    return None


def _purl(h: RpmHeader) -> str:
    """The purl without the distribution (namespace and ``distro``: see ``_place``)."""
    return package_url(
        "rpm",
        None,
        h.name,
        f"{h.version}-{h.release}",
        {
            "arch": h.arch,
            # The purl spec keeps the epoch out of the version, as a qualifier.
            "epoch": str(h.epoch) if h.epoch is not None else None,
        },
    )


def _distribution(os: OsInfo | None) -> tuple[str | None, str | None]:
    """The purl namespace (the vendor) and ``distro`` qualifier of an image's rpm packages."""
    family = os.family.lower() if os is not None and os.family else None
    if family is None:
        return None, None
    distro = f"{family}-{os.version}" if os is not None and os.version else None
    return _PURL_VENDOR.get(family, family), distro


def _facts(path: str, blobs: Iterable[bytes], notes: Notes, later: list[str]) -> FileFacts:
    """Packages (a purl without the distribution yet) and owners of a database's header
    ``blobs``, taken one at a time; ``later``: the database's own notes, complete once the
    blobs are consumed."""
    packages: list[Package] = []
    owners: dict[str, str] = {}
    for blob in blobs:
        try:
            h = parse_header(blob)
        except HeaderError as exc:
            notes.add(f"{path}: package header skipped: {exc}")
            continue
        if h.name == "gpg-pubkey":
            continue
        if h.files_error is not None:
            notes.add(f"{path}: {h.name}: file list unreadable: {h.files_error}")
        evr = _evr(h.epoch, h.version, h.release)
        source = _source(h.sourcerpm)
        packages.append(
            Package(
                name=h.name,
                version=evr,
                type="rpm",
                source_name=source[0] if source else None,
                source_version=_evr(h.epoch, source[1], source[2]) if source else None,
                purl=_purl(h),
                path=path,
                modularity_label=h.modularitylabel,
            )
        )
        for owned in h.files:
            owners.setdefault(owned.lstrip("/"), h.name)
    for note in later:
        notes.add(f"{path}: {note}")
    return FileFacts(packages=tuple(packages), owners=owners, notes=tuple(notes.result()))


class _SqliteReader:
    """``rpmdb.sqlite``'s reader: the file's first ``cap`` bytes go to a private temporary
    file as they stream by; at the end SQLite reads the rows from it, one at a time."""

    __slots__ = ("_path", "_spool", "_truncated")

    def __init__(self, path: str, size: int, cap: int) -> None:
        self._path = path
        self._spool = Spool(cap, named=True)
        self._truncated = size > cap

    def feed(self, chunk: bytes) -> bool:
        return self._spool.feed(chunk)

    def close(self) -> FileFacts | None:
        path, spool = self._path, self._spool
        notes = Notes(MAX_NOTES)
        try:
            if self._truncated:
                notes.add(f"{path} is larger than {SIZE_CAP} bytes; read only its start")
            later: list[str] = []
            try:
                return _facts(path, _read_sqlite(spool.path(), later), notes, later)
            except DatabaseError as exc:
                return FileFacts(error=f"{path}: {exc}", notes=tuple(notes.result()))
        finally:
            spool.close()


_BACKENDS = dict(_CANDIDATES)


class RpmAnalyzer(BufferedAnalyzer):
    """Installed rpm packages and the files they own."""

    NAME: ClassVar[str] = "rpm"
    VERSION: ClassVar[int] = 4

    def wants(self, path: str) -> int | None:
        """The rpm database files (and the sqlite WAL, to tell whether it is empty)."""
        if path in _WANTED:
            return SIZE_CAP
        if path.endswith(_WAL_SUFFIX) and path[: -len(_WAL_SUFFIX)] in _WANTED:
            return _WAL_CAP
        return None

    def buffers(self, path: str) -> bool:
        """Every file but ``rpmdb.sqlite``, which is spooled to disk."""
        return _BACKENDS.get(path) is not Backend.SQLITE

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """``rpmdb.sqlite``'s reader spools it to a temporary file; the other files are
        buffered and ``read``."""
        if _BACKENDS.get(path) is Backend.SQLITE:
            return _SqliteReader(path, size, cap)
        return super().open(path, size, cap)

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Packages (a purl without the distribution yet) and owners of one database; a WAL
        file is kept as present (its size is all that matters)."""
        backend = _BACKENDS.get(path)
        if backend is None:
            return FileFacts()  # the WAL
        notes = Notes(MAX_NOTES)
        if truncated:
            notes.add(f"{path} is larger than {SIZE_CAP} bytes; read only its start")
        try:
            blobs, db_notes = _read(backend, data)
        except DatabaseError as exc:
            return FileFacts(error=f"{path}: {exc}", notes=tuple(notes.result()))
        for note in db_notes:
            notes.add(f"{path}: {note}")
        return _facts(path, blobs, notes, [])

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Packages and owners from the preferred rpm database present in the image.

        Raises ``DatabaseError`` (an ``AnalyzerError``) only when that database cannot be read
        at all; bad packages inside it are skipped with a note.
        """
        present = [f for p, _ in _CANDIDATES if (f := view.get(self.NAME, p)) is not None]
        if not present:
            return AnalyzerResult()
        db = present[0]
        notes = Notes(MAX_NOTES)
        for other in present[1:]:
            # The same file seen through the var/lib/rpm symlink is not worth a note.
            if other.path != db.path and other.facts != db.facts:
                notes.add(f"{other.path} ignored: {db.path} is preferred")
        wal = view.get(self.NAME, db.path + _WAL_SUFFIX)
        if wal is not None and wal.size:
            notes.add(f"{wal.path} is not empty: changes not yet checkpointed are not read")
        if db.facts.error is not None:
            raise DatabaseError(db.facts.error)
        for note in db.facts.notes:
            notes.add(note)
        namespace, distro = _distribution(ctx.os)
        packages = placed(
            db.facts.packages, ctx.ecosystem, namespace, distro, layer=db.layer, path=db.path
        )
        return AnalyzerResult(packages=packages, owners=dict(db.facts.owners), notes=notes.result())
