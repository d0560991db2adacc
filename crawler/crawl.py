"""Crawling registries: the library behind ``regsweep crawl`` and registry ``scan``.

* ``connect(url, options, …)`` opens what a crawl of one registry needs (an HTTP session,
  the ``Registry`` client, a thread pool for the layer scanners, an ``images.Crawler``) and
  closes it all again.
* ``scan_refs(refs, options, …)`` resolves and analyses single references
  (``HOST/REPO:TAG``), concurrently, one client and crawler per registry, so that
  references sharing a layer share its one download.
* ``RegistryCrawl`` walks a whole registry: ``/v2/_catalog`` (paginated; skipped when
  every repository filter is a literal name), repository include/exclude globs,
  ``tags/list`` per repository narrowed by tag globs and ``max_tags`` (the first N in
  lexical order), then every tag through the crawler (every index child, all platforms
  unless a platform is set). ``start()`` fails with ``CrawlFatal`` when the registry cannot
  be reached or refuses its catalog while the repositories are globs; iterating
  ``visits()`` then yields one ``Visit`` per unit of work as it completes (a tag's
  ``RefResult``, or the failure of a repository's tag list or of a catalog that broke off
  part way), with ``concurrency`` workers. ``done(key)`` lets a resumed crawl skip what
  an earlier run finished; the keys are ``REPO:TAG``, ``REPO\\0tags`` and ``\\0catalog``.

Results are facts and failures only; ``matcher.judge`` turns them into records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import aiohttp
import msgspec
import structlog

from regsweep.crawler import state
from regsweep.crawler.analyze import default_analyzers
from regsweep.crawler.analyzers.interface import Analyzer
from regsweep.crawler.auth import Credentials
from regsweep.crawler.images import Crawler, RefResult, stored_ref
from regsweep.crawler.oci import Platform
from regsweep.crawler.refs import RegistryRef, is_glob, select
from regsweep.crawler.registry import AuthError, Registry, RegistryError
from regsweep.matcher.facts import Problem, problem_of
from regsweep.matcher.records import ImageRef

_log = structlog.get_logger("regsweep.crawler.crawl")


class RegistryOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach a registry: TLS, credentials, requests in flight."""

    insecure: bool = False
    ca_file: Path | None = None
    credentials: Credentials | None = None
    concurrency: int = 8
    #: Request starts per second to the host (None: only ``concurrency`` limits them).
    rate: float | None = None
    #: Whether the Docker CLI config may supply credentials when ``credentials`` is None.
    docker_config: bool = True

    def registry(self, session: aiohttp.ClientSession, url: str) -> Registry:
        """A ``Registry`` client for ``url`` with these options."""
        return Registry(
            session,
            url,
            credentials=self.credentials,
            ca_file=self.ca_file,
            insecure=self.insecure,
            concurrency=self.concurrency,
            rate=self.rate,
            use_docker_config=self.docker_config,
        )


class CrawlFatal(Exception):
    """The crawl cannot start: the registry cannot be reached, or will not list what to
    crawl. Nothing has been crawled; the message says what the user can do."""


class Visit(NamedTuple):
    """One unit of a registry crawl, done: ``key`` names it for resuming."""

    key: str
    result: RefResult


@asynccontextmanager
async def connect(
    url: str,
    options: RegistryOptions,
    *,
    store: state.StateStore | None = None,
    writer: state.StateWriter | None = None,
    platform: Platform | None = None,
    analyzers: Sequence[Analyzer] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[Crawler]:
    """A crawler of the registry at ``url`` (its client is ``crawler.registry``), with the
    state store and its writer when given (both or neither), every analyzer unless
    ``analyzers`` says, and its own HTTP session unless ``session`` is shared."""
    async with AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession(auto_decompress=False))
        # One thread per blob in flight (at most the registry's concurrency) plus the
        # analyzers' assembly: see ``Crawler`` on why the pool must outnumber the streams.
        executor = ThreadPoolExecutor(max_workers=options.concurrency + 2)
        stack.callback(executor.shutdown, wait=False, cancel_futures=True)
        crawler = Crawler(
            options.registry(session, url),
            default_analyzers() if analyzers is None else analyzers,
            store=store,
            writer=writer,
            platform=platform,
            executor=executor,
        )
        yield crawler
        await crawler.flush()


