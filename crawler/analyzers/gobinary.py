"""Go executables: the build information the Go linker embeds → Go modules and the toolchain.

Every Go binary built with modules carries a ``.go.buildinfo`` blob that starts, 16-byte
aligned, with the magic ``\\xff Go buildinf:``; byte 14 is the pointer size, byte 15 flags
(bit 0 big-endian, bit 1 "strings inline"). Two layouts exist:

* Go 1.18+: the toolchain version and the module info follow the 32-byte header as two
  uvarint-length-prefixed strings. No address translation is needed, so this works the same
  for ELF, Mach-O and PE files.
* Go ≤ 1.17: bytes 16 and 16+ptrsize hold two *virtual addresses* of Go string headers
  (pointer, length). They are mapped to file offsets through the ELF program headers; old
  Mach-O and PE binaries are reported in a note rather than read (they are rare in Linux
  images).

The module info (``runtime/debug.BuildInfo`` text, between two 16-byte sentinels) has lines
``path``, ``mod`` (the main module), ``dep`` (a dependency) and ``=>`` (the replacement of the
line before). Reported:

* every ``dep``; when a ``=>`` replaces it by another module version, that module (it is what
  was built in); a replacement by a local directory (version ``(devel)``) has no version of
  its own, so the dependency is reported as it was required;
* the main module, unless its version is ``(devel)`` (a local build no advisory can name);
* the toolchain as a package ``stdlib`` (as Trivy and Grype do, and as the Go vulnerability
  database names the standard library): ``go1.21.3`` → ``v1.21.3``, ``go1.21rc2`` →
  ``v1.21.0-rc.2``, experiment suffixes (``go1.22.0 X:boringcrypto``) dropped.

Versions keep the ``v`` of go.mod; the semver scheme accepts it.

Which files: the analyzer sees only paths, so the predicate must be cheap and bounded (the
walker buffers what is wanted). Wanted: any file directly in a ``bin`` or ``sbin`` directory
(``usr/bin``, ``usr/local/bin``, ``opt/x/bin`` …), and extension-less files at the top
(``/manager``, ``/coredns``), directly in ``app/``, ``ko-app/``, ``usr/local/`` or ``opt/``,
or one directory below ``app/`` and ``opt/``. This misses a Go binary installed deeper or
with an extension (``/usr/local/go/pkg/tool/*/compile``: the ``go`` binary in ``bin`` carries
the same toolchain), in exchange for never buffering whole data trees. Files are capped at
256 MiB; only those starting with an ELF, Mach-O or PE magic are searched.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.matcher.records import Package

__all__ = ["BuildInfo", "GoBinaryAnalyzer", "GoBuildInfoError", "NoBuildInfo", "parse_buildinfo"]

SIZE_CAP = 256 << 20
MAGIC = b"\xff Go buildinf:"
_ELF = b"\x7fELF"
_MACHO = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
_PE = b"MZ"
#: No buildinfo string is longer than this (module lists of huge programs are ~100 KiB).
_MAX_STRING = 16 << 20
_APP_DIRS = frozenset(("", "app", "ko-app", "opt", "usr/local"))
_GO_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?")


class GoBuildInfoError(ValueError):
    """The file is not a Go binary with readable build information."""


class NoBuildInfo(GoBuildInfoError):
    """No aligned buildinfo magic: not a Go binary (or one built without module support).
    The magic also occurs unaligned as a string constant in programs that read Go binaries
    (scanners, debuggers), which must not be reported as damaged."""


class BuildInfo:
    """What the buildinfo says: toolchain version, main module and dependency lines."""

    __slots__ = ("go_version", "main", "deps")

    def __init__(
        self, go_version: str, main: tuple[str, str] | None, deps: list[tuple[str, str]]
    ) -> None:
        self.go_version = go_version
        self.main = main
        self.deps = deps


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise GoBuildInfoError("truncated varint in buildinfo")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _elf_segments(data: bytes) -> list[tuple[int, int, int]]:
    """The PT_LOAD segments of an ELF file as (vaddr, offset, filesz)."""
    if len(data) < 52 or not data.startswith(_ELF):
        raise GoBuildInfoError("pre-1.18 buildinfo outside an ELF file is not supported")
    is64 = data[4] == 2
    big = data[5] == 2
    e = ">" if big else "<"
    try:
        if is64:
            (phoff,) = struct.unpack_from(e + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
        else:
            (phoff,) = struct.unpack_from(e + "I", data, 28)
            phentsize, phnum = struct.unpack_from(e + "HH", data, 42)
        segs: list[tuple[int, int, int]] = []
        for i in range(phnum):
            o = phoff + i * phentsize
            if is64:
                p_type, _fl, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
                    e + "IIQQQQ", data, o
                )
            else:
                p_type, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(e + "IIIII", data, o)
            if p_type == 1:  # PT_LOAD
                segs.append((p_vaddr, p_offset, p_filesz))
    except struct.error as err:
        raise GoBuildInfoError("truncated ELF program headers") from err
    return segs


def _read_at_va(data: bytes, segs: list[tuple[int, int, int]], va: int, n: int) -> bytes:
    for vaddr, off, size in segs:
        if vaddr <= va and va + n <= vaddr + size:
            start = off + (va - vaddr)
            if start + n > len(data):
                break
            return data[start : start + n]
    raise GoBuildInfoError(f"address {va:#x} is not in the file")


def _old_string(data: bytes, segs: list[tuple[int, int, int]], va: int, ps: int, e: str) -> bytes:
    fmt = e + ("Q" if ps == 8 else "I")
    hdr = _read_at_va(data, segs, va, 2 * ps)
    (ptr,) = struct.unpack_from(fmt, hdr, 0)
    (length,) = struct.unpack_from(fmt, hdr, ps)
    if length > _MAX_STRING:
        raise GoBuildInfoError("implausible string length in buildinfo")
    return _read_at_va(data, segs, ptr, length)


def parse_buildinfo(data: bytes) -> BuildInfo:
    """Parse the Go build information of an executable image held in ``data``.

    Raises GoBuildInfoError when there is none or it is damaged.
    """
    pos = data.find(MAGIC)
    while pos >= 0 and pos % 16:
        # The blob is 16-byte aligned in the file; an unaligned hit is a string constant.
        pos = data.find(MAGIC, pos + 1)
    if pos < 0:
        raise NoBuildInfo("no Go buildinfo")
    if pos + 32 > len(data):
        raise GoBuildInfoError("truncated Go buildinfo header")
    ptr_size, flags = data[pos + 14], data[pos + 15]
    if flags & 2:
        n, p = _uvarint(data, pos + 32)
        if n > _MAX_STRING or p + n > len(data):
            raise GoBuildInfoError("truncated Go buildinfo")
        version = data[p : p + n]
        n, p = _uvarint(data, p + n)
        if n > _MAX_STRING or p + n > len(data):
            raise GoBuildInfoError("truncated Go buildinfo")
        mod = data[p : p + n]
    else:
        if ptr_size not in (4, 8):
            raise GoBuildInfoError(f"bad pointer size {ptr_size}")
        segs = _elf_segments(data)
        e = ">" if flags & 1 else "<"
        fmt = e + ("Q" if ptr_size == 8 else "I")
        try:
            (vptr,) = struct.unpack_from(fmt, data, pos + 16)
            (mptr,) = struct.unpack_from(fmt, data, pos + 16 + ptr_size)
        except struct.error as err:
            raise GoBuildInfoError("truncated Go buildinfo header") from err
        version = _old_string(data, segs, vptr, ptr_size, e)
        mod = _old_string(data, segs, mptr, ptr_size, e)
    if not version.startswith(b"go"):
        raise GoBuildInfoError(f"not a Go version: {version[:40]!r}")
    # runtime/debug wraps modinfo in two 16-byte sentinels (non-ASCII bytes, so cut them
    # before decoding); without them there is no module info.
    mod = mod[16:-16] if len(mod) >= 33 and mod[-17] == 0x0A else b""
    return _parse_modinfo(version.decode("utf-8", "replace"), mod.decode("utf-8", "replace"))


def _parse_modinfo(version: str, mod: str) -> BuildInfo:
    main: tuple[str, str] | None = None
    deps: list[tuple[str, str]] = []
    last: str | None = None  # "mod" or "dep": what a following "=>" replaces
    for line in mod.split("\n"):
        f = line.split("\t")
        match f[0]:
            case "mod" if len(f) >= 3:
                main, last = (f[1], f[2]), "mod"
            case "dep" if len(f) >= 3:
                deps.append((f[1], f[2]))
                last = "dep"
            case "=>" if len(f) >= 3 and last is not None:
                # A replacement with a version is the module actually built in; a local
                # directory replacement ("=> ../x" with no version) keeps the required one.
                if f[2] and f[2] != "(devel)":
                    if last == "dep":
                        deps[-1] = (f[1], f[2])
                    elif main is not None:
                        main = (f[1], f[2])
                last = None
            case _:
                last = None if f[0] != "=>" else last
    return BuildInfo(version, main, deps)


def _stdlib_version(go: str) -> str | None:
    # "go1.22.0 X:boringcrypto" — experiment suffixes follow a space.
    m = _GO_VERSION.fullmatch(go.split()[0]) if go.split() else None
    if m is None:
        return None
    major, minor, patch, pre, n = m.groups()
    v = f"v{major}.{minor}.{patch or 0}"
    return f"{v}-{pre}.{n}" if pre else v


def _purl(name: str, version: str) -> str:
    return f"pkg:golang/{quote(name, safe='/.-_~')}@{quote(version, safe='.-_~+')}"


class GoBinaryAnalyzer:
    """Go modules and toolchain version from executables' embedded build information."""

    NAME: ClassVar[str] = "gobinary"
    VERSION: ClassVar[int] = 1

    def wants(self, path: str) -> int | None:
        """Executables in bin/sbin dirs, extension-less files in app roots or at the top."""
        slash = path.rfind("/")
        base = path[slash + 1 :]
        parent = path[:slash] if slash >= 0 else ""
        if not base:
            return None
        if parent in ("bin", "sbin") or parent.endswith(("/bin", "/sbin")):
            return SIZE_CAP
        if "." in base:
            return None
        if parent in _APP_DIRS:
            return SIZE_CAP
        # One level below app/ and opt/ (opt/<product>/<binary>, app/<service>/<binary>).
        head, _, rest = parent.partition("/")
        if head in ("app", "opt") and rest and "/" not in rest:
            return SIZE_CAP
        return None

    def analyze(self, files: Mapping[str, LayerFile], ctx: Context) -> AnalyzerResult:
        """Parse every wanted file that is an executable with Go buildinfo; others are
        silently not Go (a shell script in /usr/bin is normal), damaged Go ones noted."""
        packages: list[Package] = []
        notes: list[str] = []
        for path in sorted(files):
            f = files[path]
            d = f.data
            if not (d.startswith((_ELF, _PE)) or d[:4] in _MACHO):
                continue
            if MAGIC not in d:
                if f.truncated:
                    notes.append(f"{path}: larger than {SIZE_CAP} bytes, not searched whole")
                continue
            try:
                info = parse_buildinfo(d)
            except NoBuildInfo:
                continue
            except GoBuildInfoError as e:
                notes.append(f"{path}: {e}")
                continue
            found: list[tuple[str, str]] = []
            std = _stdlib_version(info.go_version)
            if std is None:
                notes.append(f"{path}: unrecognised Go version {info.go_version!r}")
            else:
                found.append(("stdlib", std))
            if info.main is not None and info.main[1] and info.main[1] != "(devel)":
                found.append(info.main)
            found.extend((n, v) for n, v in info.deps if v)
            owner = ctx.owners.get(path)
            packages.extend(
                Package(
                    name=name,
                    version=version,
                    type="go",
                    ecosystem="Go",
                    purl=_purl(name, version),
                    layer=f.layer,
                    path=path,
                    owner=owner,
                )
                for name, version in found
            )
        return AnalyzerResult(packages=packages, notes=notes)
