"""Registry images as analysis input: the blob → layer-scanner bridge, caching.

``Crawler.scan_ref(repo, tag_or_digest)`` resolves one registry reference to its platform
images (through ``walk.Walker``) and analyses each, returning the same
``matcher.facts.ImageFacts`` that local sources give (``matcher.judge`` judges them alike).
What it does per reference:

* a warm re-crawl: for a tag the store knows, the tag entry and what the last crawl found
  under its digest (a ``state.Walk``: platform images, configs, notes) and those images'
  facts are read in one read transaction, and used as they are if a ``HEAD`` says the tag
  still points there: one request, one transaction, nothing decoded but the stored values,
  nothing written. Index children cost no request (the index digest pins them). Anything
  missing or moved takes the path below; a clean walk (no failure, every image complete)
  is recorded for the next crawl;
* the manifest: with a digest reference, or a tag whose last digest the state store knows,
  the document comes from the store's document cache when its digest is there (a tag costs
  one ``HEAD``); otherwise one ``GET``. Indexes are followed to every platform (or the one
  asked for), attestation manifests and artifacts are skipped with a note;
* the config: fetched (capped, digest-checked) or taken from the document cache;
* image facts: an image whose manifest digest the store has facts for, under the current
  analyzer set, is not pulled at all: its packages come from the store;
* layers: each distinct layer is streamed and analysed at most once, whatever the
  concurrency, platform or repository: concurrent images that share one wait for the first,
  and its result (``layers.LayerFacts``: what the layer means to the analyzers, sized by
  what they read, not by the layer's bytes) is stored, for this crawl and later ones,
  before it leaves the in-flight map. A blob is never written to disk: ``get_blob``'s chunks go
  through a bounded queue into ``layers.scan_layer`` running on a worker thread, which
  checks the blob digest and the ``diff_id`` as it reads; the analyzers' buffered readers
  share one ``Budget`` across the crawl's concurrent layers. A broken blob (digest,
  compression, tar) is not fetched again in the same crawl: its error stands for every
  image that shares it (a later crawl tries again). The crawl keeps the facts of recent
  layers in memory (bounded: a very large layer's are read from the store again);
* an image's packages: its layers' facts merged and assembled (``analyze.assemble``, no
  parsing, on a worker thread), once per distinct stack of layers in a crawl, and stored
  once per stack (``state.StackFacts``); an image's own stored facts name their stack.

Small documents (manifests, indexes, configs) are cached by digest in the state store's
``docs`` database; they are re-hashed when read.
"""

from __future__ import annotations

import asyncio
import io
import queue
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future
from contextlib import aclosing, suppress
from datetime import UTC, datetime
from functools import partial
from typing import BinaryIO, Final, TypeVar, cast

import msgspec
import structlog

from regsweep.crawler import layers
from regsweep.crawler.analyze import assemble, begin_facts, layer_problem
from regsweep.crawler.analyzers.interface import Analyzer, Budget
from regsweep.crawler.oci import (
    MAX_CONFIG_BYTES,
    Descriptor,
    ManifestView,
    Platform,
    SourceError,
    compute_digest,
    split_digest,
)
from regsweep.crawler.registry import ProtocolError, Registry, RegistryError
from regsweep.crawler.state import (
    Document,
    StackFacts,
    StateReader,
    StateStore,
    StateWriter,
    StoredImage,
    Walk,
    WalkImage,
    analyzer_set_hash,
    stack_key,
)
from regsweep.crawler.walk import Image, Walker
from regsweep.matcher.facts import ImageFacts, Problem, problem_of
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import ImageRef

_log = structlog.get_logger("regsweep.crawler.images")
_T = TypeVar("_T")

#: Chunks in flight between the event loop and a layer's scanning thread (256 KiB each).
PIPE_DEPTH: Final = 16


# ---------------------------------------------------------------------------------------
# Results


class RefResult(msgspec.Struct, kw_only=True):
    """What one registry reference resolved to: analysed images, failures, skip notes."""

    ref: str
    digest: str | None = None
    images: list[ImageFacts] = []
    failures: list[Problem] = []
    notes: list[str] = []
    #: ``time.monotonic()`` when its resolution began (0: not said): orders two results of
    #: one reference that were worked on at once (a crawl's and a push scan's).
    read_at: float = 0.0


