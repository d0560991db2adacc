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
JSON is capped at ``MAX_JSON`` bytes (a zlib bomb in a section is cheap to make). The file is
never held whole: the section header table, which says where ``.dep-v0`` is, comes at the
end of the file, after the section; so while the file streams by, every zlib stream that
starts a JSON object is inflated (bounded in number and size) and every ``.dep-v0`` name is
noted, and at the end the section the table names is looked up among them by its exact
offset (``_RustReader``). ``read_elf_section`` reads a whole file the same way a reader of a
file in memory would, for tests and one-off use.

Which files: as for Go binaries (``bin``/``sbin`` dirs, extension-less files at the top or in
app roots), any size; files that are not ELF are skipped silently.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import ClassVar, NamedTuple
from urllib.parse import quote

import msgspec

from regsweep.crawler.analyzers._stream import Span, Tape, literal
from regsweep.crawler.analyzers.gobinary import SIZE_CAP, GoBinaryAnalyzer
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

__all__ = ["RustBinaryAnalyzer", "RustAuditError", "read_elf_section"]

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


class _Layout(NamedTuple):
    """Where an ELF file's section header table is and how to read it."""

    shoff: int
    shentsize: int
    shnum: int
    #: ``struct`` format of one section header (byte order included).
    fmt: str
    shstrndx: int


def _elf_layout(head: bytes) -> _Layout | None:
    """The section header table's layout from an ELF file's first 52 (ELF32) or 64 (ELF64)
    bytes; None when the file has no section headers. Raises ``RustAuditError`` for bytes
    that claim ELF but do not fit it."""
    cls, order = head[4], head[5]
    if cls not in (1, 2) or order not in (1, 2):
        raise RustAuditError("bad ELF class or byte order")
    e = "<" if order == 1 else ">"
    try:
        if cls == 2:
            (shoff,) = struct.unpack_from(e + "Q", head, 40)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 58)
            fmt, need = e + "IIQQQQ", 40
        else:
            (shoff,) = struct.unpack_from(e + "I", head, 32)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 46)
            fmt, need = e + "IIIIII", 24
    except struct.error as err:
        raise RustAuditError("truncated ELF headers") from err
    if shoff == 0 or shnum == 0:
        return None  # stripped of section headers: nothing to find
    if shentsize < need or shentsize * shnum > _MAX_HEADERS or shstrndx >= shnum:
        raise RustAuditError("ELF section headers outside the file")
    return _Layout(shoff, shentsize, shnum, fmt, shstrndx)


def _sections(layout: _Layout, table: bytes) -> list[tuple[int, int, int, int]]:
    """(name offset, type, file offset, size) of each section, from the header table."""
    out = []
    try:
        for i in range(layout.shnum):
            name, sh_type, _flags, _addr, off, size = struct.unpack_from(
                layout.fmt, table, i * layout.shentsize
            )
            out.append((name, sh_type, off, size))
    except struct.error as err:
        raise RustAuditError("truncated ELF headers") from err
    return out


def read_elf_section(data: bytes, wanted: str) -> bytes | None:
    """The contents of the ELF section named ``wanted``, None when the file has none (the
    whole file in memory: for tests and one-off use; the analyzer streams, see
    ``_RustReader``).

    Raises RustAuditError for a file that claims to be ELF but whose headers do not fit it.
    """
    if len(data) < 52 or not data.startswith(_ELF):
        raise RustAuditError("not an ELF file")
    layout = _elf_layout(data[:64])
    if layout is None:
        return None
    end = layout.shoff + layout.shnum * layout.shentsize
    if end > len(data):
        raise RustAuditError("ELF section headers outside the file")
    sections = _sections(layout, data[layout.shoff : end])
    _n, _t, stroff, strsize = sections[layout.shstrndx]
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


