"""The crawl state store: what makes a re-crawl incremental and a killed crawl resumable.

One LMDB file (``subdir=False``, like the advisory index; ``PATH-lock`` beside it), separate
from the advisory index because it is written during crawls while the index is built whole.
Named databases (LMDB keys are at most 511 bytes; longer keys are replaced by a hash):

* ``meta``    ``b"meta"`` → ``StateMeta`` (schema version);
* ``layers``  ``layer digest NUL analyzer-set hash`` → ``layers.LayerFacts``: what that one
  layer means to the analyzers (their facts about its files, and the paths that matter for
  overlay: files they read, symlinks, whiteouts, opaque directories), never file bytes. Its
  size follows what the analyzers read, not the layer's bytes (76 KB for a 30 MB Debian
  rootfs layer), so every layer is stored: a layer is fetched and analysed once, whichever
  image, repository or crawl meets it again. An image's packages come from merging its
  layers' facts (``layers.merge``), which parses nothing;
* ``docs``    digest → ``Document``: small content-addressed documents (manifests, indexes,
  configs) as fetched, re-hashed when read; an image config in the scrubber's form (see
  below) instead, when the store has one;
* ``stacks``  ``stack_key`` (analyzer set and layer digests) → ``StackFacts``: the packages,
  OS and notes assembled from one stack of layers. Images built on the same layers (every
  tag of a build, every rebuild of its config) share one entry: an image's own entry stays
  small whatever it holds, and a crawl decodes each stack once;
* ``images``  manifest digest → ``StoredImage`` (identity, layer digests, its
  stack's key, when scanned, the analyzer-set hash): an unchanged image is re-matched from
  these and its stack;
* ``walks``   ``manifest digest NUL analyzer-set hash NUL platform filter`` → ``Walk``: what
  a crawl found under that manifest (its platform images, each with its config; the
  notes), so that a re-crawl of an unchanged tag rebuilds its result from this one value
  and the images' facts without reading and decoding every manifest, index and config
  again. Derived from content-addressed documents, so it never goes stale;
* ``tags``    ``registry/repo:tag`` → ``TagEntry`` (last manifest digest, since when);
* ``crawls``  crawl id → ``Checkpoint`` (the ``-o`` file's byte offset and record count at
  the last checkpoint);
* ``done``    ``crawl id NUL image key`` → empty: the images finished by that checkpoint
  (one row each, so a checkpoint costs what it adds, not the whole set so far);
* ``findings`` ``ref NUL platform`` (``changes.image_key``) → ``changes.ImageFindings``: the
  findings the last ``crawl`` or ``rematch`` reported for that image, which ``rematch
  --changes`` compares the next judgement with. Written with the output position that
  reported them (a crawl's checkpoint; a caller's opaque cursor, kept in ``meta`` under
  ``b"output_cursor"``, ``put_findings``) in one transaction, so that after ``kill -9``
  the stored findings are exactly those of the output kept. Added within schema 4: a store
  without it has no findings yet, which only makes every finding new once.

Resumable output (``ResumableOutput``): records are appended to the output file, and at a
checkpoint the file is flushed and ``fsync``ed *before* one LMDB transaction records the new
offset together with the images finished since the last checkpoint. After ``kill -9`` the
same command truncates the file back to the recorded offset (dropping the records of images
not yet checkpointed, and any half-written line) and skips the recorded images: every
record ends up in the file exactly once.

Threads and processes (LMDB's rules):

* Writes happen on **one thread**. A ``StateStore`` binds itself to the first thread that
  writes and refuses writes from any other (``StateError``). The async crawler hands its
  writes to a ``StateWriter``: one worker thread fed by a queue, awaited with ``call``. A
  single thread rather than a lock around writes from many, because LMDB write
  transactions are bound to the thread that began them, and because the blocking fsyncs of
  a checkpoint belong off the event loop anyway.
* Reads run from any thread, each in its own short read transaction (a long-lived one
  would pin old pages and grow the file); ``reading()`` groups the reads of one unit of
  work (a tag: its entry, documents and image facts) into one transaction.
* A store is never used across ``fork``: every call checks the pid and raises
  ``StateForked`` in a child, which ``close``s the inherited store and opens its own.
* The map grows on demand: ``MapFullError`` doubles the map size and runs the whole write
  again (after waiting for this process's in-flight reads, as LMDB requires); a map grown
  by another process is adopted on ``MapResizedError``.

Damage (the store is a cache: a damaged one is never a reason to fail a crawl):

* a stored value that does not decode (a damaged file, a foreign writer) is counted in
  ``StateStore.corrupt`` and treated as missing: the crawler then fetches and analyses
  again, and its next write replaces the bad value. The first one of each database is
  logged (``state_entry_corrupt``);
* a file that cannot be used at all when it is opened (truncated: shorter than the pages
  its last commit uses, which LMDB would meet as a SIGBUS; not an LMDB file; LMDB reports
  it corrupted; its meta record does not decode) is moved aside to
  ``PATH.corrupt-<UTC time>-<pid>`` (with its lock file) and a new store is started, with
  one warning (``state_store_damaged``);
* an LMDB error while the store is in use (a damaged page met by a read or a write) makes
  it bypassed for the rest of the run: every read a miss, every write dropped, one
  warning; a damaged store is moved aside when it is closed, so the next run starts a
  new one.

Image configs and their secrets: a config's ``Env``, labels, commands and history can
hold credentials. A store given a scrubber (``Scrub``: the commands give it the checks'
``scrub.SCRUB``, which the crawler does not import) keeps every image config only in the
scrubber's form (``docs`` and ``walks`` alike): secrets taken out, what judging needs of
them kept, flagged with the scrubber's ``version`` and checked on read against the hash
of what was stored. A config stored raw, or by another version of the scrubber, is then
a miss (fetched again and stored scrubbed); the crawler tells the judge which configs it
read back scrubbed (``ImageFacts.config_scrubbed``). A store of another schema is
replaced by a new file rather than emptied in place: LMDB leaves emptied pages' bytes
in the file until it reuses them, and schema 3 kept configs raw.

A resumable crawl's checkpoint lives in the store: once the store is moved aside or
bypassed, an interrupted ``crawl -o`` starts its output over (the warning says so).
LMDB has no checksums: a flipped byte in a page or node header can still make LMDB read
past the end of the file, which no check short of walking every page could prevent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import lmdb
import msgspec
import structlog

from regsweep.crawler.layers import LayerFacts
from regsweep.crawler.oci import IMAGE_CONFIG_MEDIA_TYPES
from regsweep.crawler.outfile import PartialFile
from regsweep.matcher import lmdbfile
from regsweep.matcher.changes import ImageFindings, image_key
from regsweep.matcher.facts import FileSecret, Problem
from regsweep.matcher.records import ImageRef, OsInfo, Package

#: 2: layers hold what a layer means (``layers.LayerFacts``), documents have their own db,
#: images name their stack of layers (``StackFacts``). 3: problems are ``Problem`` Structs
#: (not JSON text in strings); a stored image has no config summary (the judge makes it).
#: 4: image configs are kept in the scrubber's form (``Scrub``), not raw.
SCHEMA_VERSION = 4
#: Initial map size. Sparse on disk: LMDB only grows the file as pages are written.
MAP_SIZE = 1 << 30
_MAX_KEY = 511
#: Cap on each half of a ``done`` key (crawl id, image key): two halves and a NUL fit 511.
_MAX_DONE_PART = 250
#: Prefix of hashed keys: NUL never starts a digest, a reference or a crawl id.
_HASHED = b"\x00sha256:"
_DBS = (
    b"meta", b"layers", b"docs", b"stacks", b"images", b"walks", b"tags", b"crawls", b"done",
    b"findings",
)  # fmt: skip
#: The ``meta`` key of the output cursor stored with the findings (``put_findings``).
_CURSOR = b"output_cursor"

_log = structlog.get_logger("regsweep.crawler.state")
_T = TypeVar("_T")


class StateError(Exception):
    """Base of state-store errors: the store cannot be opened or is used against its rules."""


class StateForked(StateError):
    """The store was opened in another process (the parent of a ``fork``)."""


class OutputMismatch(StateError):
    """The ``-o`` file is shorter than the checkpoint says: it was changed behind the crawl."""


class _Damaged(Exception):
    """The store's file cannot be used as it is (opening moves it aside)."""