class Counters:
    """Work done by a crawler (for the summary and the tests)."""

    def __init__(self) -> None:
        self.layers_fetched = 0
        self.layers_cached = 0
        self.bytes_fetched = 0
        self.manifests_fetched = 0
        self.manifests_cached = 0
        self.images_analysed = 0
        self.images_cached = 0
        #: Cache writes that failed (a full or failing disk under the state store).
        self.state_writes_failed = 0


# ---------------------------------------------------------------------------------------
# Blob chunks (event loop) -> a file object (scanning thread)


class _Aborted(OSError):
    """The blob transfer stopped: the scanning thread sees a failed read (an ``OSError``,
    which ``scan_layer`` passes through as the transport's, not the layer's, fault)."""


class _BlobPipe(io.RawIOBase):
    """A read-only stream fed chunk by chunk from the event loop, bounded to ``depth``
    chunks: a slow scanner slows the download instead of growing memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = PIPE_DEPTH) -> None:
        super().__init__()
        self._loop = loop
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
        self._space = asyncio.Event()
        self._buf = b""
        self._pos = 0
        self._eof = False
        #: Set by the reader when it stops (done or failed): the producer then stops too.
        self.reader_gone = False

    # -- producer side, on the event loop --------------------------------------------------

    async def put(self, chunk: bytes | None) -> bool:
        """Queue ``chunk`` (None: end of blob), waiting for room; False when the reader has
        stopped (it needs nothing more)."""
        while not self.reader_gone:
            try:
                self._q.put_nowait(chunk)
                return True
            except queue.Full:
                self._space.clear()
                # The reader may have taken one between the failed put and clear().
                if not self._q.full() or self.reader_gone:
                    continue
                await self._space.wait()
        return False

    def abort(self, exc: BaseException) -> None:
        """Make the reader's next read fail with ``exc`` (an ``OSError``); never blocks:
        queued chunks are dropped to make room (they will not be used)."""
        while True:
            try:
                self._q.put_nowait(exc)
                return
            except queue.Full:
                with suppress(queue.Empty):
                    self._q.get_nowait()

    # -- reader side, on the scanning thread ---------------------------------------------

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._q.get()
            self._loop.call_soon_threadsafe(self._space.set)
            if item is None:
                self._eof = True
                return b""
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            self._buf, self._pos = item, 0
        end = len(self._buf) if size is None or size < 0 else self._pos + size
        out = self._buf[self._pos : end]
        self._pos += len(out)
        return out

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.reader_gone:
            self.reader_gone = True
            # A closed loop (RuntimeError) has nobody waiting any more.
            with suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._space.set)
        super().close()


def _facts_of_stored(
    stored: StoredImage,
    stack: StackFacts,
    ref: ImageRef,
    config: bytes,
    layers: int,
    size: int,
    *,
    scrubbed: bool,
) -> ImageFacts:
    """An image's facts as the store has them, under the reference that reached it."""
    return ImageFacts(
        image=ref,
        config=config,
        layers=layers,
        size=size,
        # A new list: the stack's is shared by every image built on it.
        packages=list(stack.packages),
        os=stack.os,
        ecosystem=stack.ecosystem,
        problems=[*stack.notes, *stored.notes],
        secrets=list(stack.secrets),
        config_scrubbed=scrubbed,
    )


def _is_scrubbed(config: bytes, digest: str) -> bool:
    """Whether a config the walk handed over is the state store's scrubbed form: every
    config is checked against its digest when fetched or read back raw, so one that does
    not hash to it came back scrubbed."""
    algorithm = split_digest(digest)[0]  # sha256 or sha512: the walk checked it already
    return compute_digest(config, algorithm) != digest


