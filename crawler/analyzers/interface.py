"""The analyzer interface: what an analyzer reads in one layer, and how it judges an image.

Analysis has two steps, so that what a layer *means* can be cached by its digest and shared
by every image built on it (the shape of Trivy's per-layer blob records):

1. **Per layer, per file** (``open`` → ``FileReader``): while a layer streams by, every file
   an analyzer ``wants`` is handed to it chunk by chunk. The reader keeps only what it needs
   (a bounded buffer for a database, a sliding window for an executable) and returns
   ``FileFacts``: packages, notes, the paths its packages own. Facts depend on the file's
   bytes alone, never on other files or other layers, so they are stored per layer.
2. **Per image** (``assemble``): the layers' facts are merged with overlay semantics
   (``layers.merge``: replacement, whiteouts, opaque directories, links) into a ``FactsView``,
   and each analyzer turns the facts visible in it into the image's packages. This is where
   context enters: the OS analyzer runs first (it fixes the advisory ecosystem), then the OS
   package managers (their file lists say which paths they own), then the language analyzers
   (a module the OS installed is marked with its owner). Assembly parses nothing; it is cheap.

``VERSION`` is part of the layer-cache key: bump it when ``wants`` or the facts for the same
bytes change. ``Analyzer`` is an ABC because most analyzers share its buffered reader: they
implement ``read`` on a file's first ``cap`` bytes. Streaming analyzers (Go and Rust
executables) override ``open`` instead.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol

import msgspec

from regsweep.crawler.analyzers._pkgutil import Notes
from regsweep.matcher.records import OsInfo, Package


class AnalyzerError(Exception):
    """Base of analyzer errors. ``assemble`` raises it only for a whole database it cannot
    read at all; a bad entry inside one is skipped and reported in ``AnalyzerResult.notes``."""


class LayerFile(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One whole file, as ``Analyzer.analyze`` takes it (tests, one-shot use)."""

    #: Normalised path relative to the root, no leading slash (``var/lib/dpkg/status``).
    path: str
    data: bytes
    #: Digest of the layer that wrote the file.
    layer: str
    #: The file was larger than what ``data`` holds.
    truncated: bool = False