async def scan_refs(
    refs: Sequence[RegistryRef],
    options: RegistryOptions,
    *,
    store: state.StateStore | None = None,
    platform: Platform | None = None,
) -> list[RefResult]:
    """Resolve and analyse registry references concurrently; results in ``refs`` order.

    With ``store``, a layer (or image) seen before is not downloaded again. A registry that
    cannot be reached, or whose client cannot be made (a bad CA file), is a failure (stage
    ``auth``) of each of its references.
    """
    writer = None if store is None else state.StateWriter(store)
    try:
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession(auto_decompress=False))
            crawlers: dict[str, Crawler] = {}
            pinged: dict[str, asyncio.Future[Problem | None]] = {}
            #: Registries whose client could not even be made (a bad CA file …).
            unusable: dict[str, Problem] = {}

            async def ping(crawler: Crawler) -> Problem | None:
                try:
                    # First, on its own: requests build their URLs from the scheme the ping
                    # settles (``insecure`` may fall back to plain HTTP).
                    await crawler.registry.ping()
                except (RegistryError, ValueError) as exc:
                    return problem_of(exc, stage="auth")
                return None

            # One crawler per registry: its concurrency limit holds for all its refs, and
            # refs that share a layer share its one download and analysis.
            for url in dict.fromkeys(r.url for r in refs):
                try:
                    crawler = await stack.enter_async_context(
                        connect(url, options, store=store, writer=writer, platform=platform,
                                session=session)
                    )  # fmt: skip
                except (RegistryError, ValueError) as exc:
                    unusable[url] = problem_of(exc, stage="auth")
                    continue
                crawlers[url] = crawler
                pinged[url] = asyncio.ensure_future(ping(crawler))

            async def one(ref: RegistryRef) -> RefResult:
                if ref.url in unusable:
                    problem: Problem | None = unusable[ref.url]
                else:
                    problem = await asyncio.shield(pinged[ref.url])
                if problem is not None:
                    return RefResult(
                        ref=ref.text, failures=[msgspec.structs.replace(problem, ref=ref.text)]
                    )
                crawler = crawlers[ref.url]
                try:
                    return await crawler.scan_ref(ref.repository, ref.reference, ref_text=ref.text)
                finally:
                    await crawler.flush()

            return list(await asyncio.gather(*(one(r) for r in refs)))
    finally:
        if writer is not None:
            writer.close()