def stored_ref(
    r: StateReader,
    digest: str,
    base: ImageRef,
    ref_text: str,
    analyzer_set: str,
    platform_key: str,
    stack_of: Callable[[str], StackFacts | None],
) -> _Stored | None:
    """A reference's result for manifest ``digest`` from the store alone, inside ``r``'s
    read transaction: the ``Walk`` an earlier crawl recorded for it (under ``analyzer_set``
    and ``platform_key``, ``""`` for every platform) and each image's facts (its stack by
    ``stack_of``). None when either is missing.

    Nothing is decoded or hashed again here: the walk was recorded from documents that
    were digest-checked and decoded when fetched, and names them by digest, so it cannot
    go stale."""
    walk = r.get_walk(digest, analyzer_set, platform_key)
    if walk is None:
        return None
    done = _Stored(RefResult(ref=ref_text, digest=digest, notes=list(walk.notes)))
    images = done.result.images
    for w in walk.images:
        stored = r.get_image(w.digest, analyzer_set)
        stack = None if stored is None else stack_of(stored.stack)
        if stored is None or stack is None:
            return None
        ref = msgspec.structs.replace(
            base, digest=w.digest, index_digest=w.index_digest, platform=w.platform
        )
        images.append(
            _facts_of_stored(stored, stack, ref, w.config, w.layers, w.size, scrubbed=bool(w.scrub))
        )
        done.layers += len(stored.layers)
    done.manifests = walk.manifests
    done.images = len(images)
    return done


class _Stored:
    """A reference resolved from the state store alone, and the cache hits that took
    (counted only if the resolution is used)."""

    __slots__ = ("images", "layers", "manifests", "result")

    def __init__(self, result: RefResult) -> None:
        self.result = result
        self.manifests = 0
        self.images = 0
        self.layers = 0


class _RegistryBlobs:
    """One repository's documents as the walk reads them (``walk.BlobSource``), through the
    crawler's document cache."""

    def __init__(self, crawler: Crawler, repo: str) -> None:
        self.crawler = crawler
        self.repo = repo

    async def document(self, desc: Descriptor, what: str) -> bytes:
        return await self.crawler._child(self.repo, desc)

    async def config(self, desc: Descriptor) -> bytes:
        return await self.crawler._config(self.repo, desc)


# ---------------------------------------------------------------------------------------
# The crawler


