"""The dpkg analyzer: Debian and Ubuntu packages, their source packages and their files.

Reads ``var/lib/dpkg/status`` (deb822 paragraphs), the distroless ``var/lib/dpkg/status.d/``
(one file per package, no ``Status`` field needed) and the file lists that say which package
installed which path: ``var/lib/dpkg/info/<pkg>[:<arch>].list`` (absolute paths, directories
included) and distroless ``status.d/<pkg>.md5sums`` (``<md5>  <relative path>``).

Which entries are installed: the third word of ``Status`` (the package's *state*) must say
its files are on disk and configured — ``installed``, or ``triggers-pending`` /
``triggers-awaited`` (configured, waiting only for another package's trigger). The first
word (the *want*: ``install``, ``hold``, ``deinstall``, ``purge``) is what the admin asked
for next, not what is on disk, so ``hold ok installed`` counts and ``deinstall ok
config-files`` (only conffiles left) does not. ``unpacked`` and ``half-configured`` packages
have files on disk but were never configured; they are rare in images (a failed build
step) and are skipped with a note so the gap is visible.

The source package: ``Source: name`` or ``Source: name (version)`` (the version appears when
it differs from the binary's, e.g. a binNMU ``+b1``); without the field the source is the
binary package itself. ``source_name`` / ``source_version`` are always set: distro
advisories are keyed by source.

Layer attribution: the status file is rewritten by every ``apt-get install``, so its layer is
the *last* layer that installed anything. A package's own ``info/<pkg>.list`` is written only
when that package is installed or upgraded, so its layer is the one that added the package;
it is used when present (the status file's layer otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

import msgspec

from regsweep.crawler.analyzers._pkgutil import (
    BINARY_MIN,
    BINARY_SHARE,
    Notes,
    distribution,
    package_url,
    with_distro,
)
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    FileReader,
    Found,
)
from regsweep.matcher.records import Package

__all__ = ["DpkgAnalyzer", "Paragraph", "parse_paragraphs"]

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
#: A full Debian install's status is a few MB; 64 MiB leaves room for huge images. The
#: status file is parsed as it streams (``_StatusReader``), never held whole: the cap bounds
#: the time spent on it, and ``MAX_PACKAGES`` what is kept of it.
STATUS_CAP = 64 * 1024 * 1024
#: Installed packages read from one database: a real system has a few thousand (a full
#: desktop ~5,000; Debian's whole amd64 archive ~65,000 binary packages, which no image
#: installs). Each one kept costs ~1 KB through to its records (100,000 tiny paragraphs
#: took a scan to 164 MB), so a hostile status file stops here, with a note.
MAX_PACKAGES = 50_000
#: A paragraph longer than this is no package's (a real one is a few KiB with its
#: Description and Conffiles): it is skipped with a note, so that the bytes kept while
#: looking for its end stay bounded.
MAX_PARAGRAPH = 1 << 20
#: One package's file list (linux-image, texlive docs: a few MB at most).
LIST_CAP = 16 * 1024 * 1024
#: A status.d file holds one package's paragraph.
STATUS_D_CAP = 1024 * 1024

#: States whose files are on disk and configured (dpkg(1) "Package states").
_INSTALLED_STATES = frozenset({"installed", "triggers-pending", "triggers-awaited"})
#: On disk but never configured: reported as skipped.
_UNCONFIGURED_STATES = frozenset({"unpacked", "half-configured"})
_WANTS = frozenset({"unknown", "install", "hold", "deinstall", "purge"})

# deb822 field names: printable ASCII, no colon, not starting with '#' or '-'.
_FIELD_NAME = r"[!-\"$-,.-9;-~][!-9;-~]*"
_FIELD = re.compile(_FIELD_NAME)
# Policy 5.6.1: lowercase alphanumerics and + - . ; tolerant of upper case in old archives.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")
_VERSION = re.compile(r"[A-Za-z0-9.+~:_-]+")
_ARCH = re.compile(r"[a-z0-9-]+")
# One or more whitespace-only lines end a paragraph; a line not starting with blank space
# starts a field.
_BLANK = re.compile(r"\n(?:[ \t]*\n)+")
_LEADING_BLANK = re.compile(r"(?:[ \t]*\n)+")
_FIELD_START = re.compile(r"\n(?![ \t])")
# A whole well-formed paragraph, and its fields with their continuation lines, matched in C.
_WELL_FORMED = re.compile(rf"{_FIELD_NAME}:[^\n]*(?:\n(?:[ \t][^\n]*|{_FIELD_NAME}:[^\n]*))*")
_FIELDS = re.compile(rf"^({_FIELD_NAME}):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", re.MULTILINE)
_CONTINUATION = re.compile(r"\n[ \t]+")
_SOURCE = re.compile(r"(?P<name>[^\s()]+)(?:\s*\((?P<version>[^\s()]+)\))?")


class Paragraph:
    """One deb822 paragraph: fields by lower-cased name, and where it started."""

    __slots__ = ("error", "fields", "line")

    def __init__(self, line: int) -> None:
        self.line = line
        self.fields: dict[str, str] = {}
        #: Why the paragraph is malformed (None when it is well formed).
        self.error: str | None = None


def parse_paragraphs(text: str, first_line: int = 1) -> Iterator[Paragraph]:
    """The paragraphs of a deb822 file; malformed ones are yielded with ``error`` set.
    Lines are numbered from ``first_line`` (a piece of a file read as it streams).

    Continuation lines (leading space or tab) extend the previous field and keep their
    line breaks (leading whitespace removed); blank or whitespace-only lines end a
    paragraph. The file is cut with C-level regex splits rather than a per-line loop: a
    status file is mostly long Description and Conffiles continuations.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    pos, line = 0, first_line
    for m in (*_BLANK.finditer(text), None):
        end = m.start() if m is not None else len(text)
        block = text[pos:end]
        first = line
        lead = _LEADING_BLANK.match(block)
        if lead is not None:
            first += block.count("\n", 0, lead.end())
            block = block[lead.end() :]
        block = block.rstrip()
        if block:
            yield _paragraph(block, first)
        if m is not None:
            line += text.count("\n", pos, m.end())
            pos = m.end()