#: zlib stream headers (deflate, 32 KiB window, any level, no preset dictionary), as one
#: pattern with a literal first byte: the regex engine finds them at memchr speed.
_ZLIB = re.compile(b"\x78[\x01\x5e\x9c\xda]")
#: Compressed bytes a candidate may take before its output must start with ``{``: the
#: code tables of a dynamic Huffman block come before the first literal.
_TRIAL = 1024
#: Candidates inflated at once, and kept in all (each holds at most ``MAX_JSON`` bytes).
_MAX_ACTIVE = 8
_MAX_KEPT = 64
_SECTION_NAME = SECTION.encode() + b"\0"
_FIND_NAME = literal(_SECTION_NAME)
#: A section header table larger than this is not one a linker wrote.
_MAX_HEADERS = 16 << 20


def _json_start(head: bytes | memoryview) -> bool | None:
    """Whether a zlib stream starting ``head`` inflates to a JSON object: its first output
    byte is ``{`` (None: ``head`` ends before the first byte comes out). Cheap: most zlib
    headers met in an executable are two chance bytes, refused within a few bytes."""
    try:
        out = zlib.decompressobj().decompress(head, 1)
    except zlib.error:
        return False
    if out:
        return out == b"{"
    return None if len(head) < _TRIAL else False


class _Inflation:
    """A zlib stream met at ``start`` that may be the audit data: inflated as it arrives,
    dropped as soon as its output does not start like a JSON object."""

    __slots__ = ("d", "done", "error", "given", "out", "start", "used")

    def __init__(self, start: int) -> None:
        self.start = start
        self.d = zlib.decompressobj()
        self.out = bytearray()
        self.given = 0
        self.used = 0
        self.done = False
        self.error: str | None = None

    def feed(self, data: bytes | memoryview) -> bool:
        """Inflate more of the stream; False when this is not the audit data after all."""
        if self.done:
            return True
        if not self.out:
            # On trial: a JSON object's first byte must come within _TRIAL input bytes.
            trial = data[: _TRIAL - self.given]
            if not self._inflate(trial, on_trial=True):
                return False
            if not self.out:
                return self.given < _TRIAL
            if self.out[:1] != b"{":
                return False
            data = data[len(trial) :]
            if not data or self.done:
                return True
        return self._inflate(data, on_trial=False)

    def _inflate(self, data: bytes | memoryview, *, on_trial: bool) -> bool:
        self.given += len(data)
        try:
            self.out += self.d.decompress(data, MAX_JSON + 1 - len(self.out))
        except zlib.error as err:
            if on_trial:
                return False
            self.error, self.done = f"{SECTION} is not zlib data ({err})", True
            return True
        if len(self.out) > MAX_JSON:
            self.error, self.done = f"{SECTION} inflates past {MAX_JSON} bytes", True
            self.out = bytearray()
        elif self.d.eof:
            self.used = self.given - len(self.d.unused_data)
            self.done = True
        return True