class Crawler:
    """Resolves and analyses registry references for one registry (see the module doc).

    ``store``/``writer`` are optional: without them nothing is cached across runs (within
    the crawler's life, concurrent images still share a layer's single download).

    ``executor`` runs the layer scanners (one thread per blob being downloaded) and the
    analyzers: give it more threads than the registry's concurrency limit (with every
    stream holding a thread, a short pool would only slow the crawl, never stall it; see
    ``_stream_layer``).
    """

    def __init__(
        self,
        registry: Registry,
        analyzers: Sequence[Analyzer],
        *,
        store: StateStore | None = None,
        writer: StateWriter | None = None,
        platform: Platform | None = None,
        executor: Executor,
    ) -> None:
        if (store is None) != (writer is None):
            raise ValueError("store and writer come together")
        self.registry = registry
        self.analyzers = list(analyzers)
        self.analyzer_set = analyzer_set_hash(self.analyzers)
        self.store = store
        self.writer = writer
        self.platform = platform
        #: The platform filter as recorded walks are keyed ("" for every platform).
        self._platform_key = "" if platform is None else str(platform)
        self.counters = Counters()
        self._executor = executor
        #: Shared by every layer this crawler scans at once: what buffered readers hold.
        self._budget = Budget(layers.DEFAULT_BUFFER_BUDGET)
        self._layers: dict[tuple[str, str], asyncio.Future[layers.LayerFacts]] = {}
        #: Recent layers' facts (an LRU, bounded: see ``_MAX_LAYERS``), so that the images
        #: of a registry's common base layers do not read and decode them again.
        self._layer_facts: dict[str, layers.LayerFacts] = {}
        #: What each stack of layers holds, by ``stack_key``: images built on the same
        #: layers assemble once, and a warm crawl decodes each stack once.
        self._stacks: dict[str, StackFacts] = {}
        #: Layers whose blob is broken (digest, compression, tar): the answer stands for
        #: the rest of the crawl.
        self._broken: dict[str, layers.LayerError] = {}
        self._images: dict[str, asyncio.Future[ImageFacts]] = {}
        self._docs: dict[str, asyncio.Future[bytes]] = {}
        self._pending_writes: set[Future[object]] = set()

    # -- state-store helpers ----------------------------------------------------------------

    def _doc(self, digest: str) -> tuple[bytes, str] | None:
        if self.store is None:
            return None
        doc = self.store.get_doc(digest)
        return None if doc is None else (doc.data, doc.media_type)

    def _remember_doc(self, digest: str, data: bytes, media_type: str) -> None:
        if self.store is not None:
            self._submit(self.store.put_doc, digest, Document(media_type=media_type, data=data))

    def _submit(self, fn: Callable[..., object], *args: object) -> None:
        """Queue a cache write without waiting (``flush`` waits for them)."""
        if self.writer is None:
            return
        fut = self.writer.submit(fn, *args)
        self._pending_writes.add(fut)
        fut.add_done_callback(self._write_done)

    def _write_done(self, fut: Future[object]) -> None:
        self._pending_writes.discard(fut)
        if not fut.cancelled() and (exc := fut.exception()) is not None:
            # Once: on a full disk every write fails alike, and the crawl goes on without
            # caching (``crawl_done`` gives the count).
            if not self.counters.state_writes_failed:
                _log.warning("state_write_failed", error=str(exc))
            self.counters.state_writes_failed += 1

    async def flush(self) -> None:
        """Wait until every cache write queued so far is committed."""
        if self.writer is not None:
            await self.writer.call(lambda: None)

    # -- references ------------------------------------------------------------------------

    async def scan_ref(self, repo: str, reference: str, *, ref_text: str) -> RefResult:
        """Resolve ``repo:reference`` (tag or digest) and analyse its platform images.

        Never raises for a bad image: failures are in the result (cancellation propagates).
        """
        is_digest = reference.startswith("sha256:")
        base = ImageRef(
            ref=ref_text,
            registry=self.registry.host,
            repository=repo,
            tag=None if is_digest else reference,
        )
        result = RefResult(ref=ref_text)
        store = self.store
        tag_key: str | None = None
        known: str | None = None  # the digest the store has for this tag
        head_digest: str | None = None
        if store is not None:
            if is_digest:
                with store.reading() as r:
                    done = self._from_store(r, reference, base, ref_text)
                if done is not None:
                    return self._count(done)
            else:
                # A warm crawl's common case: the tag still points where it did, and every
                # document and the image facts are in the store. All of it is read in the
                # one transaction that reads the tag entry (before the HEAD, which may not
                # run inside a transaction), and used if the HEAD agrees.
                tag_key = f"{self.registry.host}/{repo}:{reference}"
                with store.reading() as r:
                    entry = r.get_tag(tag_key)
                    if entry is not None:
                        known = entry.digest
                        done = self._from_store(r, known, base, ref_text)
                if known is not None:
                    try:
                        head = await self.registry.head_manifest(repo, reference)
                    except ProtocolError:
                        head = None  # no Docker-Content-Digest on HEAD: the GET hashes the body
                    except (RegistryError, SourceError) as exc:
                        result.failures.append(
                            problem_of(exc, stage="manifest", image=base, ref=ref_text)
                        )
                        return result
                    if head is not None:
                        if head.digest == known and done is not None:
                            return self._count(done)
                        head_digest = head.digest
                        if head_digest != known:
                            # Moved, perhaps to an image the store knows (a re-tag).
                            with store.reading() as r:
                                done = self._from_store(r, head_digest, base, ref_text)
                            if done is not None:
                                self._submit(store.put_tag, tag_key, head_digest)
                                return self._count(done)
        try:
            data, media_type, digest = await self._manifest(repo, reference, is_digest, head_digest)
        except (RegistryError, SourceError) as exc:
            result.failures.append(problem_of(exc, stage="manifest", image=base, ref=ref_text))
            return result
        result.digest = digest
        desc = Descriptor(media_type=media_type, digest=digest, size=len(data))
        walker = Walker(
            _RegistryBlobs(self, repo), partial(self._image, repo), platform=self.platform
        )
        found = await walker.walk(desc, base, data)
        result.images += found.images
        result.failures += found.failures
        result.notes += found.notes
        manifests = found.manifests
        if store is not None:
            # Only a new or moved tag is written: the entry of an unchanged one is right.
            tag = tag_key if tag_key is not None and digest != known else None
            walk = self._clean_walk(result, manifests)
            if walk is not None:
                self._submit(store.put_walk, walk, tag)  # one transaction for both
            elif tag is not None:
                self._submit(store.put_tag, tag, digest)
        return result

    def _count(self, done: _Stored) -> RefResult:
        c = self.counters
        c.manifests_cached += done.manifests
        c.images_cached += done.images
        c.layers_cached += done.layers
        return done.result

    async def _manifest(
        self, repo: str, reference: str, is_digest: bool, head_digest: str | None
    ) -> tuple[bytes, str, str]:
        # ``head_digest``: what a HEAD of the tag just said it points to.
        known = reference if is_digest else head_digest
        if known is not None:
            cached = self._doc(known)
            if cached is not None:
                self.counters.manifests_cached += 1
                return cached[0], cached[1], known
        m = await self.registry.get_manifest(repo, reference)
        self.counters.manifests_fetched += 1
        self._remember_doc(m.digest, m.data, m.media_type)
        return m.data, m.media_type, m.digest

    # -- a reference resolved from the state store alone ------------------------------------

    def _from_store(
        self, r: StateReader, digest: str, base: ImageRef, ref_text: str
    ) -> _Stored | None:
        """``scan_ref``'s result for manifest ``digest`` from the store alone (``stored_ref``
        under this crawler's analyzers and platform filter, its stacks cached). None when
        something is missing: the walk (``walk.Walker``) then does it (from the document
        cache and the network), and ``scan_ref`` records it when it is clean."""
        return stored_ref(
            r, digest, base, ref_text, self.analyzer_set, self._platform_key,
            lambda key: self._stack(r, key),
        )  # fmt: skip

    def _clean_walk(self, result: RefResult, manifests: int) -> Walk | None:
        """What to record of a walk for the next crawl: only a clean one (no failure, every
        image complete, so every image's facts are in the store)."""
        if result.digest is None or result.failures:
            return None
        if not all(f.complete for f in result.images):
            return None
        assert self.store is not None  # only called with a store
        return Walk(
            digest=result.digest,
            analyzers=self.analyzer_set,
            platform=self._platform_key,
            manifests=manifests,
            images=[
                WalkImage(
                    digest=f.image.digest or "",
                    index_digest=f.image.index_digest,
                    platform=f.image.platform,
                    config=f.config,
                    layers=f.layers,
                    size=f.size,
                    # The store scrubs the configs that are not yet in its form.
                    scrub=self.store.scrub_version if f.config_scrubbed else "",
                )
                for f in result.images
            ],
            notes=list(result.notes),
        )

    async def _child(self, repo: str, desc: Descriptor) -> bytes:
        async def fetch() -> tuple[bytes, str]:
            m = await self.registry.get_manifest(repo, desc.digest)
            self.counters.manifests_fetched += 1
            return m.data, m.media_type

        return await self._once(desc.digest, fetch, manifest=True)

    async def _once(
        self, digest: str, fetch: Callable[[], Awaitable[tuple[bytes, str]]], *, manifest: bool
    ) -> bytes:
        """A document by digest: from the cache, from a fetch already in flight, or fetched
        (and cached before it leaves the in-flight map, so it is fetched once per crawl)."""
        cached = self._doc(digest)
        if cached is not None:
            self.counters.manifests_cached += manifest
            return cached[0]
        while (waiting := self._docs.get(digest)) is not None:
            got = await _join(waiting)
            if got is not None:
                self.counters.manifests_cached += manifest
                return got
        fut = asyncio.get_running_loop().create_future()
        self._docs[digest] = fut
        try:
            data, media_type = await fetch()
            if self.writer is not None and self.store is not None:
                doc = Document(media_type=media_type, data=data)
                await self.writer.call(self.store.put_doc, digest, doc)
        except BaseException as exc:
            _settle(fut, exc)
            del self._docs[digest]
            raise
        fut.set_result(data)
        del self._docs[digest]
        return data

    async def _image(self, repo: str, image: Image) -> ImageFacts:
        """A platform image's facts (the walk's hook): analysed once however many tags of
        the crawl reach its digest at once."""
        desc, ref = image.desc, image.ref
        while (waiting := self._images.get(desc.digest)) is not None:
            shared = await _join(waiting)
            if shared is not None:
                return msgspec.structs.replace(shared, image=ref, problems=list(shared.problems))
        fut = asyncio.get_running_loop().create_future()
        self._images[desc.digest] = fut
        try:
            facts = await self._analyse(
                repo, desc.digest, image.manifest, image.view, image.config, ref
            )
        except BaseException as exc:
            _settle(fut, exc)
            del self._images[desc.digest]
            raise
        fut.set_result(facts)
        # Later tags of the same digest use the state store (or analyse again without one).
        del self._images[desc.digest]
        # The facts were made for the first reference that reached this digest.
        return msgspec.structs.replace(facts, image=ref, problems=list(facts.problems))

    async def _config(self, repo: str, desc: Descriptor) -> bytes:
        async def fetch() -> tuple[bytes, str]:
            buf = bytearray()
            blob = self.registry.get_blob(repo, desc.digest, max_bytes=MAX_CONFIG_BYTES)
            async with aclosing(blob) as chunks:
                async for chunk in chunks:
                    buf += chunk
            if len(buf) != desc.size:
                raise SourceError(
                    f"config {desc.digest}: {len(buf)} bytes, descriptor says {desc.size}"
                )
            return bytes(buf), desc.media_type

        return await self._once(desc.digest, fetch, manifest=False)

    async def _analyse(
        self,
        repo: str,
        digest: str,
        manifest: ManifestView,
        view: ImageConfig,
        config: bytes,
        ref: ImageRef,
    ) -> ImageFacts:
        # Without a store, every config is as fetched.
        scrubbed = self.store is not None and _is_scrubbed(config, manifest.config.digest)
        if self.store is not None:
            with self.store.reading() as r:
                stored = r.get_image(digest, self.analyzer_set)
                stack = None if stored is None else self._stack(r, stored.stack)
            if stored is not None and stack is not None:
                self.counters.images_cached += 1
                self.counters.layers_cached += len(stored.layers)
                size = sum(d.size for d in manifest.layers)
                return _facts_of_stored(
                    stored, stack, ref, config, len(manifest.layers), size, scrubbed=scrubbed
                )
        facts, diff_ids = begin_facts(ref, config, manifest, view)
        facts.config_scrubbed = scrubbed
        if not facts.complete:
            return facts
        size = facts.size
        got = await asyncio.gather(
            *(self._layer(repo, d, i) for d, i in zip(manifest.layers, diff_ids, strict=True)),
            return_exceptions=True,
        )
        scanned: list[layers.LayerFacts] = []
        for desc, item in zip(manifest.layers, got, strict=True):
            if isinstance(item, asyncio.CancelledError):
                raise item
            if isinstance(item, BaseException):
                if not isinstance(item, RegistryError | layers.LayerError | SourceError | OSError):
                    raise item
                stage = "blob" if isinstance(item, RegistryError) else "layer"
                facts.problems.append(layer_problem(item, desc.digest, stage=stage))
                facts.complete = False
            else:
                scanned.append(item)
        if not facts.complete:
            return facts
        stack, new = await self._assemble(scanned)
        facts.packages = list(stack.packages)
        facts.problems += stack.notes
        facts.os, facts.ecosystem = stack.os, stack.ecosystem
        facts.secrets = list(stack.secrets)
        self.counters.images_analysed += 1
        if self.store is not None:
            assert self.writer is not None
            if new:
                await self.writer.call(self.store.put_stack, stack)
            stored = StoredImage(
                image=ref,
                layers=[d.digest for d in manifest.layers],
                stack=stack.key,
                size=size,
                scanned_at=_now(),
                analyzers=self.analyzer_set,
            )
            # Awaited: a later tag of this digest must find it once it leaves ``_images``.
            await self.writer.call(self.store.put_image, stored)
        return facts

    async def _assemble(self, scanned: list[layers.LayerFacts]) -> tuple[StackFacts, bool]:
        """What a stack of layers holds: assembled once per stack and crawl (True: just
        now; the store does not have it yet, unless an earlier crawl stored it)."""
        key = stack_key(self.analyzer_set, [layer.digest for layer in scanned])
        known = _recall(self._stacks, key)
        if known is not None:
            return known, False
        # Off the loop: a Debian base takes a few hundred microseconds, but an image with
        # tens of thousands of npm or Java packages would hold up every transfer. Two
        # images of one new stack at once may both assemble it: the same answer.
        done = ImageFacts(image=ImageRef(ref=""), config=b"", layers=0, size=0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, assemble, scanned, self.analyzers, done)
        stack = StackFacts(
            key=key,
            os=done.os,
            ecosystem=done.ecosystem,
            packages=done.packages,
            notes=done.problems,
            analyzers=self.analyzer_set,
            secrets=done.secrets,
        )
        _remember(self._stacks, key, stack, _MAX_STACKS)
        return stack, True

    def _stack(self, r: StateReader, key: str) -> StackFacts | None:
        """A stack's facts: from memory, or read (once per crawl) in ``r``'s transaction."""
        stack = _recall(self._stacks, key)
        if stack is None:
            stack = r.get_stack(key)
            if stack is not None:
                _remember(self._stacks, key, stack, _MAX_STACKS)
        return stack

    async def _layer(self, repo: str, desc: Descriptor, diff_id: str) -> layers.LayerFacts:
        digest = desc.digest
        known = _recall(self._layer_facts, digest)
        if known is not None:
            self.counters.layers_cached += 1
            return _checked(known, diff_id)
        broken = self._broken.get(digest)
        if broken is not None:
            raise broken
        # In flight by digest and diff_id: an image whose config names the blob wrongly
        # waits for nobody's answer but its own.
        flight = (digest, diff_id)
        while (waiting := self._layers.get(flight)) is not None:
            shared = await _join(waiting)
            if shared is not None:
                self.counters.layers_cached += 1
                return shared
        if self.store is not None:
            stored = self.store.get_layer(digest, self.analyzer_set)
            if stored is not None:
                self.counters.layers_cached += 1
                if _small(stored):
                    _remember(self._layer_facts, digest, stored, _MAX_LAYERS)
                return _checked(stored, diff_id)
        fut = asyncio.get_running_loop().create_future()
        self._layers[flight] = fut
        try:
            facts = await self._stream_layer(repo, desc, diff_id)
            if self.writer is not None and self.store is not None:
                # Awaited: once this layer leaves the in-flight map, the store must have it.
                await self.writer.call(self.store.put_layer, facts)
        except BaseException as exc:
            if isinstance(exc, _BLOB_FAULTS):
                # The blob is what it is: every image that shares it gets this answer,
                # without fetching it again in this crawl. (Not a wrong diff_id or media
                # type: those are one image's descriptor's, another image may name the blob
                # rightly.)
                self._broken[digest] = exc
            _settle(fut, exc)
            del self._layers[flight]
            raise
        if _small(facts) or self.store is None:
            # Without a store, memory is the only cache: keep it, however large.
            _remember(self._layer_facts, digest, facts, _MAX_LAYERS)
        fut.set_result(facts)
        del self._layers[flight]
        self.counters.layers_fetched += 1
        return facts

    async def _stream_layer(self, repo: str, desc: Descriptor, diff_id: str) -> layers.LayerFacts:
        loop = asyncio.get_running_loop()
        pipe = _BlobPipe(loop)

        def scan() -> layers.LayerFacts:
            try:
                return layers.scan_layer(
                    cast(BinaryIO, pipe),
                    media_type=desc.media_type,
                    digest=desc.digest,
                    diff_id=diff_id,
                    analyzers=self.analyzers,
                    analyzer_set=self.analyzer_set,
                    size=desc.size,
                    budget=self._budget,
                )
            finally:
                pipe.close()

        # The scanning thread starts with the first chunk, so that only streams holding
        # one of the registry's connection slots hold a thread: a pool at least as large as
        # the registry's concurrency can then never be filled by scanners whose producers
        # wait for a slot held by a producer whose scanner waits for a thread.
        work: asyncio.Future[layers.LayerFacts] | None = None
        transport: RegistryError | None = None
        try:
            async with aclosing(self.registry.get_blob(repo, desc.digest)) as chunks:
                async for chunk in chunks:
                    if work is None:
                        work = loop.run_in_executor(self._executor, scan)
                    self.counters.bytes_fetched += len(chunk)
                    if not await pipe.put(chunk):
                        break  # the scanner stopped (a bad layer): it has its answer
            if work is None:  # an empty blob: let the scanner say what is wrong with it
                work = loop.run_in_executor(self._executor, scan)
            await pipe.put(None)
        except RegistryError as exc:
            if work is None:
                raise
            transport = exc
            pipe.abort(_Aborted(f"blob transfer failed: {exc}"))
        except BaseException:
            # Cancelled: unblock the scanning thread so that it ends by itself; its result
            # (the abort) is of no interest to anyone.
            pipe.abort(_Aborted("crawl cancelled"))
            if work is not None:
                work.add_done_callback(_discard)
            raise
        try:
            scanned = await work
        except (layers.LayerError, OSError) as exc:
            # A digest mismatch is seen by both sides; the registry's error says it first
            # (and carries ``retryable``).
            if transport is not None:
                raise transport from exc
            raise
        if transport is not None:
            raise transport
        return scanned