class SecretFound(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """A secret in a file, as the layer cache keeps it: where and what, never the secret."""

    #: ``matcher.secrets`` rule id (``aws-access-key-id``, ``private-key`` …).
    rule: str
    title: str
    #: ``matcher.secrets.SecretKind`` value: which check reports it.
    kind: str
    #: 1-based line of the secret's start.
    line: int
    #: The redacted form (``wJal…(40 chars)``).
    shown: str


class FileFacts(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """What one analyzer read in one file of one layer: small, and the same whatever the
    other layers hold (it is cached by layer digest).

    Packages carry what the file says (name, version, type, source, a purl without the
    distribution qualifiers); ``assemble`` adds what depends on the image (ecosystem,
    distribution, owner, layer).
    """

    packages: tuple[Package, ...] = ()
    #: What was skipped in this file and why; reported only if the file is visible in the image.
    notes: tuple[str, ...] = ()
    #: Path → name of the package that installed it, from a package manager's file lists,
    #: kept only for paths some analyzer may ask about (see ``owner_relevant``).
    owners: dict[str, str] = {}
    #: A small text file kept whole, for analyzers whose files are a few hundred bytes
    #: (os-release): the text is its meaning.
    text: str | None = None
    #: One string per package, the analyzer's own (npm lockfile entries: the manifest path
    #: that supersedes the entry when it is installed).
    hints: tuple[str, ...] = ()
    #: Why the file could not be read at all (a database in no format the analyzer knows);
    #: ``assemble`` raises ``AnalyzerError`` with it if the image uses this file.
    error: str | None = None
    #: Secrets in the file (the secrets analyzer), redacted.
    secrets: tuple[SecretFound, ...] = ()


class Found(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """An analyzer's facts about one file, and where the file is."""

    analyzer: str
    #: Normalised path of the file in the image.
    path: str
    #: Digest of the layer that wrote it.
    layer: str
    #: Size of the file in bytes (from its tar header).
    size: int
    facts: FileFacts


class FileReader(Protocol):
    """Receives one file's bytes in order, keeps what it needs, and says what they mean."""

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes of the file; False when nothing more is needed (the walker
        then skips the rest at header speed)."""
        ...

    def close(self) -> FileFacts | None:
        """The facts of the file (None: nothing here for this analyzer). Called once, after
        the last ``feed`` or as soon as one returned False."""
        ...


class FactsView(Protocol):
    """The image's files as ``assemble`` sees them: the facts of the files visible once
    every layer is applied, by path."""

    def found(self, analyzer: str) -> Mapping[str, Found]:
        """``analyzer``'s facts for every visible file it read, by (real) path."""
        ...

    def get(self, analyzer: str, path: str) -> Found | None:
        """The facts of the file a program opening ``path`` would read: ``path`` with every
        symlink component followed (a database reached through a symlinked directory)."""
        ...


class Context(msgspec.Struct, kw_only=True):
    """What earlier analyzers found, for later ones."""

    os: OsInfo | None = None
    #: The advisory ecosystem of the OS packages, as the index keys it: ``Debian:11``,
    #: ``Ubuntu:22.04``, ``Alpine:v3.19``, ``Rocky Linux:9`` … (see advisories.ecosystems).
    ecosystem: str | None = None
    #: Path → name of the OS package that installed it.
    owners: dict[str, str] = {}


class AnalyzerResult(msgspec.Struct, kw_only=True):
    """An analyzer's findings for one image; ``notes`` say what was skipped and why."""

    packages: list[Package] = []
    os: OsInfo | None = None
    ecosystem: str | None = None
    owners: dict[str, str] = {}
    notes: list[str] = []


class Budget:
    """Bytes of file data that buffered readers may hold at once, shared by every layer
    scanned against it (a crawl shares one across its concurrent layers).

    ``take`` waits while others hold the budget. It cannot deadlock: a reader takes its
    share just before it buffers one file and gives it back when that file ends, and a file
    ends as its bytes arrive; no reader waits while holding a share. One file never gets
    more than the whole budget: the rest of it is not read, and the layer says so in a note.
    A buffered file's pieces are joined once it is whole, so for that moment it is held
    twice: the memory the readers use stays under twice the budget.
    """

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("a buffer budget must be positive")
        self.total = total
        self._left = total
        self._cond = threading.Condition()

    def take(self, n: int) -> int:
        """Reserve ``min(n, total)`` bytes (waiting for them); returns what was reserved."""
        n = min(n, self.total)
        with self._cond:
            while self._left < n:
                self._cond.wait()
            self._left -= n
        return n

    def give(self, n: int) -> None:
        """Return ``n`` reserved bytes."""
        with self._cond:
            self._left += n
            self._cond.notify_all()


class _Buffered:
    """The default reader: up to ``cap`` bytes in memory, then ``Analyzer.read``."""

    __slots__ = ("_analyzer", "_cap", "_have", "_parts", "_path", "_size")

    def __init__(self, analyzer: BufferedAnalyzer, path: str, size: int, cap: int) -> None:
        self._analyzer = analyzer
        self._path = path
        self._size = size
        self._cap = cap
        self._parts: list[bytes] = []
        self._have = 0

    def feed(self, chunk: bytes) -> bool:
        room = self._cap - self._have
        if len(chunk) > room:
            chunk = chunk[:room]
        if chunk:
            self._parts.append(chunk)
            self._have += len(chunk)
        return self._have < self._cap

    def close(self) -> FileFacts | None:
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        return self._analyzer.read(self._path, data, self._size > len(data))


class Analyzer(ABC):
    """One analyzer. Implementations are plain classes, registered explicitly by the caller."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int]

    @abstractmethod
    def wants(self, path: str) -> int | None:
        """The number of bytes to read if the analyzer needs ``path`` (a regular file), else
        None. Cheap: it is called for every file of every layer."""

    @abstractmethod
    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A reader for one wanted file of ``size`` bytes. A streaming reader (the
        executables', a dpkg status file's) holds a bounded window of it whatever ``cap``
        says; a buffering one (``buffers``) holds at most ``cap`` (``wants``'s answer,
        lowered by the buffer budget)."""

    def buffers(self, path: str) -> bool:
        """Whether the reader of ``path`` holds the file's bytes in memory, up to its cap:
        the walker then reserves them from the buffer budget first. False for a reader
        whose memory is bounded whatever the file (it streams, or spools to disk)."""
        return False

    @abstractmethod
    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """The image's packages from the facts visible in ``view`` (parses nothing)."""

    def analyze(self, files: Mapping[str, LayerFile], ctx: Context) -> AnalyzerResult:
        """Read whole ``files`` as one layer and assemble them: both steps at once, for a
        caller that has the files in hand (tests, fuzzing). A ``truncated`` file is read as
        the walker reads a file longer than its cap."""
        found: dict[str, Found] = {}
        for path in sorted(files):
            f = files[path]
            if self.wants(path) is None:
                continue
            size = len(f.data) + (1 if f.truncated else 0)
            reader = self.open(path, size, len(f.data))
            if f.data:
                reader.feed(f.data)
            facts = reader.close()
            if facts is not None:
                found[path] = Found(
                    analyzer=self.NAME, path=path, layer=f.layer, size=size, facts=facts
                )
        return self.assemble(_OneLayer(found), ctx)


class BufferedAnalyzer(Analyzer):
    """An analyzer that reads each file whole, up to its cap: its readers hold the bytes,
    so the walker reserves them from the buffer budget. It implements ``read``."""

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A reader that buffers the file's first ``cap`` bytes and hands them to ``read``."""
        return _Buffered(self, path, size, cap)

    def buffers(self, path: str) -> bool:
        """True: ``open``'s reader holds the file (an analyzer that streams some of its
        files overrides both)."""
        return True

    @abstractmethod
    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """What the file's first bytes (``data``; ``truncated`` when the file is longer)
        say; None when they say nothing to this analyzer."""


class _OneLayer:
    """A ``FactsView`` over files of one layer, with no links."""

    def __init__(self, found: dict[str, Found]) -> None:
        self._found = found

    def found(self, analyzer: str) -> Mapping[str, Found]:
        return {p: f for p, f in self._found.items() if f.analyzer == analyzer}

    def get(self, analyzer: str, path: str) -> Found | None:
        f = self._found.get(path)
        return f if f is not None and f.analyzer == analyzer else None


#: Metadata directories a language analyzer may look its owner up by (besides the file):
#: Python's dist-info and egg-info, and an unzipped .egg (its EGG-INFO's owner).
_OWNER_DIRS = (".dist-info", ".egg-info", ".egg")


def owner_relevant(path: str, wanted: bool) -> bool:
    """Whether a path a package manager lists can be asked about by a language analyzer:
    a file some analyzer reads (``wanted``), a Python metadata directory, or an npm package
    directory. File lists name every file of every package; only these are kept."""
    if wanted or path.endswith(_OWNER_DIRS):
        return True
    parent = path.rpartition("/")[0]
    return parent.endswith("node_modules") or parent.rpartition("/")[0].endswith("node_modules")


def placed_files(
    found: Mapping[str, Found],
    ctx: Context,
    notes: Notes,
    owner_dir: Callable[[str], str] | None = None,
) -> list[Package]:
    """The loop of an ``assemble`` whose files stand alone (a file's packages are the
    image's whatever the other files say): ``found``'s files in path order, each file's
    notes added to ``notes``, and the packages of all of them as the image holds them, with
    the layer that wrote their file and the OS package that owns it: ``ctx.owners`` of its
    path, else of ``owner_dir(path)`` (a directory a package manager may list instead, such
    as an npm package's). A package keeps the path it was read at: the file's, or a place
    inside it (a nested archive's ``outer!/inner``)."""
    packages: list[Package] = []
    for path in sorted(found):
        f = found[path]
        # A loop, not a call: most files have no notes, and looping over none is free.
        for note in f.facts.notes:
            notes.add(note)
        if not f.facts.packages:
            continue
        owner = ctx.owners.get(path)
        # ``not``, not ``is None``: the test ``a or b`` makes of the first look-up.
        if not owner and owner_dir is not None:
            owner = ctx.owners.get(owner_dir(path))
        # A loop, not a list comprehension (before Python 3.12 a function call per file):
        # most files have one package.
        for p in f.facts.packages:
            packages.append(msgspec.structs.replace(p, layer=f.layer, owner=owner))  # noqa: PERF401
    return packages


def assemble_files(view: FactsView, analyzer: str, ctx: Context) -> AnalyzerResult:
    """The assembly of an analyzer whose files stand alone and need nothing more than
    ``placed_files``: every visible file's packages and notes."""
    # Every note is kept: these analyzers' notes are not capped per image (the package
    # managers', Python's and npm's are), and this loop is no place to change that.
    notes = Notes(None)
    packages = placed_files(view.found(analyzer), ctx, notes)
    return AnalyzerResult(packages=packages, notes=notes.result())
