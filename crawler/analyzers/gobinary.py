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

Which files: the analyzer sees only paths, so the predicate must be cheap (every file
streams through the reader of each file it wants). Wanted: any file directly in a ``bin`` or
``sbin`` directory (``usr/bin``, ``usr/local/bin``, ``opt/x/bin`` …), and extension-less
files at the top (``/manager``, ``/coredns``), directly in ``app/``, ``ko-app/``,
``usr/local/`` or ``opt/``, or one directory below ``app/`` and ``opt/``. This misses a Go
binary installed deeper or with an extension (``/usr/local/go/pkg/tool/*/compile``: the
``go`` binary in ``bin`` carries the same toolchain), in exchange for not reading whole data
trees. Only files starting with an ELF, Mach-O or PE magic are searched, whatever their size:
the file streams by and the reader (``_GoReader``) keeps a bounded window of it.
"""

from __future__ import annotations

import re
import struct
from typing import ClassVar
from urllib.parse import quote

from regsweep.crawler.analyzers._stream import Span, Tape, literal
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

__all__ = ["BuildInfo", "GoBinaryAnalyzer", "GoBuildInfoError", "NoBuildInfo", "parse_buildinfo"]

#: What ``wants`` answers for a wanted file. The reader streams (it is no ``BufferedAnalyzer``):
#: no file is cut at it, and none of the walker's buffer budget is spent on it.
SIZE_CAP = 256 << 20
MAGIC = b"\xff Go buildinf:"
_ELF = b"\x7fELF"
_MACHO = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
_PE = b"MZ"
#: No buildinfo string is longer than this (module lists of huge programs are ~100 KiB).
_MAX_STRING = 16 << 20
#: Kept from a module info start sentinel while streaming (Go ≤ 1.17 layout), and how many
#: such candidates at most.
_MAX_MODINFO = 1 << 20
_MAX_MODINFOS = 16
#: The start of a file kept while streaming: ELF program headers live there.
_HEAD = 64 << 10
#: runtime/debug's sentinels around the module info.
_MOD_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_MOD_END = bytes.fromhex("f932433186182072008242104116d8f2")
# What each search goes through fastest (see ``Tape.matches``).
_FIND_MAGIC = MAGIC
_FIND_VERSION = literal(b"go1.")
_FIND_MOD_START = _MOD_START
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


def _uvarint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
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
    return _finish(version, mod)


def _finish(version: bytes, mod: bytes) -> BuildInfo:
    """The build information from its two strings (the toolchain version, the module info)."""
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


def _inline_size(blob: bytes | bytearray) -> tuple[int, bool]:
    """How many bytes from the magic the Go 1.18+ layout needs: (n, True) when ``blob``
    tells the whole length, (n, False) when ``blob`` must first grow to ``n`` to tell (a
    varint is asked for with its longest length: the file may end sooner)."""
    pos = 32
    for i in range(2):
        try:
            n, pos = _uvarint(blob, pos)
        except GoBuildInfoError:
            if len(blob) >= pos + 10:
                raise  # ten bytes hold any uvarint: this one is malformed
            return pos + 10, False
        if n > _MAX_STRING:
            raise GoBuildInfoError("truncated Go buildinfo")
        pos += n
        if len(blob) < pos:
            return pos + (10 if i == 0 else 0), False
    return pos, True


def _is_executable(head: bytes | bytearray) -> bool:
    return bytes(head[:4]) == _ELF or bytes(head[:2]) == _PE or bytes(head[:4]) in _MACHO


class _GoReader:
    """Finds the build information of an executable as its bytes stream by.

    The 16-byte aligned magic is searched in every chunk. Go 1.18+ (strings inline after the
    header) needs nothing else: the header and its two strings are kept as they arrive. The
    Go ≤ 1.17 layout points at two string headers, which point at the strings: the linker
    puts the headers in the data segment after the magic (kept when they arrive) and the
    strings in read-only data before it, so while searching, every ``go1.`` and every module
    info start sentinel is kept with the bytes that follow it (bounded in number and size),
    and so are the file's first ``_HEAD`` and the last ``_HISTORY`` bytes; a pointer is
    accepted only where it lands exactly on kept bytes. What the reader holds, whatever the
    file's size: 64 KiB of head, 64 KiB of history, at most 1,024 × 128 bytes of version
    candidates and 16 module info candidates of at most 1 MiB each (each ends at its end
    sentinel: a real one is a few KiB).
    """

    _HISTORY = 64 << 10
    _MAX_CANDIDATES = 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self.tape = Tape(overlap=len(_MOD_START) - 1)
        self.head = self.tape.want(0, _HEAD)
        self.checked = False
        self.header: Span | None = None
        self.inline = False
        self.strings: list[bytes | Span] | None = None
        self.headers: list[bytes | Span] | None = None
        self.versions: dict[int, Span] = {}
        self.modinfos: list[Span] = []
        self.history = b""
        self.info: BuildInfo | None = None
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bool:
        self.tape.window(chunk)
        if len(chunk) >= self._HISTORY:
            self.history = chunk[-self._HISTORY :]
        else:
            self.history = (self.history + chunk)[-self._HISTORY :]
        if not self.checked:
            if len(self.head.data) < 4 and not self.head.complete:
                return True
            if not _is_executable(self.head.data):
                return False
            self.checked = True
        if self.header is None:
            self._search()
        if self.header is not None:
            try:
                self._advance()
            except GoBuildInfoError as exc:
                self.error = str(exc)
        self._trim()
        return self.info is None and self.error is None

    def _search(self) -> None:
        tape = self.tape
        # The bounds hold per match: a chunk full of one pattern must not make a span each.
        for off in tape.matches(_FIND_VERSION):
            if len(self.versions) >= self._MAX_CANDIDATES:
                break
            self.versions[off] = tape.want(off, 128)
        for off in tape.matches(_FIND_MOD_START):
            if len(self.modinfos) >= _MAX_MODINFOS:
                break
            self.modinfos.append(tape.want(off, _MAX_MODINFO))
        for off in tape.matches(_FIND_MAGIC):
            # The blob is 16-byte aligned in the file; an unaligned hit is a string constant.
            if off % 16 == 0:
                self.header = tape.want(off, 32)
                return

    def _trim(self) -> None:
        # A module info candidate ends at its end sentinel: keep no more than that.
        for span in self.modinfos:
            if not span.complete:
                end = span.data.find(_MOD_END, 16)
                if end >= 0:
                    span.size = end + 16
                    del span.data[span.size :]

    def _advance(self) -> None:
        header = self.header
        assert header is not None
        if not header.complete:
            return
        blob = header.data
        ptr_size, flags = blob[14], blob[15]
        if flags & 2:
            self.inline = True
            size, known = _inline_size(blob)
            if known and len(blob) >= size:
                self.info = parse_buildinfo(bytes(blob))
            else:
                self.tape.grow(header, size)
                if header.complete:
                    self._advance()
            return
        if ptr_size not in (4, 8):
            raise GoBuildInfoError(f"bad pointer size {ptr_size}")
        segs = _elf_segments(bytes(self.head.data))
        e = ">" if flags & 1 else "<"
        fmt = e + ("Q" if ptr_size == 8 else "I")
        if self.headers is None:
            vptr, mptr = struct.unpack_from(fmt + fmt[-1], blob, 16)
            self.headers = [self._get(segs, va, 2 * ptr_size) for va in (vptr, mptr)]
        got = [_held(h) for h in self.headers]
        if None in got:
            return
        if self.strings is None:
            self.strings = []
            for hdr in got:
                assert hdr is not None
                ptr, length = struct.unpack_from(fmt + fmt[-1], hdr, 0)
                if length > _MAX_STRING:
                    raise GoBuildInfoError("implausible string length in buildinfo")
                self.strings.append(self._get(segs, ptr, length) if length else b"")
        version, mod = (_held(s) for s in self.strings)
        if version is not None and mod is not None:
            self.info = _finish(version, mod)

    def _get(self, segs: list[tuple[int, int, int]], va: int, n: int) -> bytes | Span:
        """``n`` bytes at virtual address ``va``: from what was kept if they have passed,
        else a range to keep when they arrive."""
        for vaddr, off, size in segs:
            if vaddr <= va and va + n <= vaddr + size:
                start = off + (va - vaddr)
                break
        else:
            raise GoBuildInfoError(f"address {va:#x} is not in the file")
        end = start + n
        for span in (self.head, *self.versions.values(), *self.modinfos):
            if span.start <= start and end <= span.start + len(span.data):
                return bytes(span.data[start - span.start : end - span.start])
        tape = self.tape
        window = tape.base - len(tape.tail)
        if start >= window:
            # In the current window (a chunk holds up to 1 MiB, the history only the last
            # 64 KiB of it) or still to come: kept from the window now, the rest as it comes.
            return tape.want(start, n)
        hist_start = tape.pos - len(self.history)
        if start >= hist_start:
            # Before the window (small chunks), in the history: its bytes up to the window,
            # then the window's.
            if end <= window:
                return self.history[start - hist_start : end - hist_start]
            return tape.want(start, n, self.history[start - hist_start : window - hist_start])
        raise GoBuildInfoError(
            f"pre-1.18 buildinfo string at offset {start} had passed when it was found"
        )

    def close(self) -> FileFacts | None:
        if self.error is None and self.info is None and self.header is not None:
            if self.inline:
                # The file ended: what it holds is all there is (a varint near the end was
                # asked for at its longest).
                try:
                    self.info = parse_buildinfo(bytes(self.header.data))
                except GoBuildInfoError as exc:
                    self.error = str(exc)
            else:
                self.error = "truncated Go buildinfo"
        if self.error is not None:
            return FileFacts(notes=(f"{self.path}: {self.error}",))
        if self.info is None:
            return None
        return _facts(self.path, self.info)


def _held(item: bytes | Span) -> bytes | None:
    """The bytes of a kept range once all of it is there."""
    if isinstance(item, bytes):
        return item
    return bytes(item.data) if item.complete else None


def _facts(path: str, info: BuildInfo) -> FileFacts:
    """The packages a binary's build information names (see the module doc)."""
    notes: list[str] = []
    found: list[tuple[str, str]] = []
    std = _stdlib_version(info.go_version)
    if std is None:
        notes.append(f"{path}: unrecognised Go version {info.go_version!r}")
    else:
        found.append(("stdlib", std))
    if info.main is not None and info.main[1] and info.main[1] != "(devel)":
        found.append(info.main)
    found.extend((n, v) for n, v in info.deps if v)
    packages = tuple(
        Package(
            name=name,
            version=version,
            type="go",
            ecosystem="Go",
            purl=_purl(name, version),
            path=path,
        )
        for name, version in found
    )
    return FileFacts(packages=packages, notes=tuple(notes))


class GoBinaryAnalyzer(Analyzer):
    """Go modules and toolchain version from executables' embedded build information."""

    NAME: ClassVar[str] = "gobinary"
    VERSION: ClassVar[int] = 2

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

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A streaming reader: any size, a bounded window held (``cap`` does not apply)."""
        return _GoReader(path)

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Every visible binary's modules, owned by the OS package that installed it."""
        return assemble_files(view, self.NAME, ctx)