def _paragraph(block: str, line: int) -> Paragraph:
    para = Paragraph(line)
    if _WELL_FORMED.fullmatch(block):
        pairs = _FIELDS.findall(block)
        fields = {k.lower(): v.rstrip() for k, v in pairs}
        if len(fields) == len(pairs):
            for k, v in fields.items():
                if "\n" in v:
                    fields[k] = _CONTINUATION.sub("\n", v)
            para.fields = fields
            return para
    # Malformed: walk the fields again to say which line is wrong.
    chunks = _FIELD_START.split(block)
    seen: set[str] = set()
    for i, chunk in enumerate(chunks):
        name, sep, _ = chunk.partition(":")
        key = name.lower()
        if chunk[0] in " \t":
            error = "continuation line before any field"
        elif not sep or not _FIELD.fullmatch(name):
            error = "not a 'Field: value' line"
        elif key in seen:
            error = f"duplicate field {name!r}"
        else:
            seen.add(key)
            continue
        lineno = line + block.count("\n", 0, sum(len(c) + 1 for c in chunks[:i]))
        para.error = f"line {lineno}: {error}"
        break
    else:
        para.error = "malformed"  # unreachable: the regexes and the walk agree
    return para


def _installed(status: str | None, need_status: bool) -> tuple[bool, str | None]:
    """(installed?, note) for a ``Status`` value."""
    if status is None:
        # status.d entries (distroless) are installed by construction.
        return (not need_status, None if not need_status else "no Status field")
    words = status.split()
    if len(words) != 3 or words[0] not in _WANTS:
        return False, f"malformed Status {status!r}"
    state = words[2]
    if state in _INSTALLED_STATES:
        return True, None
    if state in _UNCONFIGURED_STATES:
        return False, f"state {state!r}: unpacked but never configured"
    return False, None


def _owner_name(stem: str) -> str:
    # "libc6:amd64" → "libc6": owners name the package, the arch is in the status entry.
    return stem.partition(":")[0]


def _norm(path: str) -> str:
    path = path.strip()
    while path.startswith(("/", "./")):
        path = path[1:] if path[0] == "/" else path[2:]
    return path.rstrip("/")