class _RustReader:
    """Finds the cargo-auditable data of an ELF executable as its bytes stream by.

    The section header table (its place is in the ELF header) is kept when it arrives;
    every ``.dep-v0\0`` is noted by offset, and every zlib stream whose output starts like
    a JSON object is inflated as it passes (bounded). At the end, the data is the stream
    that starts exactly where the section whose name lies exactly on a noted ``.dep-v0``
    says its contents start: the same answer as reading the section by name.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.tape = Tape(overlap=len(_SECTION_NAME) - 1)
        self.head = self.tape.want(0, 64)
        self.layout: _Layout | None = None
        self.table: Span | None = None
        self.names: set[int] = set()
        self.active: list[_Inflation] = []
        self.kept: dict[int, _Inflation] = {}
        #: A candidate was let go for the bounds: a missing section is not proof of absence.
        self.dropped = False
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bool:
        tape = self.tape
        tape.window(chunk)
        if self.layout is None:
            head = self.head.data
            if len(head) >= 4 and bytes(head[:4]) != _ELF:
                return False
            # The section headers start after the ELF header (52 or 64 bytes): read them
            # from there once the header is whole; until then, candidates are still seen.
            if len(head) >= (64 if len(head) > 4 and head[4] == 2 else 52):
                try:
                    self.layout = _elf_layout(bytes(head))
                except RustAuditError as exc:
                    self.error = str(exc)
                    return False
                if self.layout is None:
                    return False  # no section headers: nothing to find
                layout = self.layout
                self.table = tape.want(layout.shoff, layout.shentsize * layout.shnum)
        still = []
        for active in self.active:
            if not active.feed(chunk):
                del self.kept[active.start]
            elif not active.done:
                still.append(active)
        self.active = still
        for off in tape.matches(_FIND_NAME):
            if len(self.names) >= 64:
                break
            self.names.add(off)
        for off in tape.matches(_ZLIB):
            if len(self.active) >= _MAX_ACTIVE:
                self.dropped = True
                break
            # A view, not a slice: most candidates are dropped after their first bytes.
            data = tape.data_from(off)
            if _json_start(data[:_TRIAL]) is False:
                continue
            cand = _Inflation(off)
            if cand.feed(data):
                self._keep(cand)
        return True

    def _keep(self, cand: _Inflation) -> None:
        """Keep a candidate; the oldest go when too many are kept (memory stays bounded)."""
        self.kept[cand.start] = cand
        if not cand.done:
            self.active.append(cand)
        while len(self.kept) > _MAX_KEPT or sum(len(c.out) for c in self.kept.values()) > (
            2 * MAX_JSON
        ):
            oldest = min(self.kept)
            gone = self.kept.pop(oldest)
            self.dropped = True
            if gone in self.active:
                self.active.remove(gone)

    def close(self) -> FileFacts | None:
        try:
            blob = self._section()
            if blob is None:
                return None
            info = _DECODER.decode(blob)
        except RustAuditError as e:
            return FileFacts(notes=(f"{self.path}: {e}",))
        except msgspec.ValidationError as e:
            return FileFacts(notes=(f"{self.path}: {SECTION} JSON not as expected ({e})",))
        except (msgspec.DecodeError, UnicodeDecodeError) as e:  # bad UTF-8 in a string
            return FileFacts(notes=(f"{self.path}: {SECTION} is not JSON ({e})",))
        packages = tuple(
            Package(
                name=c.name,
                version=c.version,
                type="cargo",
                ecosystem="crates.io",
                purl=_purl(c.name, c.version),
                path=self.path,
            )
            for c in info.packages
            if c.source == "crates.io"
        )
        return FileFacts(packages=packages)

    def _section(self) -> bytes | None:
        """The inflated ``.dep-v0`` contents; None when the file has no such section."""
        if self.error is not None:
            raise RustAuditError(self.error)
        if self.layout is None:
            return None
        assert self.table is not None
        if not self.table.complete:
            raise RustAuditError("ELF section headers outside the file")
        size = self.tape.pos
        sections = _sections(self.layout, bytes(self.table.data))
        _n, _t, stroff, strsize = sections[self.layout.shstrndx]
        if stroff + strsize > size:
            raise RustAuditError("ELF section name table outside the file")
        for name, sh_type, off, length in sections:
            if name >= strsize or stroff + name not in self.names:
                continue
            if sh_type == 8:  # SHT_NOBITS: no bytes in the file
                return None
            if off + length > size:
                raise RustAuditError(f"section {SECTION} outside the file")
            found = self.kept.get(off)
            if found is None and self.dropped:
                raise RustAuditError(
                    f"{SECTION} was not kept while the file streamed by (too many zlib "
                    "streams of JSON in it)"
                )
            if found is None:
                raise RustAuditError(f"{SECTION} does not hold zlib-compressed JSON")
            if found.error is not None:
                raise RustAuditError(found.error)
            if not found.done or found.used > length:
                raise RustAuditError(f"{SECTION} is not zlib data (the stream is cut short)")
            return bytes(found.out)
        return None


class RustBinaryAnalyzer(Analyzer):
    """crates.io dependencies of binaries built with cargo-auditable."""

    NAME: ClassVar[str] = "rust-binary"
    VERSION: ClassVar[int] = 2
    _paths = GoBinaryAnalyzer()

    def wants(self, path: str) -> int | None:
        """The same executable locations as Go binaries."""
        return SIZE_CAP if self._paths.wants(path) is not None else None

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A streaming reader: any size, bounded memory (``cap`` does not apply)."""
        return _RustReader(path)

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Every visible binary's crates, owned by the OS package that installed it."""
        return assemble_files(view, self.NAME, ctx)
