"""Java archives: JAR, WAR, EAR (and Jenkins' JPI/HPI plugins, which are JARs) → Maven packages.

What counts as a package, most trusted first:

* ``META-INF/maven/<group>/<artifact>/pom.properties`` — written by Maven (and Gradle's
  maven-publish) into the artifact it builds. Every one found is reported, so a shaded
  ("uber") JAR that copied the ``pom.properties`` of the libraries it inlined reports those
  too: their classes are really in the image. Name ``groupId:artifactId``, type ``maven``,
  ecosystem ``Maven``, purl ``pkg:maven/<group>/<artifact>@<version>``.
* Only when an archive has no ``pom.properties`` at all: ``META-INF/MANIFEST.MF``. A manifest
  does not carry Maven coordinates (``Implementation-Title`` is often prose, "Apache Commons
  Lang"; ``Bundle-SymbolicName`` is an OSGi id, not ``group:artifact``), and guessing them
  would make advisories match the wrong library or miss the right one. So a manifest-only
  archive is reported with type ``jar``, name ``Bundle-SymbolicName`` (else
  ``Implementation-Title``), version ``Bundle-Version`` (else ``Implementation-Version``),
  ecosystem and purl ``None``: it shows up in the inventory but is never matched — the
  "lower confidence" is explicit rather than a silent guess.

Nested archives (``BOOT-INF/lib/*.jar`` in Spring Boot, ``WEB-INF/lib/*.jar`` in WARs, modules
of an EAR, any ``*.jar`` inside) are opened recursively. Their ``path`` is
``outer.war!/WEB-INF/lib/inner.jar`` (the ``jar:`` URL convention). An archive, top-level or
nested, is kept as it streams (or inflates) by in a ``Spool``: in memory while small, in a
temporary file beyond a few MiB, so that a large archive costs disk, not memory (held in
memory, a member declaring 1 KiB and inflating to 250 MB took a scan to 527 MB). Zip bombs
are bounded four ways: nesting depth (``MAX_DEPTH``), bytes decompressed per top-level
archive (``MAX_INFLATE``; members are inflated 1 MiB at a time, so a member lying about its
size cannot inflate past the budget, nor hold more than a piece in memory), members per
archive (``MAX_MEMBERS``, checked against the count the archive declares before any member is
listed) and the central directory's size (``MAX_DIRECTORY``, also checked first: ``zipfile``
reads it whole). Only stored and deflated members are read (what every jar tool writes):
``zipfile`` inflates bzip2 and LZMA members without bounding a call's output.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import IO, ClassVar
from urllib.parse import quote

from regsweep.crawler.analyzers._spool import Spool
from regsweep.crawler.analyzers.interface import (
    Analyzer,
    AnalyzerResult,
    Context,
    FactsView,
    FileFacts,
    FileReader,
    assemble_files,
)
from regsweep.matcher.records import Package

__all__ = ["JavaAnalyzer"]

_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
#: Largest archive read from a layer; bigger ones arrive truncated and are noted.
SIZE_CAP = 256 << 20
#: Archives inside archives inside the top-level one (Spring Boot needs 1, an EAR holding a
#: WAR holding JARs needs 2).
MAX_DEPTH = 3
#: Decompressed bytes per top-level archive, nested archives and metadata included.
MAX_INFLATE = 512 << 20
#: A ``pom.properties`` or manifest larger than this is not metadata.
MAX_META = 1 << 20
#: Zip members examined per archive (a zip can list millions of tiny entries).
MAX_MEMBERS = 200_000
#: Largest central directory read (``zipfile`` reads it whole): a Spring Boot jar of 30,000
#: entries has ~3 MB of it.
MAX_DIRECTORY = 32 << 20
#: Bytes inflated per read of a member: what one read holds, whatever the member claims.
_PIECE = 1 << 20
#: The compression methods jar tools write, and the only ones ``zipfile`` bounds per read.
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


#: What stdlib ``zipfile`` raises on damaged input besides BadZipFile (fuzzing found
#: NotImplementedError for unknown versions/methods, IndexError and struct.error in header
#: parsing, UnicodeDecodeError in names, RuntimeError for encrypted members).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,  # UnicodeDecodeError is one
    NotImplementedError,
    IndexError,
    RuntimeError,
    struct.error,
    zlib.error,
)


class _Budget:
    """The decompression budget shared by one top-level archive and everything inside it."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class _Bomb(Exception):
    """The decompression budget ran out."""