class DpkgAnalyzer(BufferedAnalyzer):
    """Installed Debian packages (status and status.d) and the files each one owns."""

    NAME: ClassVar[str] = "dpkg"
    VERSION: ClassVar[int] = 4

    def wants(self, path: str) -> int | None:
        """The status database, status.d entries and md5sums, and ``info/*.list``."""
        if path == STATUS:
            return STATUS_CAP
        if path.startswith(INFO):
            rest = path[len(INFO) :]
            return LIST_CAP if rest.endswith(".list") and "/" not in rest else None
        if path.startswith(STATUS_D):
            rest = path[len(STATUS_D) :]
            if not rest or "/" in rest:
                return None
            return LIST_CAP if rest.endswith(".md5sums") else STATUS_D_CAP
        return None

    def buffers(self, path: str) -> bool:
        """Every file but the status database, which is parsed as it streams."""
        return path != STATUS

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """The status database's reader parses paragraphs as they stream by (memory: one
        paragraph and the packages); the small files are buffered and ``read``."""
        if path == STATUS:
            return _StatusReader(path, size, cap)
        return super().open(path, size, cap)

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Packages of a status or status.d file; the paths a file list names."""
        notes = Notes()
        if path.startswith(INFO):
            owners = self._read_list(path, data, truncated, notes, md5sums=False)
            return FileFacts(owners=owners, notes=tuple(notes.result()))
        if path.startswith(STATUS_D) and path.endswith(".md5sums"):
            owners = self._read_list(path, data, truncated, notes, md5sums=True)
            return FileFacts(owners=owners, notes=tuple(notes.result()))
        parser = _StatusParser(path, notes, need_status=path == STATUS)
        parser.piece(data, truncated)
        return parser.facts()

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Packages from status and status.d; owners from the file lists."""
        notes = Notes()
        owners: dict[str, str] = {}
        list_layers: dict[str, str] = {}
        lists: list[Found] = []
        entries: list[Found] = []
        mine = view.found(self.NAME)
        for path in sorted(mine):
            if path.startswith(INFO):
                lists.append(mine[path])
                list_layers[path[len(INFO) : -len(".list")]] = mine[path].layer
            elif path.startswith(STATUS_D):
                (lists if path.endswith(".md5sums") else entries).append(mine[path])
        for f in lists:
            for note in f.facts.notes:
                notes.add(note)
            # First owner wins (files sorted): shared directories keep a stable owner.
            for owned, owner in f.facts.owners.items():
                owners.setdefault(owned, owner)
        packages: list[Package] = []
        status = view.get(self.NAME, STATUS)
        if status is not None:
            packages += self._place(status, ctx, list_layers, notes)
        for f in entries:
            # A status.d file is the package's own; the shared status file is not.
            packages += self._place(f, ctx, None, notes)
        if packages and ctx.ecosystem is None:
            notes.add(f"{len(packages)} deb packages: OS release unknown, they are not matched")
        return AnalyzerResult(packages=packages, owners=owners, notes=notes.result())

    @staticmethod
    def _place(
        f: Found, ctx: Context, list_layers: dict[str, str] | None, notes: Notes
    ) -> list[Package]:
        """A database's packages in this image: its OS, ecosystem and each one's layer."""
        for note in f.facts.notes:
            notes.add(note)
        namespace, distro = distribution(ctx.os, "debian")
        out = []
        for pkg, arch in zip(f.facts.packages, f.facts.hints, strict=True):
            layer = f.layer
            if list_layers is not None:
                name = pkg.name
                layer = (
                    (arch and list_layers.get(f"{name}:{arch}")) or list_layers.get(name) or layer
                )
            out.append(
                msgspec.structs.replace(
                    pkg,
                    ecosystem=ctx.ecosystem,
                    purl=with_distro(pkg.purl or "", namespace, distro),
                    layer=layer,
                    path=f.path,
                )
            )
        return out

    def _read_list(
        self, path: str, data: bytes, truncated: bool, notes: Notes, *, md5sums: bool
    ) -> dict[str, str]:
        owners: dict[str, str] = {}
        if b"\x00" in data:
            notes.add(f"{path}: binary data, not a file list; ignored")
            return owners
        base = path.rpartition("/")[2]
        owner = _owner_name(base.rpartition(".")[0])
        for line in _text(path, data, truncated, notes).split("\n"):
            if md5sums:
                # "<32 hex>  path": two spaces (or " *" for binary mode) after the digest.
                _digest, _sep, line = line.partition(" ")
                line = line.removeprefix(" ").removeprefix("*")
            owned = _norm(line)
            if owned and owned != ".":
                owners[owned] = owner
        return owners