class _OtherSchema(Exception):
    """The store was written under another schema version (opening replaces it)."""


#: What, met while opening, means the file cannot be used as it is.
_OPEN_DAMAGE: tuple[type[Exception], ...] = (_Damaged, *lmdbfile.DAMAGE)
#: What the warning about a damaged store says it means for a resumable crawl.
_RESUME = "a crawl -o interrupted before this run starts its output over"


class Document(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """A manifest, index or config as fetched (its digest is its key), or an image config
    in the store's scrubber's form."""

    media_type: str
    data: bytes
    #: ``""``: ``data`` is the document as fetched (it hashes to its key). Otherwise the
    #: ``Scrub.version`` that made ``data`` from an image config.
    scrub: str = ""
    #: With ``scrub``: the sha256 (hex) of ``data`` as stored, checked when read.
    stored_sha256: str = ""


class Scrub(Protocol):
    """Turns an image config into the form the store keeps: its secrets taken out, what
    judging needs of them kept (``matcher.checks.scrub``); None for a config it cannot
    read, which is then not kept at all."""

    #: Names the form: a config stored under another version is a miss.
    @property
    def version(self) -> str: ...

    def __call__(self, config: bytes, /) -> bytes | None: ...


class StackFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What one stack of layers holds, assembled: shared by every image built on it."""

    #: ``stack_key`` of the analyzer set and the layer digests.
    key: str
    os: OsInfo | None = None
    #: Advisory ecosystem of the OS packages (``Debian:12`` …), as the analyzers set it.
    ecosystem: str | None = None
    packages: list[Package] = []
    #: What the analyzers skipped and why (error records again on a re-match).
    notes: list[Problem] = []
    #: ``analyzer_set_hash`` of the analyzers that produced ``packages``.
    analyzers: str
    #: Secrets in the stack's files, redacted.
    secrets: list[FileSecret] = []


class StoredImage(msgspec.Struct, frozen=True, kw_only=True):
    """An analysed platform image as stored: with its stack (and its config, a document),
    enough to rebuild its ``facts.ImageFacts`` and re-match it against new advisories."""

    image: ImageRef
    #: Layer digests, bottom first.
    layers: list[str] = []
    #: ``stack_key`` of what its layers hold (``StackFacts``).
    stack: str
    #: Total compressed size of the layers.
    size: int = 0
    #: What went wrong with the image itself, beyond its stack's notes.
    notes: list[Problem] = []
    scanned_at: datetime
    #: ``analyzer_set_hash`` of the analyzers that produced its stack's packages.
    analyzers: str


def stack_key(analyzers: str, layers: Sequence[str]) -> str:
    """The key of a stack of layers (bottom first) under one analyzer set."""
    return hashlib.sha256(msgspec.msgpack.encode([analyzers, *layers])).hexdigest()[:40]


class WalkImage(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """One platform image a manifest led to (``Walk``), as its image record names it."""

    digest: str
    #: The index it was reached through (None for the manifest itself).
    index_digest: str | None = None
    platform: str | None = None
    #: The image config, verified against its digest when it was fetched; in the
    #: scrubber's form when ``scrub`` names one.
    config: bytes = b""
    #: Number of layers and their total compressed size.
    layers: int = 0
    size: int = 0
    #: As ``Document.scrub``: the scrubber version whose form ``config`` is in, or "".
    scrub: str = ""


class Walk(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """What a crawl found under one manifest digest, for one analyzer set and platform filter:
    the platform images in order and the notes (skipped attestations, artifacts, platforms).
    Written only for a walk without failures whose every image was complete."""

    digest: str
    analyzers: str
    #: The crawl's ``--platform`` (``str(Platform)``), "" for every platform.
    platform: str
    #: Manifest documents the walk went through (the manifest or index and its children).
    manifests: int
    images: list[WalkImage] = []
    notes: list[str] = []


def walk_key(digest: str, analyzers: str, platform: str) -> bytes:
    """The ``walks`` key of one manifest under one analyzer set and platform filter."""
    return _key(f"{digest}\x00{analyzers}\x00{platform}")


class TagEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The manifest digest a tag pointed to when last seen."""

    digest: str
    #: When the tag was first seen pointing at ``digest``: the crawler writes the entry when
    #: the digest changes, not on every visit (a warm crawl of an unchanged registry
    #: writes nothing to the store).
    seen_at: datetime


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How far a crawl's output got: everything before ``offset`` is final."""

    crawl_id: str
    output: str
    offset: int = 0
    records: int = 0
    images: int = 0
    started_at: datetime
    updated_at: datetime
    #: The crawl's tallies as of ``offset``, summed over its runs (``ResumableOutput.tally``):
    #: what a resumed crawl's summary counts on from.
    tally: dict[str, int] = {}
    #: How many runs of the command wrote to this output so far.
    runs: int = 1
    #: The last bytes before ``offset``: a resumed crawl checks the file still ends its
    #: checkpointed part with them (another program, or another ``--format``, may have
    #: rewritten the file since).
    tail: bytes = b""


class _FindingsHead(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The leading fields of a stored ``ImageFindings`` (``array_like``: the rest of the
    array is skipped, not decoded)."""

    fingerprint: str
    image: ImageRef


class StateMeta(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The store's own description."""

    schema_version: int = SCHEMA_VERSION


class Versioned(Protocol):
    """Anything with an analyzer's ``NAME`` and ``VERSION`` (an analyzer instance)."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int]


def analyzer_set_hash(analyzers: Iterable[Versioned | tuple[str, int]]) -> str:
    """A stable hash of the analyzers' ``(NAME, VERSION)`` pairs, independent of order.

    Part of every layer-facts key, so bumping one analyzer's ``VERSION`` (which it must do
    when its ``wants`` or its output for the same files changes) misses every layer and
    image cached under the old set. Two analyzers with one name are refused: the hash could
    not tell their versions apart.
    """
    pairs = [a if isinstance(a, tuple) else (a.NAME, a.VERSION) for a in analyzers]
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"analyzer names repeat: {sorted(names)}")
    return hashlib.sha256(msgspec.msgpack.encode(sorted(pairs))).hexdigest()[:32]


def crawl_id(*parts: str) -> str:
    """A crawl's identity from what makes "the same command": URL, filters, output path.

    The caller passes the parts that must match for a restart to resume (not e.g.
    ``--concurrency``, which may change between runs).
    """
    return hashlib.sha256(msgspec.msgpack.encode(list(parts))).hexdigest()[:32]


def _hashed(raw: bytes) -> bytes:
    return _HASHED + hashlib.sha256(raw).hexdigest().encode()


def _key(text: str) -> bytes:
    raw = text.encode()
    return raw if len(raw) <= _MAX_KEY else _hashed(raw)


def layer_key(digest: str, analyzers: str) -> bytes:
    """The ``layers`` key of one layer under one analyzer set."""
    return _key(f"{digest}\x00{analyzers}")


def done_key(image: str) -> str:
    """The form in which ``done_images`` returns ``image`` (a hash when it is long)."""
    raw = image.encode()
    return image if len(raw) <= _MAX_DONE_PART else _hashed(raw).decode()


def _done_prefix(cid: str) -> bytes:
    raw = cid.encode()
    return (raw if len(raw) <= _MAX_DONE_PART else _hashed(raw)) + b"\x00"


def _now() -> datetime:
    return datetime.now(UTC)


class _ReadGate:
    """Lets many short reads run together, and a map resize run with none in flight
    (LMDB's rule: ``mdb_env_set_mapsize`` only while the process has no transaction)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive = False

    def enter(self) -> None:
        """Count one read in (waits while a resize runs); pair with ``leave``."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._readers += 1

    def leave(self) -> None:
        """Count one read out."""
        with self._cond:
            self._readers -= 1
            # Only a resize waits for the count to reach zero (readers wait for the end of
            # a resize, which notifies them itself).
            if not self._readers and self._exclusive:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class StateStore:
    """The state store at ``path`` (created when missing).

    Reads from any thread; writes from one thread only (the first that writes, normally a
    ``StateWriter``'s). Not for use across ``fork``.

    Durability: a commit is safe against ``kill -9`` as soon as it returns (its pages are
    in the kernel's page cache, which outlives the process). Against an OS crash or power
    loss, the default (``sync=False``) flushes the file at every checkpoint and on
    ``sync``/``close``, not at every commit: an ``fsync`` costs milliseconds (0.9–9 ms per
    ``put_image`` with ``sync=True`` on the development VM, 0.15–0.3 ms without), and
    everything but a checkpoint is a cache that can be rebuilt. ``sync=True`` flushes
    every commit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = MAP_SIZE,
        sync: bool = False,
        scrub: Scrub | None = None,
    ) -> None:
        self.path = Path(path)
        self._scrub = scrub
        #: The ``Scrub.version`` every stored image config is in ("" without a scrubber:
        #: kept as fetched).
        self.scrub_version = "" if scrub is None else scrub.version
        #: Database name (``layers``, ``images`` …) → how many stored values failed to decode.
        self.corrupt: dict[str, int] = {}
        #: Why the store is bypassed for the rest of the run (an LMDB error while in use),
        #: None while it is in use.
        self.bypassed: str | None = None
        self._move_aside_at_close = False
        self._damage_lock = threading.Lock()
        self._pid = os.getpid()
        self._writer: int | None = None
        self._closed = False
        self._opening = True
        self._gate = _ReadGate()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._enc = msgspec.msgpack.Encoder()
        self._dec: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {
            t: msgspec.msgpack.Decoder(t)
            for t in (
                LayerFacts,
                Document,
                StackFacts,
                StoredImage,
                Walk,
                TagEntry,
                Checkpoint,
                StateMeta,
                ImageFindings,
                _FindingsHead,
            )
        }
        try:
            self._open(map_size, sync)
        except _OtherSchema as other:
            # A cache of another layout: nothing in it can be trusted, and a crawl that
            # started under another version restarts from the beginning.
            _log.warning(
                "state_schema_reset",
                path=str(self.path),
                found=other.args[0],
                expected=SCHEMA_VERSION,
                resume=_RESUME,
            )
            self._remove()
            self._open(map_size, sync)
        except _Damaged as err:
            try:
                aside = self._move_aside()
            except OSError as exc:
                raise StateError(
                    f"state store {self.path} is damaged ({err}) and cannot be moved aside: {exc}"
                ) from exc
            _log.warning(
                "state_store_damaged",
                path=str(self.path),
                error=str(err),
                moved_to=str(aside),
                action="moved aside; a new store is started (what was cached is fetched again)",
                resume=_RESUME,
            )
            self._open(map_size, sync)
        self._opening = False

    def _open(self, map_size: int, sync: bool) -> None:
        """Open the environment and its databases and check the schema; ``_Damaged`` when
        the file cannot be used as it is, ``StateError`` when it cannot be opened at all."""
        try:
            # An empty file is what LMDB makes a new store of (and what a crash right after
            # creating one leaves). Anything else must be whole before LMDB maps it.
            if self.path.exists() and self.path.stat().st_size:
                lmdbfile.check(self.path)
        except lmdbfile.LmdbFileError as err:
            raise _Damaged(str(err)) from None
        except OSError as err:
            raise StateError(f"cannot open state store {self.path}: {err}") from err
        try:
            self._env = lmdb.open(
                str(self.path),
                subdir=False,
                map_size=map_size,
                max_dbs=len(_DBS),
                sync=sync,
                metasync=sync,
                # Owner only: the store keeps image configs, whose Env can hold secrets.
                mode=0o600,
            )
        except lmdbfile.DAMAGE as err:
            raise _Damaged(str(err)) from err
        except lmdb.Error as err:
            raise StateError(f"cannot open state store {self.path}: {err}") from err
        try:
            self._dbs = {name.decode(): self._env.open_db(name) for name in _DBS}
            self._check_schema()
        except _OPEN_DAMAGE as err:
            self._env.close()
            raise _Damaged(str(err)) from err
        except lmdb.Error as err:
            self._env.close()
            raise StateError(f"cannot open state store {self.path}: {err}") from err

    def _remove(self) -> None:
        """Delete the file and its lock file (a new store is then made in their place)."""
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + "-lock").unlink(missing_ok=True)

    def _move_aside(self) -> Path:
        """Rename the damaged file out of the way, with its lock file: the lock file's
        reader table and transaction id describe that file, not the new one."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        lock = self.path.with_name(self.path.name + "-lock")
        os.replace(self.path, aside)
        if lock.exists():
            os.replace(lock, aside.with_name(aside.name + "-lock"))
        return aside

    def _damaged(self, err: lmdb.Error) -> None:
        """An LMDB error while the store is in use: bypass it for the rest of the run (every
        read a miss, every write dropped), with one warning; move a damaged file aside when
        it is closed."""
        with self._damage_lock:
            if self.bypassed is not None:
                return
            self.bypassed = str(err)
            damage = isinstance(err, lmdbfile.DAMAGE)
            self._move_aside_at_close = damage
        _log.warning(
            "state_store_damaged",
            path=str(self.path),
            error=str(err),
            action="bypassed for the rest of this run"
            + ("; moved aside when it is closed (a new store next time)" if damage else ""),
            resume=_RESUME,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def sync(self) -> None:
        """Flush every commit so far to disk (``fsync``)."""
        self._check_pid()
        if self.bypassed is None:
            self._env.sync(True)

    def close(self) -> None:
        """Flush and release the environment (the file stays).

        In a forked child this is the one call allowed on the inherited store, and the child
        must make it before opening the file again (py-lmdb refuses a second open of one
        path in a process). It only unmaps and closes the child's copies: LMDB marks reader
        slots with the owner's pid and POSIX record locks belong to the process that took
        them, so the parent's readers and locks are untouched.
        """
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            self._env.close()
            return
        if self.bypassed is None:
            self._env.sync(True)
        self._env.close()
        if self._move_aside_at_close:
            try:
                aside = self._move_aside()
            except OSError as exc:
                # The next run meets the damage again and bypasses it again: no worse.
                _log.warning("state_store_not_moved", path=str(self.path), error=str(exc))
            else:
                _log.info("state_store_moved_aside", path=str(self.path), moved_to=str(aside))

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map_size(self) -> int:
        """The current map size in bytes."""
        self._check_pid()
        size: int = self._env.info()["map_size"]
        return size

    def _check_pid(self) -> None:
        if os.getpid() != self._pid:
            raise StateForked(
                f"state store {self.path} was opened in process {self._pid} and used in "
                f"{os.getpid()}: open a new StateStore in the child (LMDB forbids sharing "
                "an environment across fork)"
            )

    def _check_writer(self) -> None:
        self._check_pid()
        me = threading.get_ident()
        if self._writer is None:
            self._writer = me
        elif self._writer != me:
            raise StateError(
                "state store written from a second thread: hand writes to the StateWriter "
                "(LMDB write transactions are bound to one thread)"
            )

    def release_writer(self) -> None:
        """The calling thread, if it is the writer, gives the role up (a later writer thread
        may then claim it). ``StateWriter.close`` does this on its thread."""
        if self._writer == threading.get_ident():
            self._writer = None

    def _check_schema(self) -> None:
        with self._env.begin() as txn:
            raw = txn.get(b"meta", db=self._dbs["meta"])
        meta = None
        if raw is not None:
            try:
                meta = self._dec[StateMeta].decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                # The record every store has: not one bad value but a damaged file.
                raise _Damaged(f"its meta record does not decode: {err}") from None
        if meta is not None and meta.schema_version == SCHEMA_VERSION:
            return
        if meta is not None:
            self._env.close()
            raise _OtherSchema(meta.schema_version)

        def reset(txn: Any) -> None:
            for name, db in self._dbs.items():
                if name != "meta":
                    txn.drop(db, delete=False)
            txn.put(b"meta", self._enc.encode(StateMeta()), db=self._dbs["meta"])

        self._write(reset)
        # Setting up the schema is not "the" writer: let the crawler's writer thread claim it.
        self._writer = None

    # -- reading -------------------------------------------------------------------------

    @contextmanager
    def _read_txn(self) -> Iterator[Any]:
        self._check_pid()
        while True:
            with self._gate.shared():
                try:
                    txn = self._env.begin()
                except lmdb.MapResizedError:
                    pass
                else:
                    with txn:
                        yield txn
                    return
            # Another process grew the map: adopt its size, with no reads in flight.
            with self._gate.exclusive():
                self._env.set_mapsize(0)

    def _get(self, db: str, key: bytes, typ: type[_T]) -> _T | None:
        with self.reading() as r:
            return r._get(db, key, typ)

    def reading(self) -> _Reading:
        """Several reads in one read transaction (one consistent view, one transaction's
        cost): for a unit of work such as one tag, whose tag entry, documents and image
        facts are all read together: ``with store.reading() as r: r.get_tag(…)``. Keep it
        short and never across an ``await``: an open read transaction pins old pages and
        holds off a map resize."""
        return _Reading(self)

    def _decode(self, db: str, key: bytes, raw: bytes, typ: type[_T]) -> _T | None:
        try:
            value: _T = self._dec[typ].decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as err:
            first = db not in self.corrupt
            self.corrupt[db] = self.corrupt.get(db, 0) + 1
            if first:
                # Once per database: a damaged page holds many values, each a miss.
                _log.warning(
                    "state_entry_corrupt",
                    path=str(self.path),
                    db=db,
                    key=key.decode(errors="replace"),
                    error=str(err),
                    action="read as missing (fetched again and overwritten); "
                    "later ones in this database are counted, not logged",
                )
            return None
        return value

    def get_layer(self, digest: str, analyzers: str) -> LayerFacts | None:
        """The layer's facts under this analyzer set, else None (a miss)."""
        with self.reading() as r:
            return r.get_layer(digest, analyzers)

    def get_doc(self, digest: str) -> Document | None:
        """A cached document whose bytes hash to ``digest``, else None (a damaged entry is
        a miss: fetched again, and overwritten)."""
        with self.reading() as r:
            return r.get_doc(digest)

    def get_stack(self, key: str) -> StackFacts | None:
        """What a stack of layers holds (``stack_key``), else None."""
        with self.reading() as r:
            return r.get_stack(key)

    def get_image(self, digest: str, analyzers: str | None = None) -> StoredImage | None:
        """The image facts of a manifest digest, else None.

        With ``analyzers``, facts produced by another analyzer set are a miss: they no
        longer say what the current analyzers would find.
        """
        with self.reading() as r:
            return r.get_image(digest, analyzers)

    def get_walk(self, digest: str, analyzers: str, platform: str) -> Walk | None:
        """What a crawl found under manifest ``digest`` with this analyzer set and platform
        filter (``""``: every platform), else None."""
        with self.reading() as r:
            return r.get_walk(digest, analyzers, platform)

    def get_tag(self, ref: str) -> TagEntry | None:
        """The last digest seen for ``registry/repo:tag``, else None."""
        with self.reading() as r:
            return r.get_tag(ref)

    def get_findings(self, key: str) -> ImageFindings | None:
        """The findings last reported for image key ``key`` (``changes.image_key``), else
        None."""
        with self.reading() as r:
            return r.get_findings(key)

    def findings(self) -> Iterator[tuple[str, ImageFindings]]:
        """Every image key with its stored findings, in key order, read in batches of short
        read transactions (a caller may take its time over each). Stops early, with the
        store bypassed, at a damaged page."""
        start = b""
        while self.bypassed is None:
            rows: list[tuple[bytes, bytes]] = []
            try:
                with self._read_txn() as txn:
                    cur = txn.cursor(db=self._dbs["findings"])
                    if cur.set_range(start):
                        for k, v in cur:
                            rows.append((bytes(k), bytes(v)))
                            if len(rows) >= 1024:
                                break
            except lmdb.Error as err:
                self._damaged(err)
                return
            for k, v in rows:
                value = self._decode("findings", k, v, ImageFindings)
                if value is not None:
                    yield image_key(value.image), value
            if len(rows) < 1024:
                return
            start = rows[-1][0] + b"\x00"

    def output_cursor(self) -> bytes | None:
        """The cursor last stored with ``put_findings``, else None."""
        if self.bypassed is not None:
            return None
        try:
            with self._read_txn() as txn:
                raw = txn.get(_CURSOR, db=self._dbs["meta"])
        except lmdb.Error as err:
            self._damaged(err)
            return None
        return None if raw is None else bytes(raw)

    def get_checkpoint(self, cid: str) -> Checkpoint | None:
        """The last checkpoint of crawl ``cid``, else None (a fresh crawl)."""
        cp = self._get("crawls", _key(cid), Checkpoint)
        if cp is None or cp.crawl_id != cid:
            return None
        return cp

    def tags(self) -> list[tuple[str, TagEntry]]:
        """Every ``registry/repo:tag`` the store knows and its entry, in key order (a tag
        longer than an LMDB key was stored under a hash: its name is not known, it is left
        out). Empty while the store is bypassed."""
        out: list[tuple[str, TagEntry]] = []
        if self.bypassed is not None:
            return out
        try:
            with self._read_txn() as txn:
                for key, raw in txn.cursor(db=self._dbs["tags"]):
                    if key.startswith(_HASHED):
                        continue
                    entry = self._decode("tags", key, raw, TagEntry)
                    if entry is not None:
                        out.append((key.decode(errors="replace"), entry))
        except lmdb.Error as err:
            self._damaged(err)
        return out

    def done_images(self, cid: str) -> set[str]:
        """The image keys (as ``done_key`` spells them) crawl ``cid`` finished so far."""
        prefix = _done_prefix(cid)
        out: set[str] = set()
        if self.bypassed is not None:
            return out
        try:
            with self._read_txn() as txn:
                cur = txn.cursor(db=self._dbs["done"])
                if cur.set_range(prefix):
                    for k in cur.iternext(values=False):
                        if not k.startswith(prefix):
                            break
                        out.add(k[len(prefix) :].decode(errors="replace"))
        except lmdb.Error as err:
            # ``ResumableOutput`` sees the store bypassed and starts over: half a set of
            # finished images would write the others' records twice.
            self._damaged(err)
            out.clear()
        return out

    def counts(self) -> dict[str, int]:
        """Entries per database (for a ``state info`` command and tests)."""
        with self._read_txn() as txn:
            return {name: txn.stat(db)["entries"] for name, db in self._dbs.items()}

    # -- writing -------------------------------------------------------------------------

    def _write(self, body: Callable[[Any], None]) -> None:
        """Run ``body`` in one write transaction, growing the map when it is full (dropped
        while the store is bypassed)."""
        self._check_writer()
        while self.bypassed is None:
            try:
                with self._env.begin(write=True) as txn:
                    body(txn)
                return
            except lmdb.MapFullError:
                # The transaction was aborted whole: grow, then run all of it again.
                with self._gate.exclusive():
                    self._env.set_mapsize(self._env.info()["map_size"] * 2)
                _log.info("state_map_grown", path=str(self.path), map_size=self.map_size())
            except lmdb.MapResizedError:
                with self._gate.exclusive():
                    self._env.set_mapsize(0)
            except lmdb.Error as err:
                if self._opening:
                    raise
                # Aborted whole, so nothing half-written: the store is not used again.
                self._damaged(err)

    def put_layer(self, facts: LayerFacts) -> None:
        """Store a layer's facts (under its digest and analyzer set)."""
        if facts.stored_at is None:
            facts = msgspec.structs.replace(facts, stored_at=_now())
        raw = self._enc.encode(facts)
        key = layer_key(facts.digest, facts.analyzers)
        self._write(lambda txn: txn.put(key, raw, db=self._dbs["layers"]))

    def put_stack(self, facts: StackFacts) -> None:
        """Store what a stack of layers holds under its key."""
        raw = self._enc.encode(facts)
        self._write(lambda txn: txn.put(_key(facts.key), raw, db=self._dbs["stacks"]))

    def put_doc(self, digest: str, doc: Document) -> None:
        """Store a document under its digest (the caller checked that it hashes to it): an
        image config in the scrubber's form, when the store has one (not at all when the
        scrubber cannot read it)."""
        if self._scrub is not None and doc.media_type in IMAGE_CONFIG_MEDIA_TYPES:
            data = self._scrub(doc.data)
            if data is None:
                return
            doc = Document(
                media_type=doc.media_type,
                data=data,
                scrub=self.scrub_version,
                stored_sha256=hashlib.sha256(data).hexdigest(),
            )
        raw = self._enc.encode(doc)
        self._write(lambda txn: txn.put(_key(digest), raw, db=self._dbs["docs"]))

    def put_image(self, facts: StoredImage, *, tag: str | None = None) -> None:
        """Store an image's facts and, with ``tag`` (``registry/repo:tag``), point the tag
        at it, in one transaction."""
        digest = facts.image.digest
        if not digest:
            raise ValueError("StoredImage.image.digest is required: it is the key")
        raw = self._enc.encode(facts)
        tag_raw = self._enc.encode(TagEntry(digest=digest, seen_at=facts.scanned_at))

        def body(txn: Any) -> None:
            txn.put(_key(digest), raw, db=self._dbs["images"])
            if tag is not None:
                txn.put(_key(tag), tag_raw, db=self._dbs["tags"])

        self._write(body)

    def put_walk(self, walk: Walk, tag: str | None = None) -> None:
        """Store what a crawl found under one manifest (see ``Walk``) and, with ``tag``
        (``registry/repo:tag``), point the tag at it, in one transaction. Its configs are
        stored in the scrubber's form; a walk with a config the scrubber cannot read is not
        stored (the tag still is)."""
        scrubbed = self._scrubbed_walk(walk)
        raw = None if scrubbed is None else self._enc.encode(scrubbed)
        key = walk_key(walk.digest, walk.analyzers, walk.platform)
        tag_raw = self._enc.encode(TagEntry(digest=walk.digest, seen_at=_now()))

        def body(txn: Any) -> None:
            if raw is not None:
                txn.put(key, raw, db=self._dbs["walks"])
            if tag is not None:
                txn.put(_key(tag), tag_raw, db=self._dbs["tags"])

        self._write(body)

    def _scrubbed_walk(self, walk: Walk) -> Walk | None:
        """``walk`` with every config in this store's form (the crawler hands over configs
        as fetched, or as it read them back from the store); None if one cannot be."""
        if all(w.scrub == self.scrub_version for w in walk.images):
            return walk
        images = []
        for w in walk.images:
            if w.scrub == self.scrub_version:
                images.append(w)
                continue
            data = None if self._scrub is None or w.scrub else self._scrub(w.config)
            if data is None:
                return None
            images.append(msgspec.structs.replace(w, config=data, scrub=self.scrub_version))
        return msgspec.structs.replace(walk, images=images)

    def put_tag(self, ref: str, digest: str, seen_at: datetime | None = None) -> None:
        """Record that ``registry/repo:tag`` pointed to ``digest``."""
        raw = self._enc.encode(TagEntry(digest=digest, seen_at=seen_at or _now()))
        self._write(lambda txn: txn.put(_key(ref), raw, db=self._dbs["tags"]))

    def _findings_rows(
        self, updates: Mapping[str, ImageFindings | None]
    ) -> list[tuple[bytes, bytes | None]]:
        rows: list[tuple[bytes, bytes | None]] = []
        for key, value in updates.items():
            if value is None:
                rows.append((_key(key), None))
                continue
            if key != image_key(value.image):
                raise ValueError(f"findings of {image_key(value.image)!r} given as {key!r}")
            rows.append((_key(key), self._enc.encode(value)))
        return rows

    def put_findings(
        self, updates: Mapping[str, ImageFindings | None], cursor: bytes | None = None
    ) -> None:
        """Store the findings of several image keys (``changes.image_key``; None deletes a
        key's) and, with ``cursor``, the caller's output position (``output_cursor``), in
        one transaction: the findings are then stored exactly when the output that
        reported them is."""
        rows = self._findings_rows(updates)

        def body(txn: Any) -> None:
            db = self._dbs["findings"]
            for key, raw in rows:
                if raw is None:
                    txn.delete(key, db=db)
                else:
                    txn.put(key, raw, db=db)
            if cursor is not None:
                txn.put(_CURSOR, cursor, db=self._dbs["meta"])

        self._write(body)

    def commit_checkpoint(
        self,
        checkpoint: Checkpoint,
        finished: Sequence[str],
        findings: Mapping[str, ImageFindings] | None = None,
    ) -> None:
        """Record ``checkpoint``, the images finished since the last one and the findings
        they reported (``put_findings``), atomically.

        The caller must have made the output durable up to ``checkpoint.offset`` first
        (``ResumableOutput.checkpoint`` does): a checkpoint then never points past bytes
        that a crash could lose.
        """
        raw = self._enc.encode(checkpoint)
        prefix = _done_prefix(checkpoint.crawl_id)
        ckey = _key(checkpoint.crawl_id)
        rows = self._findings_rows(findings or {})

        def body(txn: Any) -> None:
            done = self._dbs["done"]
            for image in finished:
                txn.put(prefix + done_key(image).encode(), b"", db=done)
            txn.put(ckey, raw, db=self._dbs["crawls"])
            for key, value in rows:
                if value is None:
                    txn.delete(key, db=self._dbs["findings"])
                else:
                    txn.put(key, value, db=self._dbs["findings"])

        self._write(body)
        # A checkpoint is the one record that must survive an OS crash as well.
        if self.bypassed is None:
            self._env.sync(True)

    def clear_crawl(self, cid: str) -> None:
        """Forget crawl ``cid`` (it completed): the same command then starts a new crawl."""
        prefix = _done_prefix(cid)

        def body(txn: Any) -> None:
            txn.delete(_key(cid), db=self._dbs["crawls"])
            cur = txn.cursor(db=self._dbs["done"])
            # delete() moves the cursor to the next row; past the last row key() is b"".
            if cur.set_range(prefix):
                while cur.key().startswith(prefix) and cur.delete():
                    pass

        self._write(body)


class _Reading:
    """``StateStore.reading()``: a read transaction handed out as a ``StateReader``. A class
    rather than a generator context manager because it runs once per tag on a warm
    crawl's hot path; the same steps as ``StateStore._read_txn``."""

    __slots__ = ("_store", "_txn")

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._txn: Any = None

    def __enter__(self) -> StateReader:
        store = self._store
        store._check_pid()
        gate = store._gate
        while store.bypassed is None:
            gate.enter()
            try:
                txn = store._env.begin()
            except lmdb.MapResizedError:
                gate.leave()
                # Another process grew the map: adopt its size, with no reads in flight.
                with gate.exclusive():
                    store._env.set_mapsize(0)
                continue
            except lmdb.Error as err:
                gate.leave()
                store._damaged(err)
                break
            except BaseException:
                gate.leave()
                raise
            self._txn = txn
            return StateReader(store, txn)
        # Bypassed: a reader that misses everything, holding no transaction.
        return StateReader(store, None)

    def __exit__(self, *exc: object) -> None:
        txn, self._txn = self._txn, None
        if txn is None:
            return
        try:
            txn.abort()  # read-only: ending it either way releases its reader slot
        finally:
            self._store._gate.leave()


class StateReader:
    """The ``get_*`` reads of a ``StateStore`` inside one read transaction
    (``StateStore.reading``); same answers as the store's own methods."""

    __slots__ = ("_store", "_txn")

    def __init__(self, store: StateStore, txn: Any) -> None:
        self._store = store
        self._txn = txn

    def _get(self, db: str, key: bytes, typ: type[_T]) -> _T | None:
        store = self._store
        if store.bypassed is not None:
            return None
        try:
            raw = self._txn.get(key, db=store._dbs[db])
        except lmdb.Error as err:
            # A damaged page (or a transaction a damaged page already failed): a miss.
            store._damaged(err)
            return None
        if raw is None:
            return None
        return store._decode(db, key, raw, typ)

    def get_layer(self, digest: str, analyzers: str) -> LayerFacts | None:
        """As ``StateStore.get_layer``."""
        facts = self._get("layers", layer_key(digest, analyzers), LayerFacts)
        if facts is None or facts.digest != digest or facts.analyzers != analyzers:
            return None
        return facts

    def get_stack(self, key: str) -> StackFacts | None:
        """As ``StateStore.get_stack``."""
        facts = self._get("stacks", _key(key), StackFacts)
        return facts if facts is not None and facts.key == key else None

    def get_doc(self, digest: str) -> Document | None:
        """As ``StateStore.get_doc``."""
        store = self._store
        doc = self._get("docs", _key(digest), Document)
        if doc is None:
            return None
        if doc.scrub:
            # An image config in a scrubber's form: this store's, and whole.
            if doc.scrub != store.scrub_version:
                return None
            return doc if hashlib.sha256(doc.data).hexdigest() == doc.stored_sha256 else None
        if store.scrub_version and doc.media_type in IMAGE_CONFIG_MEDIA_TYPES:
            return None  # kept raw (before the store had a scrubber): replaced when fetched
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or hashlib.sha256(doc.data).hexdigest() != hexdigest:
            return None
        return doc

    def get_image(self, digest: str, analyzers: str | None = None) -> StoredImage | None:
        """As ``StateStore.get_image``."""
        facts = self._get("images", _key(digest), StoredImage)
        if facts is None or facts.image.digest != digest:
            return None
        if analyzers is not None and facts.analyzers != analyzers:
            return None
        return facts

    def get_walk(self, digest: str, analyzers: str, platform: str) -> Walk | None:
        """What a crawl found under manifest ``digest`` (see ``Walk``), else None."""
        walk = self._get("walks", walk_key(digest, analyzers, platform), Walk)
        if walk is None or (walk.digest, walk.analyzers, walk.platform) != (
            digest,
            analyzers,
            platform,
        ):
            return None
        version = self._store.scrub_version
        if any(w.scrub != version for w in walk.images):
            return None  # configs in another form than this store keeps
        return walk

    def get_tag(self, ref: str) -> TagEntry | None:
        """As ``StateStore.get_tag``."""
        return self._get("tags", _key(ref), TagEntry)

    def get_findings(self, key: str) -> ImageFindings | None:
        """As ``StateStore.get_findings``."""
        value = self._get("findings", _key(key), ImageFindings)
        return value if value is not None and image_key(value.image) == key else None

    def findings_fingerprint(self, key: str) -> str | None:
        """The ``fingerprint`` of the findings stored for ``key``, decoding nothing else:
        a caller whose ``changes.fingerprint`` equals it has nothing to store."""
        head = self._get("findings", _key(key), _FindingsHead)
        return head.fingerprint if head is not None and image_key(head.image) == key else None


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add ``counts`` to ``into``: sums, except a ``max_…`` key, which keeps the maximum."""
    for key, value in counts.items():
        old = into.get(key, 0)
        into[key] = max(old, value) if key.startswith("max_") else old + value


class ResumableOutput:
    """The ``-o FILE`` of a crawl, written so that ``kill -9`` loses and repeats nothing.

    The records go to ``FILE.partial``, locked for the run and renamed onto ``FILE`` by
    ``complete`` (``outfile.PartialFile``): a previous complete result stays in place until
    the new one is complete, and a second crawl writing the same ``FILE`` refuses to start
    (``outfile.OutputBusy``). Opening it resumes crawl ``cid``: the partial file is
    truncated to the last checkpoint's offset (dropping the records of images that were not
    checkpointed, and any half-written line), and ``is_done`` answers for the images
    finished before it. Without a checkpoint, or with the partial file removed, the crawl
    starts afresh. A failed write (disk full) is an ``outfile.OutputError`` naming the
    file; the last checkpoint still describes the file exactly, so the same command
    resumes from it. Use it from the store's writer thread (it writes the store).
    """

    def __init__(self, store: StateStore, cid: str, path: str | os.PathLike[str]) -> None:
        self.store = store
        self.cid = cid
        self.path = Path(path)
        # Owned until complete() or close(); locked before the checkpoint is read, so no
        # other run of this crawl moves it meanwhile.
        self._file = PartialFile(self.path)
        self._fh = self._file.fh
        try:
            cp = store.get_checkpoint(cid)
            done = set() if cp is None else store.done_images(cid)
            if store.bypassed is not None:
                # Found damaged while reading them: the checkpoint, or the set of images it
                # finished, may be incomplete. Starting over writes every record once.
                cp = None
            size = os.fstat(self._fh.fileno()).st_size
            if cp is not None and size == 0:
                # The partial file was removed (the way to start over): so is its crawl.
                store.clear_crawl(cid)
                cp = None
            if cp is None:
                self._started = _now()
                self._records = self._images = 0
                self._tally: dict[str, int] = {}
                self._runs = 1
                self._done: set[str] = set()
                self._fh.truncate(0)
            else:
                if size < cp.offset or _tail(self._fh, cp.offset) != cp.tail:
                    raise OutputMismatch(
                        f"{self._file.partial} is not what crawl {cid} checkpointed "
                        f"({cp.offset} bytes): it was changed outside the crawl; remove it "
                        "to start over"
                    )
                self._started = cp.started_at
                self._records, self._images = cp.records, cp.images
                self._tally = dict(cp.tally)
                self._runs = cp.runs + 1
                self._done = done
                self._fh.truncate(cp.offset)
            self._fh.seek(0, os.SEEK_END)
        except BaseException:
            self._file.close()
            raise
        #: Whether this run continues an interrupted crawl.
        self.resumed = cp is not None
        self._pending: list[str] = []
        self._findings: dict[str, ImageFindings] = {}

    @property
    def partial(self) -> Path:
        """The file written until the crawl is complete."""
        return self._file.partial

    @property
    def records(self) -> int:
        """Records written so far by this crawl (all runs, checkpointed or not)."""
        return self._records

    @property
    def images(self) -> int:
        """Images finished so far by this crawl (all runs)."""
        return self._images

    @property
    def started_at(self) -> datetime:
        """When the crawl's first run started."""
        return self._started

    @property
    def runs(self) -> int:
        """How many runs wrote to this output, this one included."""
        return self._runs

    def tally(self, live: Mapping[str, int] | None = None) -> dict[str, int]:
        """The crawl's tallies over all its runs: the per-image ``counts`` of every block in
        the file (earlier runs' up to their last checkpoint, this run's as written), plus
        ``live`` work counters of this run (layers fetched …) on top of the earlier runs'.
        A ``max_…`` key is the maximum over runs instead of the sum."""
        out = dict(self._tally)
        add_counts(out, live or {})
        return out

    def is_done(self, image: str) -> bool:
        """Whether ``image``'s records are already in the file (this run or an earlier one)."""
        return done_key(image) in self._done

    def write_image(
        self,
        image: str,
        lines: Iterable[bytes],
        counts: Mapping[str, int] | None = None,
        findings: Mapping[str, ImageFindings] | None = None,
    ) -> bool:
        """Append one image's NDJSON lines (each ending in ``\\n``); the image counts as done
        at the next checkpoint. An image already done is skipped whole (returns False).
        ``counts`` are what the block adds to the crawl's tallies (see ``tally``);
        ``findings`` what its images reported (``changes.ImageFindings`` by image key),
        stored with the checkpoint that makes the lines final."""
        if self.is_done(image):
            return False
        if findings:
            self._findings.update(findings)
        n = 0
        for line in lines:
            self._fh.write(line)
            n += 1
        add_counts(self._tally, counts or {})
        self._records += n
        self._images += 1
        self._pending.append(image)
        self._done.add(done_key(image))
        return True

    def checkpoint(self, live: Mapping[str, int] | None = None) -> Checkpoint:
        """Make everything written so far durable, then record it in one transaction;
        ``live`` are this run's work counters so far (see ``tally``)."""
        self._file.sync()
        offset = self._fh.tell()
        cp = Checkpoint(
            crawl_id=self.cid,
            output=str(self.path.resolve()),
            offset=offset,
            tail=_tail(self._fh, offset),
            records=self._records,
            images=self._images,
            started_at=self._started,
            updated_at=_now(),
            tally=self.tally(live),
            runs=self._runs,
        )
        # A store that cannot be written (a full disk, damage) is bypassed and drops this:
        # the output stays right, its resume point the last checkpoint that committed.
        self.store.commit_checkpoint(cp, self._pending, self._findings)
        self._pending = []
        self._findings = {}
        return cp

    def complete(self, last: Iterable[bytes] = ()) -> None:
        """End the crawl: append ``last`` (the summary), make the file durable, rename it
        onto ``FILE``, forget the crawl.

        ``last`` is not checkpointed: were the process killed before ``clear_crawl``
        commits, a rerun truncates back to the last checkpoint (before the summary) and
        writes the summary once, instead of finding one in the file and adding another.
        Killed after the rename and before ``clear_crawl``, a rerun finds no partial file
        and starts a new crawl, as after a complete one.
        """
        for line in last:
            self._fh.write(line)
            self._records += 1
        self._file.commit()
        # Killed before this commits, a rerun starts a new crawl that reports (and stores)
        # these images' findings again: none is lost.
        if self._findings:
            self.store.put_findings(self._findings)
            self._findings = {}
        # Dropped by a bypassed store: the stale checkpoint then finds no partial file, and
        # the next run starts afresh, as it should.
        self.store.clear_crawl(self.cid)

    def close(self, live: Mapping[str, int] | None = None) -> None:
        """Stop without completing (SIGINT/SIGTERM): checkpoint, so a rerun resumes here."""
        if not self._fh.closed:
            try:
                self.checkpoint(live)
            finally:
                self._file.close()

    def abandon(self) -> None:
        """Stop after a failed write: no checkpoint (the last one stays exact), unlock."""
        self._file.close()


_TAIL = 64


def _tail(fh: Any, offset: int) -> bytes:
    """The ``_TAIL`` bytes of ``fh`` before ``offset`` (an append-mode file: writes still go
    to its end wherever this leaves the position)."""
    start = max(0, offset - _TAIL)
    fh.seek(start)
    data: bytes = fh.read(offset - start)
    fh.seek(0, os.SEEK_END)
    return data


class StateWriter:
    """The one thread that writes a ``StateStore``, fed through a queue.

    ``submit`` queues a call and returns a ``concurrent.futures.Future``; ``call`` awaits
    one from asyncio. A cancelled awaiter never interrupts a call that has started (a
    write transaction runs whole or not at all); one still queued is dropped.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # One worker: ThreadPoolExecutor never starts a second thread, so every write runs
        # on the same thread, in submission order.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regsweep-state")

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Queue ``fn(*args)`` on the writer thread."""
        return self._pool.submit(fn, *args)

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` on the writer thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        """Finish the queued writes, hand back the writer role and stop the thread."""
        self._pool.submit(self.store.release_writer)
        self._pool.shutdown(wait=True)

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_path() -> Path:
    """``$REGSWEEP_STATE``, else ``$XDG_CACHE_HOME/regsweep/state.lmdb`` (``~/.cache``)."""
    env = os.environ.get("REGSWEEP_STATE")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "regsweep" / "state.lmdb"