def _directory(f: IO[bytes], size: int) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory, as the end of central directory record of
    the zip file ``f`` of ``size`` bytes declares them (zip64 aware), or None when there is
    no such record. Read before ``zipfile`` builds one ``ZipInfo`` per entry: a 256 MiB
    archive can list millions of empty entries (gigabytes of ZipInfo)."""
    # The EOCD record is 22 bytes plus a comment of at most 64 KiB, at the very end; a zip64
    # locator (20 bytes) just before it.
    start = max(0, size - 22 - 0xFFFF - 20)
    f.seek(start)
    tail = f.read(size - start)
    at = tail.rfind(b"PK\x05\x06", max(0, len(tail) - 22 - 0xFFFF))
    if at < 0 or at + 22 > len(tail):
        return None
    count, length = struct.unpack_from("<HI", tail, at + 10)
    if count == 0xFFFF or length == 0xFFFFFFFF:
        # Zip64: the locator sits just before the EOCD and points at the zip64 EOCD record,
        # whose total entry count and directory size are 64-bit fields at offsets 32 and 40.
        loc = at - 20
        if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
            return None
        (z64,) = struct.unpack_from("<Q", tail, loc + 8)
        if z64 + 56 > size:
            return None
        f.seek(z64)
        record = f.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        count, length = struct.unpack_from("<QQ", record, 32)
    return int(count), int(length)


def _declared_entries(data: bytes) -> int | None:
    """The number of entries the zip archive ``data`` declares (see ``_directory``)."""
    found = _directory(io.BytesIO(data), len(data))
    return None if found is None else found[0]


def _purl(group: str, artifact: str, version: str) -> str:
    g, a, v = (quote(s, safe=".-_~+") for s in (group, artifact, version))
    return f"pkg:maven/{g}/{a}@{v}"


def _properties(text: str) -> dict[str, str]:
    """The ``key=value`` / ``key: value`` pairs of a Java properties file (no escapes needed:
    Maven writes coordinates, which are plain ASCII)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        eq = [i for i in (line.find("="), line.find(":")) if i >= 0]
        if not eq:
            continue
        i = min(eq)
        out[line[:i].strip()] = line[i + 1 :].strip()
    return out


def _manifest(text: str) -> dict[str, str]:
    """Main-section attributes of a MANIFEST.MF; continuation lines start with one space
    (lines are wrapped at 72 bytes, so long names and versions are split)."""
    out: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and key is not None:
            out[key] += line[1:]
            continue
        k, sep, v = line.partition(":")
        if sep:
            key = k.strip()
            out[key] = v.strip()
    return out


class _ArchiveReader:
    """A top-level archive's reader: its bytes go to a ``Spool`` as they stream by."""

    __slots__ = ("_analyzer", "_path", "_spool", "_too_large")

    def __init__(self, analyzer: JavaAnalyzer, path: str, size: int, cap: int) -> None:
        self._analyzer = analyzer
        self._path = path
        self._spool = Spool(cap)
        #: Past the cap the archive is not read at all (its directory is at its end).
        self._too_large = size > cap

    def feed(self, chunk: bytes) -> bool:
        return not self._too_large and self._spool.feed(chunk)

    def close(self) -> FileFacts | None:
        try:
            if self._too_large:
                return FileFacts(notes=(f"{self._path}: larger than {SIZE_CAP} bytes, not read",))
            return self._analyzer.read_archive(self._path, self._spool.file(), self._spool.size)
        finally:
            self._spool.close()


