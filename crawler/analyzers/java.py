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
of an EAR, any ``*.jar`` inside) are opened recursively from memory. Their ``path`` is
``outer.war!/WEB-INF/lib/inner.jar`` (the ``jar:`` URL convention). Zip bombs are bounded
three ways: nesting depth (``MAX_DEPTH``), bytes decompressed per top-level archive
(``MAX_INFLATE``; reads are capped by ``read(n)``, so a member lying about its size cannot
inflate past the budget) and members per archive (``MAX_MEMBERS``, checked against the
count the archive declares before any member is listed).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import ClassVar
from urllib.parse import quote

from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
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


def _declared_entries(data: bytes) -> int | None:
    """The entry count the zip's end-of-central-directory record declares (zip64 aware), or
    None when there is no such record. Read before ``zipfile`` builds one ``ZipInfo`` per
    entry: a 256 MiB archive can list millions of empty entries (gigabytes of ZipInfo)."""
    # The EOCD record is 22 bytes plus a comment of at most 64 KiB, at the very end.
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or at + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, at + 10)
    if count == 0xFFFF:
        # Zip64: the locator (20 bytes) sits just before the EOCD and points at the zip64
        # EOCD record, whose total entry count is a 64-bit field at offset 32.
        loc = at - 20
        if loc < 0 or data[loc : loc + 4] != b"PK\x06\x07":
            return None
        (z64,) = struct.unpack_from("<Q", data, loc + 8)
        if z64 + 40 > len(data) or data[z64 : z64 + 4] != b"PK\x06\x06":
            return None
        (count,) = struct.unpack_from("<Q", data, z64 + 32)
    return int(count)


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


class JavaAnalyzer(BufferedAnalyzer):
    """Maven coordinates from Java archives, nested archives included."""

    NAME: ClassVar[str] = "java"
    VERSION: ClassVar[int] = 2

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

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Open the archive from memory; a bad archive is a note."""
        if truncated:
            return FileFacts(notes=(f"{path}: larger than {SIZE_CAP} bytes, not read",))
        found: list[Package] = []
        notes: list[str] = []
        try:
            self._archive(data, path, 0, _Budget(self.max_inflate), found, notes)
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
        data: bytes,
        path: str,
        depth: int,
        budget: _Budget,
        out: list[Package],
        notes: list[str],
    ) -> None:
        declared = _declared_entries(data)
        if declared is not None and declared > self.max_members:
            notes.append(f"{path}: {declared} members, over {self.max_members}, not read")
            return
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
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
                raw = self._read(zf, info, SIZE_CAP, path, budget, notes)
                if raw is not None:
                    inner = f"{path}!/{info.filename}"
                    self._archive(raw, inner, depth + 1, budget, out, notes)

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
        if info.file_size > cap:
            notes.append(f"{path}!/{info.filename}: {info.file_size} bytes, over {cap}, skipped")
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