def _text(path: str, data: bytes, truncated: bool, notes: Notes) -> str:
    # dpkg does not enforce UTF-8 (old Maintainer fields are Latin-1); fields this
    # analyzer uses are ASCII by policy and validated below, so replacement is safe.
    if truncated:
        notes.add(f"{path}: larger than the size cap; the last partial entry is dropped")
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else b""
    return data.decode("utf-8", errors="replace")


class _StatusParser:
    """The installed packages of a deb822 database, taken in pieces of whole paragraphs
    (the whole file at once, or a status file cut at blank lines as it streams by)."""

    def __init__(self, path: str, notes: Notes, *, need_status: bool) -> None:
        self.path = path
        self.notes = notes
        self.need_status = need_status
        self.packages: list[Package] = []
        self.arches: list[str] = []
        #: Lines and entries (for notes) before the next piece.
        self.lines = 0
        self.entries = 0
        #: The data turned out to be binary: no package of it stands.
        self.binary = False
        #: ``MAX_PACKAGES`` reached: nothing more is read.
        self.full = False

    @property
    def done(self) -> bool:
        """Whether nothing more is wanted."""
        return self.binary or self.full

    def piece(self, data: bytes, truncated: bool = False) -> None:
        """Read the next whole paragraphs (``truncated``: the last one may be cut short).
        Notes come in file order, and the same whatever the pieces (a cut is always at a
        blank line): an entry holding a NUL byte is skipped where it stands."""
        if self.done:
            return
        nul = data.count(b"\x00")
        if nul > BINARY_MIN and nul > len(data) // BINARY_SHARE:
            # Binary data, not a database damaged in places: none of it is packages.
            self.notes.add(f"{self.path}: binary data, not a dpkg database; ignored")
            self.binary = True
            self.packages, self.arches = [], []
            return
        if truncated:
            self.notes.add(
                f"{self.path}: larger than the size cap; the last partial entry is dropped"
            )
            data = data[: data.rfind(b"\n") + 1]
        # A zeroed disk block in a status file damages the entries it falls in, not the
        # others (a vulnerable package among them): those are skipped, each with a note.
        entries = data.split(b"\n\n") if nul else [data]
        last = len(entries) - 1
        for i, entry in enumerate(entries):
            if b"\x00" in entry:
                self.notes.add(
                    f"{self.path}: entry {self.entries + 1} holds a NUL byte (damaged); skipped"
                )
            else:
                # dpkg does not enforce UTF-8 (old Maintainer fields are Latin-1); fields
                # this analyzer uses are ASCII by policy and validated, so replacement is safe.
                text = entry.decode("utf-8", errors="replace")
                for para in parse_paragraphs(text, self.lines + 1):
                    self._paragraph(para)
                    if self.full:
                        return
            # Lines and entries of the whole piece, the separators' included.
            self.lines += entry.count(b"\n") + (2 if i < last else 0)
            self.entries += entry.count(b"\n\n") + (1 if i < last else 0)

    def skipped(self, lines: int, what: str) -> None:
        """``lines`` lines not read (a paragraph too long, noted as ``what``)."""
        self.notes.add(f"{self.path}: paragraph at line {self.lines + 1}: {what}; skipped")
        self.lines += lines

    def facts(self) -> FileFacts:
        """The packages read (a purl without the distribution yet), their arches (hints)."""
        return FileFacts(
            packages=tuple(self.packages),
            hints=tuple(self.arches),
            notes=tuple(self.notes.result()),
        )

    def _paragraph(self, para: Paragraph) -> None:
        path, notes = self.path, self.notes
        where = f"{path}: paragraph at line {para.line}"
        if para.error is not None:
            notes.add(f"{where}: {para.error}; skipped")
            return
        fields = para.fields
        ok, why = _installed(fields.get("status"), self.need_status)
        if not ok:
            if why is not None:
                notes.add(f"{where}: {why}; skipped")
            return
        name = fields.get("package", "")
        version = fields.get("version", "")
        if not _NAME.fullmatch(name):
            notes.add(f"{where}: missing or invalid Package {name!r}; skipped")
            return
        if not _VERSION.fullmatch(version):
            notes.add(f"{where}: {name}: missing or invalid Version {version!r}; skipped")
            return
        arch = fields.get("architecture")
        if arch is not None and not _ARCH.fullmatch(arch):
            notes.add(f"{where}: {name}: invalid Architecture {arch!r}; ignored")
            arch = None
        source_name, source_version = name, version
        if (src := fields.get("source")) is not None:
            m = _SOURCE.fullmatch(src)
            if m is None or not _NAME.fullmatch(m.group("name")):
                notes.add(f"{where}: {name}: invalid Source {src!r}; using the binary name")
            else:
                source_name = m.group("name")
                sv = m.group("version")
                if sv is not None and _VERSION.fullmatch(sv):
                    source_version = sv
        if len(self.packages) >= MAX_PACKAGES:
            notes.add(f"{path}: more than {MAX_PACKAGES} installed packages; the rest not read")
            self.full = True
            return
        self.packages.append(
            Package(
                name=name,
                version=version,
                type="deb",
                source_name=source_name,
                source_version=source_version,
                purl=package_url("deb", None, name, version, {"arch": arch}),
                path=path,
            )
        )
        self.arches.append(arch or "")