def _readable(info: zipfile.ZipInfo, cap: int, path: str, notes: list[str]) -> bool:
    """Whether a member is worth opening: declared within ``cap`` and compressed in a way
    whose output is bounded as it is read (``_METHODS``); otherwise a note says why not."""
    if info.file_size > cap:
        notes.append(f"{path}!/{info.filename}: {info.file_size} bytes, over {cap}, skipped")
        return False
    if info.compress_type not in _METHODS:
        notes.append(f"{path}!/{info.filename}: compression method {info.compress_type}, not read")
        return False
    return True


class JavaAnalyzer(Analyzer):
    """Maven coordinates from Java archives, nested archives included."""

    NAME: ClassVar[str] = "java"
    VERSION: ClassVar[int] = 3

    def __init__(
        self,
        *,
        max_depth: int = MAX_DEPTH,
        max_inflate: int = MAX_INFLATE,
        max_members: int = MAX_MEMBERS,
    ) -> None:
        self.max_depth = max_depth
        self.max_inflate = max_inflate
        self.max_members = max_members

    def wants(self, path: str) -> int | None:
        """Any file ending in a Java archive suffix (case-insensitive)."""
        return SIZE_CAP if path.lower().endswith(_SUFFIXES) else None

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A reader that spools the archive (memory while small, disk beyond) and reads it
        at its end (``read_archive``); one past ``cap`` is a note."""
        return _ArchiveReader(self, path, size, cap)

    def read_archive(self, path: str, f: IO[bytes], size: int) -> FileFacts:
        """The packages of the archive ``f`` (seekable, ``size`` bytes) and of the
        archives inside it; a bad archive is a note."""
        found: list[Package] = []
        notes: list[str] = []
        try:
            self._archive(f, size, path, 0, _Budget(self.max_inflate), found, notes)
        except _Bomb:
            notes.append(f"{path}: decompresses past {self.max_inflate} bytes, stopped")
        # A package found before the budget ran out is still really there.
        packages: list[Package] = []
        seen: set[tuple[str, str, str | None]] = set()
        for p in found:
            key = (p.name, p.version, p.path)
            if key not in seen:
                seen.add(key)
                packages.append(p)
        return FileFacts(packages=tuple(packages), notes=tuple(notes))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Every visible archive's packages (those of nested archives keep their
        ``outer!/inner`` path), owned by the OS package that installed the archive."""
        return assemble_files(view, self.NAME, ctx)

    def _archive(
        self,
        f: IO[bytes],
        size: int,
        path: str,
        depth: int,
        budget: _Budget,
        out: list[Package],
        notes: list[str],
    ) -> None:
        try:
            declared = _directory(f, size)
        except _ZIP_ERRORS as e:
            notes.append(f"{path}: not a readable zip archive ({e})")
            return
        if declared is not None and declared[0] > self.max_members:
            notes.append(f"{path}: {declared[0]} members, over {self.max_members}, not read")
            return
        if declared is not None and declared[1] > MAX_DIRECTORY:
            notes.append(
                f"{path}: central directory of {declared[1]} bytes, over {MAX_DIRECTORY}, not read"
            )
            return
        try:
            f.seek(0)
            zf = zipfile.ZipFile(f)
        except _ZIP_ERRORS as e:
            notes.append(f"{path}: not a readable zip archive ({e})")
            return
        with zf:
            # The declared count was checked; a central directory listing more than it
            # declared is cut at the cap all the same.
            infos = zf.infolist()[: self.max_members]
            poms: list[zipfile.ZipInfo] = []
            manifest: zipfile.ZipInfo | None = None
            nested: list[zipfile.ZipInfo] = []
            for info in infos:
                name = info.filename
                # Not ZipInfo.is_dir(): it raises IndexError on an empty name (fuzzing).
                if not name or name.endswith("/"):
                    continue
                if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                    poms.append(info)
                elif name.upper() == "META-INF/MANIFEST.MF":
                    manifest = info
                elif name.lower().endswith(_SUFFIXES):
                    nested.append(info)
            for info in poms:
                raw = self._read(zf, info, MAX_META, path, budget, notes)
                if raw is None:
                    continue
                props = _properties(raw.decode("utf-8", "replace"))
                g, a, v = props.get("groupId"), props.get("artifactId"), props.get("version")
                if not (g and a and v):
                    notes.append(f"{path}!/{info.filename}: groupId/artifactId/version missing")
                    continue
                out.append(
                    Package(
                        name=f"{g}:{a}",
                        version=v,
                        type="maven",
                        ecosystem="Maven",
                        purl=_purl(g, a, v),
                        path=path,
                    )
                )
            if not poms and manifest is not None:
                raw = self._read(zf, manifest, MAX_META, path, budget, notes)
                attrs = _manifest(raw.decode("utf-8", "replace")) if raw is not None else {}
                # OSGi headers may carry directives: "org.foo.bar;singleton:=true".
                name = attrs.get("Bundle-SymbolicName", "").split(";")[0].strip() or attrs.get(
                    "Implementation-Title", ""
                )
                version = attrs.get("Bundle-Version") or attrs.get("Implementation-Version")
                if name and version:
                    out.append(
                        Package(
                            name=name,
                            version=version,
                            type="jar",
                            path=path,
                        )
                    )
            if nested and depth >= self.max_depth:
                notes.append(f"{path}: archives nested deeper than {self.max_depth} not opened")
                return
            for info in nested:
                spool = self._extract(zf, info, SIZE_CAP, path, budget, notes)
                if spool is None:
                    continue
                try:
                    inner = f"{path}!/{info.filename}"
                    self._archive(spool.file(), spool.size, inner, depth + 1, budget, out, notes)
                finally:
                    spool.close()

    @staticmethod
    def _extract(
        zf: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        cap: int,
        path: str,
        budget: _Budget,
        notes: list[str],
    ) -> Spool | None:
        """A member up to ``cap`` bytes, inflated a piece at a time into a ``Spool``
        (memory while small, disk beyond) and charged to the budget; None with a note on
        damage. The declared size is not trusted: the reads themselves are bounded."""
        if not _readable(info, cap, path, notes):
            return None
        spool = Spool(cap + 1)
        try:
            with zf.open(info) as fh:
                while piece := fh.read(_PIECE):
                    budget.left -= len(piece)
                    if budget.left < 0:
                        raise _Bomb
                    spool.feed(piece)
                    if spool.size > cap:
                        notes.append(f"{path}!/{info.filename}: inflates past {cap} bytes, skipped")
                        spool.close()
                        return None
        except _ZIP_ERRORS as e:
            notes.append(f"{path}!/{info.filename}: unreadable ({e})")
            spool.close()
            return None
        except BaseException:
            spool.close()
            raise
        return spool

    @staticmethod
    def _read(
        zf: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        cap: int,
        path: str,
        budget: _Budget,
        notes: list[str],
    ) -> bytes | None:
        """At most ``cap`` bytes of a member, charged to the budget; None with a note on
        damage. The declared size is not trusted: the read itself is bounded."""
        if not _readable(info, cap, path, notes):
            return None
        want = min(cap, budget.left) + 1
        try:
            with zf.open(info) as fh:
                raw = fh.read(want)
        except _ZIP_ERRORS as e:
            notes.append(f"{path}!/{info.filename}: unreadable ({e})")
            return None
        budget.left -= len(raw)
        if budget.left < 0:
            raise _Bomb
        if len(raw) > cap:
            notes.append(f"{path}!/{info.filename}: inflates past {cap} bytes, skipped")
            return None
        return raw
