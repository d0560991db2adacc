"""Rust executables built with cargo-auditable: the ``.dep-v0`` ELF section → crates.

cargo-auditable stores the resolved dependency tree in a section named ``.dep-v0``: zlib-
compressed JSON ``{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}``
(``source`` is ``crates.io``, ``git``, ``local`` or ``registry``). Only ``crates.io`` crates are
reported — they are what the crates.io advisories name; a ``local`` package is the program
itself or a path dependency (no advisory can name it) and a ``git``/other-registry crate may
share a name with an unrelated crates.io crate, so neither is matched. ``kind: "build"``
crates (build scripts' dependencies) are reported too: cargo-auditable records them because a
compromised build dependency compromises the binary; they are not linked into it, which the
matcher cannot tell yet (noted as a limitation in the report, not guessed here).

The ELF section headers are read directly (32/64-bit, either byte order); the decompressed
JSON is capped at ``MAX_JSON`` bytes (a zlib bomb in a section is cheap to make).

Which files: as for Go binaries (``bin``/``sbin`` dirs, extension-less files at the top or in
app roots), capped at 256 MiB; files that are not ELF are skipped silently.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import msgspec

from regsweep.crawler.analyzers.gobinary import GoBinaryAnalyzer
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.matcher.records import Package

__all__ = ["RustBinaryAnalyzer", "RustAuditError", "read_elf_section"]

SIZE_CAP = 256 << 20
SECTION = ".dep-v0"
#: cargo-auditable's own limit for the decompressed data is 8 MiB.
MAX_JSON = 8 << 20
_ELF = b"\x7fELF"


class RustAuditError(ValueError):
    """An ELF file or its ``.dep-v0`` data that cannot be read."""


class _Crate(msgspec.Struct, kw_only=True):
    name: str
    version: str
    #: ``crates.io``, ``git``, ``local``, ``registry``; absent in hand-made data → not matched.
    source: str = ""
    kind: str = "runtime"


class _DepInfo(msgspec.Struct, kw_only=True):
    packages: list[_Crate]


_DECODER = msgspec.json.Decoder(_DepInfo)


def read_elf_section(data: bytes, wanted: str) -> bytes | None:
    """The contents of the ELF section named ``wanted``, None when the file has none.

    Raises RustAuditError for a file that claims to be ELF but whose headers do not fit it.
    """
    if len(data) < 52 or not data.startswith(_ELF):
        raise RustAuditError("not an ELF file")
    cls, order = data[4], data[5]
    if cls not in (1, 2) or order not in (1, 2):
        raise RustAuditError("bad ELF class or byte order")
    e = "<" if order == 1 else ">"
    try:
        if cls == 2:
            (shoff,) = struct.unpack_from(e + "Q", data, 40)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
            fmt, need = e + "IIQQQQ", 40
        else:
            (shoff,) = struct.unpack_from(e + "I", data, 32)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 46)
            fmt, need = e + "IIIIII", 24
        if shoff == 0 or shnum == 0:
            return None  # stripped of section headers: nothing to find
        if shentsize < need or shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
            raise RustAuditError("ELF section headers outside the file")
        sections = []
        for i in range(shnum):
            name, _type, _flags, _addr, off, size = struct.unpack_from(
                fmt, data, shoff + i * shentsize
            )
            sections.append((name, _type, off, size))
        _n, _t, stroff, strsize = sections[shstrndx]
        if stroff + strsize > len(data):
            raise RustAuditError("ELF section name table outside the file")
        strtab = data[stroff : stroff + strsize]
        key = wanted.encode() + b"\0"
        for name, sh_type, off, size in sections:
            if strtab[name : name + len(key)] == key:
                if sh_type == 8:  # SHT_NOBITS: no bytes in the file
                    return None
                if off + size > len(data):
                    raise RustAuditError(f"section {wanted} outside the file")
                return data[off : off + size]
    except struct.error as err:
        raise RustAuditError("truncated ELF headers") from err
    return None


def _inflate(blob: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, MAX_JSON + 1)
    except zlib.error as err:
        raise RustAuditError(f"{SECTION} is not zlib data ({err})") from err
    if len(out) > MAX_JSON:
        raise RustAuditError(f"{SECTION} inflates past {MAX_JSON} bytes")
    return out


def _purl(name: str, version: str) -> str:
    return f"pkg:cargo/{quote(name, safe='-_.')}@{quote(version, safe='.-_~+')}"


class RustBinaryAnalyzer:
    """crates.io dependencies of binaries built with cargo-auditable."""

    NAME: ClassVar[str] = "rust-binary"
    VERSION: ClassVar[int] = 1
    _paths = GoBinaryAnalyzer()

    def wants(self, path: str) -> int | None:
        """The same executable locations as Go binaries."""
        return SIZE_CAP if self._paths.wants(path) is not None else None

    def analyze(self, files: Mapping[str, LayerFile], ctx: Context) -> AnalyzerResult:
        """Read ``.dep-v0`` from every ELF file that has one."""
        packages: list[Package] = []
        notes: list[str] = []
        for path in sorted(files):
            f = files[path]
            if not f.data.startswith(_ELF):
                continue
            try:
                blob = read_elf_section(f.data, SECTION)
                if blob is None:
                    continue
                info = _DECODER.decode(_inflate(blob))
            except RustAuditError as e:
                if not f.truncated:  # a truncated file's headers may simply be cut off
                    notes.append(f"{path}: {e}")
                else:
                    notes.append(f"{path}: larger than {SIZE_CAP} bytes, not read")
                continue
            except msgspec.ValidationError as e:
                notes.append(f"{path}: {SECTION} JSON not as expected ({e})")
                continue
            except (msgspec.DecodeError, UnicodeDecodeError) as e:  # bad UTF-8 in a string
                notes.append(f"{path}: {SECTION} is not JSON ({e})")
                continue
            owner = ctx.owners.get(path)
            packages.extend(
                Package(
                    name=c.name,
                    version=c.version,
                    type="cargo",
                    ecosystem="crates.io",
                    purl=_purl(c.name, c.version),
                    layer=f.layer,
                    path=path,
                    owner=owner,
                )
                for c in info.packages
                if c.source == "crates.io"
            )
        return AnalyzerResult(packages=packages, notes=notes)