class RegistryCrawl:
    """A crawl of a whole registry (see the module doc)."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        repos: Sequence[str] = (),
        exclude: Sequence[str] = (),
        tags: Sequence[str] = (),
        max_tags: int | None = None,
        concurrency: int = 8,
    ) -> None:
        self.crawler = crawler
        self.registry = crawler.registry
        self.repo_globs, self.exclude, self.tag_globs = tuple(repos), tuple(exclude), tuple(tags)
        self.max_tags = max_tags
        self.concurrency = concurrency
        #: Repositories selected, tags selected, and tags skipped as done (so far).
        self.repositories = 0
        self.tags = 0
        self.skipped = 0
        self._repos: list[str] | None = None
        self._catalog_failure: Problem | None = None

    async def start(self) -> None:
        """Reach the registry and list the repositories to crawl; ``CrawlFatal`` if that
        cannot be done (a catalog that breaks off after some pages is not fatal: its
        failure is the first visit)."""
        registry = self.registry
        try:
            # First, on its own: requests build their URLs from the scheme the ping settles.
            await registry.ping()
        except RegistryError as exc:
            raise CrawlFatal(f"cannot reach the registry {registry.host}: {exc}") from exc
        if self.repo_globs and not any(is_glob(g) for g in self.repo_globs):
            self._repos = select(list(dict.fromkeys(self.repo_globs)), (), self.exclude)
        else:
            names: list[str] = []
            try:
                # A loop, not a comprehension: the pages before a failure are kept.
                async for name in registry.catalog():
                    names.append(name)  # noqa: PERF401
            except AuthError as exc:
                raise CrawlFatal(
                    f"{exc}: name each repository with --repo REPOSITORY (literal names need "
                    "no catalog)"
                ) from exc
            except RegistryError as exc:
                if not names:
                    raise CrawlFatal(
                        f"cannot list the repositories of {registry.host}: {exc}"
                    ) from exc
                self._catalog_failure = problem_of(exc, stage="catalog", ref=registry.host)
            self._repos = select(names, self.repo_globs, self.exclude)
        self.repositories = len(self._repos)

    async def visits(
        self, done: Callable[[str], bool] = lambda key: False
    ) -> AsyncGenerator[Visit, None]:
        """Every tag's result (and the listing failures) as it completes; what ``done``
        says an earlier run finished is skipped. Call ``start`` first."""
        if self._repos is None:
            raise RuntimeError("RegistryCrawl.start() first")
        if self._catalog_failure is not None and not done("\0catalog"):
            yield Visit(
                "\0catalog",
                RefResult(ref=self.registry.host, failures=[self._catalog_failure]),
            )
        jobs: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        # Bounded: a consumer slower than the workers holds them back instead of piling
        # up analysed images in memory. None ends the visits; an exception is a worker's.
        results: asyncio.Queue[Visit | BaseException | None] = asyncio.Queue(self.concurrency)
        for repo in self._repos:
            jobs.put_nowait((repo, None))

        async def worker() -> None:
            while True:
                repo, tag = await jobs.get()
                try:
                    visit = await (
                        self._list_tags(repo, jobs, done)
                        if tag is None
                        else self._scan_tag(repo, tag)
                    )
                    if visit is not None:
                        await results.put(visit)
                except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
                    await results.put(exc)
                finally:
                    jobs.task_done()

        async def closer() -> None:
            await jobs.join()
            await results.put(None)

        # Plain tasks, not a TaskGroup: this generator yields, and a TaskGroup would then
        # span the consumer's own awaits (its errors would cancel the consumer, and an
        # early ``aclose`` would surface as an exception group).
        tasks = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        tasks.append(asyncio.create_task(closer()))
        try:
            while (item := await results.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _list_tags(
        self, repo: str, jobs: asyncio.Queue[tuple[str, str | None]], done: Callable[[str], bool]
    ) -> Visit | None:
        key = f"{repo}\0tags"
        try:
            names = [t async for t in self.registry.tags(repo)]
        except RegistryError as exc:
            if done(key):
                return None
            ref = f"{self.registry.host}/{repo}"
            return Visit(key, RefResult(ref=ref, failures=[problem_of(exc, stage="tags", ref=ref)]))
        # Sorted: registries list tags in storage order, and max_tags must be stable.
        chosen = sorted(select(names, self.tag_globs, ()))
        if self.max_tags is not None:
            chosen = chosen[: self.max_tags]
        for tag in chosen:
            self.tags += 1
            if done(f"{repo}:{tag}"):
                self.skipped += 1
            else:
                jobs.put_nowait((repo, tag))
        return None

    async def _scan_tag(self, repo: str, tag: str) -> Visit:
        ref = f"{self.registry.host}/{repo}:{tag}"
        read_at = time.monotonic()
        try:
            result = await self.crawler.scan_ref(repo, tag, ref_text=ref)
        except Exception as exc:  # noqa: BLE001 - a bug on one image must not end a crawl
            _log.exception("crawl_internal_error", ref=ref)
            result = RefResult(ref=ref, failures=[problem_of(exc, stage="crawl", ref=ref)])
        result.read_at = read_at
        return Visit(f"{repo}:{tag}", result)


#: Stacks ``stored_refs`` keeps decoded between tags.
_MAX_STACKS = 256


def stored_refs(
    store: state.StateStore,
    *,
    analyzers: Sequence[Analyzer] | None = None,
    platform: Platform | None = None,
    only: Sequence[str] | None = None,
) -> Iterator[RefResult]:
    """Every tag the state store knows (or the tags ``only`` names), as a crawl would find
    it, from the store alone: no registry traffic (``regsweep rematch``). A tag whose
    images are not all in the store (it failed, or was crawled under other analyzers or
    another platform filter) is a result with one problem saying to crawl it again."""
    analyzer_set = state.analyzer_set_hash(analyzers or default_analyzers())
    platform_key = "" if platform is None else str(platform)
    stacks: dict[str, state.StackFacts | None] = {}
    if only is None:
        tags: Iterable[tuple[str, state.TagEntry]] = store.tags()
    else:
        tags = [(k, e) for k in only if (e := store.get_tag(k)) is not None]
    for key, entry in tags:
        read_at = time.monotonic()
        host, _, rest = key.partition("/")
        repository, _, tag = rest.rpartition(":")
        base = ImageRef(ref=key, registry=host, repository=repository, tag=tag)
        with store.reading() as r:

            def stack_of(k: str, r: state.StateReader = r) -> state.StackFacts | None:
                if k not in stacks:
                    if len(stacks) >= _MAX_STACKS:
                        # Bounded: a stack holds an image's packages, and a store may hold
                        # many; the tags of one build come in key order, so mostly together.
                        stacks.clear()
                    stacks[k] = r.get_stack(k)
                return stacks[k]

            done = stored_ref(r, entry.digest, base, key, analyzer_set, platform_key, stack_of)
        if done is not None:
            done.result.read_at = read_at
            yield done.result
            continue
        yield RefResult(
            ref=key,
            failures=[
                Problem(
                    stage="state", error="not_stored", ref=key, image=base, retryable=True,
                    message=f"{key}: its images are not all in the state store (it failed, or "
                    "was crawled with other analyzers or platforms): crawl it again",
                )
            ],
        )  # fmt: skip