_K = TypeVar("_K")
_V = TypeVar("_V")
#: Faults of a blob's own bytes: every image naming the blob by this digest meets them.
_BLOB_FAULTS = (layers.DigestMismatch, layers.CorruptLayer, layers.LayerTooLarge)
#: Layers' facts and assembled stacks kept in memory by a crawler (the store has them all).
#: A Debian rootfs's facts take ~280 KB decoded (and 0.4 ms to decode again from the store),
#: an assembled stack a few tens of KB: the bounds keep a crawl's memory flat. A layer whose
#: facts have more entries than ``_MAX_LAYER_ENTRIES`` (a node_modules of 50,000 files) is
#: not kept in memory at all: it is read from the store when another image needs it.
_MAX_LAYERS: Final = 64
_MAX_LAYER_ENTRIES: Final = 20_000
_MAX_STACKS: Final = 256


def _remember(cache: dict[_K, _V], key: _K, value: _V, limit: int) -> None:
    """Put ``key`` in a dict used as an LRU cache of at most ``limit`` entries."""
    if len(cache) >= limit:
        del cache[next(iter(cache))]
    cache[key] = value


def _recall(cache: dict[_K, _V], key: _K) -> _V | None:
    """``key``'s value in an LRU cache (``_remember``), now the most recently used."""
    value = cache.pop(key, None)
    if value is not None:
        cache[key] = value
    return value