class _StatusReader:
    """The status database's reader: paragraphs are parsed as the file streams by, so
    memory holds one piece (a chunk and the paragraph it cuts) and the packages, whatever
    the file's size. The file is cut at blank lines (``\\n\\n``: every paragraph ends
    there); up to ``cap`` bytes are read, and a file longer than that loses only its last,
    cut paragraph (with a note), as a buffered read of its first ``cap`` bytes would."""

    __slots__ = ("_cap", "_carry", "_have", "_parser", "_skipping", "_truncated")

    def __init__(self, path: str, size: int, cap: int) -> None:
        self._parser = _StatusParser(path, Notes(), need_status=True)
        self._cap = cap
        self._truncated = size > cap
        self._have = 0
        self._carry = b""
        #: Inside a paragraph longer than ``MAX_PARAGRAPH``: its bytes are dropped until
        #: the blank line that ends it.
        self._skipping = False

    def feed(self, chunk: bytes) -> bool:
        room = self._cap - self._have
        if len(chunk) > room:
            chunk = chunk[:room]
        self._have += len(chunk)
        # A paragraph's end may straddle two chunks: the carry is the (short) rest.
        buf = self._carry + chunk if self._carry else chunk
        parser = self._parser
        if self._skipping:
            end = buf.find(b"\n\n")
            if end < 0:
                parser.lines += buf.count(b"\n", 0, len(buf) - 1)
                self._carry = buf[-1:]  # a "\n" that the next chunk's may complete
                return self._have < self._cap
            parser.lines += buf.count(b"\n", 0, end + 2)
            parser.entries += 1
            self._skipping = False
            buf = buf[end + 2 :]
        cut = buf.rfind(b"\n\n")
        if cut >= 0:
            parser.piece(buf[: cut + 2])
            buf = buf[cut + 2 :]
        if len(buf) > MAX_PARAGRAPH:
            if buf.count(b"\x00") > len(buf) // BINARY_SHARE:
                parser.piece(buf)  # binary: the parser says so and stops
            else:
                parser.skipped(buf.count(b"\n", 0, len(buf) - 1),
                               f"longer than {MAX_PARAGRAPH} bytes")  # fmt: skip
                self._skipping = True
            buf = buf[-1:]
        self._carry = buf
        return not parser.done and self._have < self._cap

    def close(self) -> FileFacts | None:
        parser = self._parser
        if self._truncated:
            # The last paragraph was cut by the cap: none of it is read.
            parser.notes.add(
                f"{parser.path}: larger than the size cap; the last partial entry is dropped"
            )
        elif not self._skipping and self._carry.strip():
            parser.piece(self._carry)
        self._carry = b""
        return parser.facts()