def _checked(facts: layers.LayerFacts, diff_id: str) -> layers.LayerFacts:
    """Cached facts for an image whose config names ``diff_id`` for the layer: the blob's
    bytes were checked against the diff_id they hash to; another one is this image's
    fault (told without fetching the blob again)."""
    if facts.diff_id is not None and facts.diff_id != diff_id:
        raise layers.DiffIdMismatch(
            f"uncompressed layer hashes to {facts.diff_id}, config diff_id is {diff_id}"
        )
    return facts


def _small(facts: layers.LayerFacts) -> bool:
    """Whether a layer's facts are small enough to keep in memory (see the bounds above)."""
    return len(facts.present) + len(facts.symlinks) + len(facts.found) <= _MAX_LAYER_ENTRIES


async def _join(fut: asyncio.Future[_T]) -> _T | None:
    """Await work another task started; None when that task was cancelled while this one
    was not (the caller then does the work itself). Errors are shared: the image that
    waited on a bad layer reports the same error."""
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if fut.cancelled() and task is not None and not task.cancelling():
            return None
        raise


def _settle(fut: asyncio.Future[_T], exc: BaseException) -> None:
    """End shared work that failed: cancelled stays cancelled (waiters redo it), an error is
    handed to the waiters (and marked retrieved, so none is logged when nobody waits)."""
    if isinstance(exc, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(exc)
        fut.exception()


def _discard(fut: asyncio.Future[layers.LayerFacts]) -> None:
    if not fut.cancelled():
        fut.exception()


def _now() -> datetime:
    return datetime.now(UTC)
