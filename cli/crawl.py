"""``regsweep crawl``: every repository, tag and platform of a registry → NDJSON findings.

The walk: ``/v2/_catalog`` (paginated; skipped when every ``--repo`` is a literal name),
``--repo``/``--exclude-repo`` globs, ``tags/list`` per repository (paginated) narrowed by
``--tag`` globs and ``--max-tags`` (the first N in lexical order), then every tag
through ``crawler.crawl.Crawler`` (every index child, all platforms unless ``--platform``).
Repositories and tags are worked on by ``--concurrency`` asyncio workers on uvloop; the
registry client allows as many requests in flight to the host.

A registry that cannot be reached, or refuses its catalog while ``--repo`` has globs (or is
absent), stops the crawl before any output with exit 2 and a message saying to name the
repositories with ``--repo``.

Records are written per tag, as one block: the tag's ``error``, ``vulnerability``,
``misconfiguration`` and ``image`` records (``package`` with ``--packages``); a failure
confined to one tag or image is an ``error`` record with ``stage`` and ``retryable`` and the
crawl goes on. A ``summary`` record comes last, counting the work of this run.

Resuming: with ``-o FILE`` the output is a ``state.ResumableOutput``: tags finished are
checkpointed (file fsynced, then one LMDB transaction) every ``--checkpoint-every`` seconds.
After ``kill -9`` the same command (same URL, filters, platform, ``--max-tags`` and output
path) truncates the file to the last checkpoint and skips the tags recorded there: no record
is written twice and none is lost. SIGINT/SIGTERM cancel the crawl, checkpoint what was
finished, and exit 130/143 **without** a summary (the summary means "the crawl is
complete"; the rerun that finishes writes it). Without ``-o`` records go to stdout and a
rerun starts over (the state store still spares it every download).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import aiohttp
import click
import structlog
from yarl import URL

from regsweep.cli.common import DB_OPTION, registry_access, run_async, usage_error
from regsweep.cli.match import _Writer
from regsweep.cli.scan import SEVERITIES, _scan_image, _Tally
from regsweep.crawler import state
from regsweep.crawler.auth import Credentials
from regsweep.crawler.crawl import (
    Crawler,
    Failure,
    RefResult,
    RegistryRef,
    failure_of,
    is_glob,
    select,
)
from regsweep.crawler.oci import Platform, SourceError
from regsweep.crawler.registry import AuthError, Registry, RegistryError
from regsweep.crawler.scan import default_analyzers
from regsweep.crawler.sources import parse_platform
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import (
    SEVERITY_RANK,
    DbInfo,
    ErrorRecord,
    LayerCounts,
    Severity,
    SummaryRecord,
)

log = structlog.get_logger()

#: Exit codes of a crawl stopped by a signal (the shell convention, 128 + signal number).
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RegistryOptions:
    """How to reach a registry: TLS, credentials, concurrency."""

    def __init__(
        self,
        *,
        insecure: bool = False,
        ca_file: Path | None = None,
        credentials: Credentials | None = None,
        concurrency: int = 8,
    ) -> None:
        self.insecure = insecure
        self.ca_file = ca_file
        self.credentials = credentials
        self.concurrency = concurrency

    def registry(self, session: aiohttp.ClientSession, url: str) -> Registry:
        """A ``Registry`` for ``url`` with these options."""
        return Registry(
            session,
            url,
            credentials=self.credentials,
            ca_file=self.ca_file,
            insecure=self.insecure,
            concurrency=self.concurrency,
        )


def read_credentials(username: str | None, password_stdin: bool) -> Credentials | None:
    """``--username`` with ``--password-stdin`` (both or neither); usage error otherwise."""
    if (username is None) != (not password_stdin):
        usage_error("--username and --password-stdin go together")
    if username is None:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        usage_error("--password-stdin: no password on standard input")
    return Credentials(username=username, password=password)


def render(
    result: RefResult,
    matcher: Matcher,
    tally: _Tally,
    *,
    packages: bool,
    trusted_bases: tuple[str, ...],
) -> bytes:
    """One reference's records (errors first, then each image's), as NDJSON bytes."""
    buf = BytesIO()
    writer = _Writer(buf)
    write_failures(writer, result.failures, tally)
    for note in result.notes:
        log.info("source_note", ref=result.ref, note=note)
    for facts in result.images:
        _scan_image(
            facts,
            matcher,
            writer,
            tally,
            packages=packages,
            trusted_bases=trusted_bases,
            table_rows=None,
        )
    writer.flush()
    return buf.getvalue()


def write_failures(writer: _Writer, failures: Iterable[Failure], tally: _Tally) -> None:
    """``error`` records for ``failures``."""
    for f in failures:
        writer.write(
            ErrorRecord(
                image=f.image,
                ref=f.ref,
                stage=f.stage,
                error=f.error,
                message=f.message,
                retryable=f.retryable,
            )
        )
        tally.errors += 1


#: The per-block tallies an output keeps across runs; ``max_severity`` is a maximum.
_TALLY_FIELDS = ("images", "packages", "vulnerabilities", "misconfigurations", "errors")


def block_counts(tally: _Tally) -> dict[str, int]:
    """What one block of records adds to the crawl's tallies (``ResumableOutput.tally``)."""
    counts = {k: getattr(tally, k) for k in _TALLY_FIELDS}
    counts["max_severity"] = tally.worst
    return counts


def work_counts(crawler: Crawler | None) -> dict[str, int]:
    """This run's work so far (layers, bytes), for the crawl's tallies."""
    if crawler is None:
        return {}
    c = crawler.counters
    return {
        "layers_fetched": c.layers_fetched,
        "layers_cached": c.layers_cached,
        "bytes": c.bytes_fetched,
    }


def summary_record(
    started: datetime,
    counts: Mapping[str, int],
    index: AdvisoryIndex,
    *,
    repositories: int = 0,
    tags: int = 0,
    runs: int = 1,
) -> SummaryRecord:
    """The last record of a crawl, from its tallies over all its runs."""
    meta = index.meta
    return SummaryRecord(
        started_at=started,
        finished_at=datetime.now(UTC).replace(microsecond=0),
        repositories=repositories,
        tags=tags,
        images=counts.get("images", 0),
        layers=LayerCounts(
            fetched=counts.get("layers_fetched", 0), cached=counts.get("layers_cached", 0)
        ),
        bytes=counts.get("bytes", 0),
        packages=counts.get("packages", 0),
        vulnerabilities=counts.get("vulnerabilities", 0),
        misconfigurations=counts.get("misconfigurations", 0),
        errors=counts.get("errors", 0),
        runs=runs,
        db=DbInfo(
            built_at=meta.built_at,
            sources={k: v.records for k, v in (meta.ingest.sources if meta.ingest else {}).items()},
        ),
    )


# ---------------------------------------------------------------------------------------
# Single references (``regsweep scan HOST/REPO:TAG``)


def scan_registry_refs(
    refs: Sequence[RegistryRef],
    options: RegistryOptions,
    *,
    state_path: Path,
    platform: Platform | None,
) -> list[RefResult]:
    """Resolve and analyse registry references (concurrently), results in ``refs`` order.

    Uses the state store at ``state_path``, so a layer seen before is not downloaded.
    """
    try:
        store = state.StateStore(state_path)
    except state.StateError as exc:
        usage_error(str(exc))
    writer = state.StateWriter(store)
    hosts = {r.url for r in refs}
    # A thread per blob in flight: the registries' concurrency limits summed, plus analyzers.
    executor = ThreadPoolExecutor(max_workers=options.concurrency * len(hosts) + 2)
    registries: dict[str, Registry] = {}
    crawlers: dict[str, Crawler] = {}

    async def one(session: aiohttp.ClientSession, ref: RegistryRef) -> RefResult:
        try:
            # One client per registry: its concurrency limit then holds for all the refs.
            registry = registries.get(ref.url)
            if registry is None:
                registry = registries[ref.url] = options.registry(session, ref.url)
            # First, on its own: requests build their URLs from the scheme the ping settles
            # (``--insecure`` may fall back to plain HTTP).
            await registry.ping()
        except (RegistryError, ValueError) as exc:
            return RefResult(
                ref=ref.text, failures=[failure_of(exc, ref=ref.text, stage="auth", image=None)]
            )
        # One crawler per registry too: references scanned at once that share a layer
        # share its one download and analysis.
        crawler = crawlers.get(ref.url)
        if crawler is None:
            crawler = crawlers[ref.url] = Crawler(
                registry, default_analyzers(), store=store, writer=writer, platform=platform,
                executor=executor,
            )  # fmt: skip
        try:
            return await crawler.scan_ref(ref.repository, ref.reference, ref_text=ref.text)
        finally:
            await crawler.flush()

    async def main() -> list[RefResult]:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            return list(await asyncio.gather(*(one(session, r) for r in refs)))

    try:
        return run_async(main())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        writer.close()
        store.close()


# ---------------------------------------------------------------------------------------
# Outputs


class _StdoutOutput:
    """Records straight to stdout: nothing to resume (the same calls as ResumableOutput)."""

    resumed = False
    images = 0
    records = 0
    runs = 1

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.started_at = datetime.now(UTC).replace(microsecond=0)
        self._counts: dict[str, int] = {}

    def tally(self, live: Mapping[str, int] | None = None) -> dict[str, int]:
        out = dict(self._counts)
        state.add_counts(out, live or {})
        return out

    def is_done(self, image: str) -> bool:
        return False

    def write_image(
        self, image: str, lines: Iterable[bytes], counts: Mapping[str, int] | None = None
    ) -> bool:
        for line in lines:
            self._out.write(line)
        self._out.flush()
        state.add_counts(self._counts, counts or {})
        return True

    def checkpoint(self, live: Mapping[str, int] | None = None) -> None:
        self._out.flush()

    def complete(self, last: Iterable[bytes] = ()) -> None:
        self.write_image("", last)

    def close(self, live: Mapping[str, int] | None = None) -> None:
        self._out.flush()


class _Fatal(Exception):
    """The crawl cannot start (a refused catalog …): a usage-level error."""


class _Crawl:
    """One ``regsweep crawl`` run (see the module doc)."""

    def __init__(
        self,
        *,
        url: str,
        options: RegistryOptions,
        repos: tuple[str, ...],
        exclude: tuple[str, ...],
        tags: tuple[str, ...],
        platform: Platform | None,
        max_tags: int | None,
        output: Path | None,
        store: state.StateStore,
        index: AdvisoryIndex,
        packages: bool,
        trusted_bases: tuple[str, ...],
        checkpoint_every: float,
        cid: str,
    ) -> None:
        self.url, self.options = url, options
        self.repo_globs, self.exclude, self.tag_globs = repos, exclude, tags
        self.platform, self.max_tags, self.output = platform, max_tags, output
        self.store, self.index = store, index
        self.packages, self.trusted_bases = packages, trusted_bases
        self.checkpoint_every = checkpoint_every
        self.cid = cid
        self.tally = _Tally()
        #: The worst severity over the whole crawl (every run of it), for ``--fail-on``.
        self.worst = 0
        self.matcher = Matcher(index)
        self._crawler: Crawler | None = None
        self.repositories = 0
        self.tags = 0
        self.skipped = 0
        self.stopped_by: signal.Signals | None = None
        self._last_checkpoint = time.monotonic()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in _SIGNAL_EXIT:
            loop.add_signal_handler(sig, self._stop, sig, task)
        writer = state.StateWriter(self.store)
        # One thread per blob in flight (at most the registry's concurrency) plus analyzers.
        executor = ThreadPoolExecutor(max_workers=self.options.concurrency + 2)
        out: state.ResumableOutput | _StdoutOutput | None = None
        try:
            self.tally.progress.start()
            async with aiohttp.ClientSession(auto_decompress=False) as session:
                registry = self.options.registry(session, self.url)
                crawler = Crawler(
                    registry,
                    default_analyzers(),
                    store=self.store,
                    writer=writer,
                    platform=self.platform,
                    executor=executor,
                )
                self._crawler = crawler
                try:
                    repos, catalog_failure = await self._repositories(registry)
                    if self.output is None:
                        out = _StdoutOutput(sys.stdout.buffer)
                    else:
                        out = await writer.call(
                            state.ResumableOutput, self.store, self.cid, self.output
                        )
                    if out.resumed:
                        log.info("crawl_resumed", images_done=out.images, records=out.records)
                    if catalog_failure is not None and not out.is_done("\0catalog"):
                        await self._emit(writer, out, "\0catalog", [catalog_failure])
                    self.repositories = len(repos)
                    await self._walk(registry, crawler, writer, out, repos)
                    await crawler.flush()
                except asyncio.CancelledError:
                    if self.stopped_by is None:
                        raise
                    task.uncancel()
                    if out is not None:
                        await writer.call(out.close, work_counts(crawler))
                    log.warning("crawl_interrupted", signal=self.stopped_by.name)
                    return _SIGNAL_EXIT[self.stopped_by]
                # The whole crawl's: a resumed crawl counts on from its earlier runs.
                counts = await writer.call(out.tally, work_counts(crawler))
                self.worst = counts.get("max_severity", 0)
                summary = summary_record(
                    out.started_at,
                    counts,
                    self.index,
                    repositories=self.repositories,
                    tags=self.tags,
                    runs=out.runs,
                )
                await writer.call(out.complete, [_line(summary)])
                c = crawler.counters
                log.info(
                    "crawl_done", tags=self.tags, skipped_as_done=self.skipped,
                    manifests_fetched=c.manifests_fetched, manifests_cached=c.manifests_cached,
                    images_analysed=c.images_analysed, images_cached=c.images_cached,
                    layers_fetched=c.layers_fetched, layers_cached=c.layers_cached,
                )  # fmt: skip
                return 0
        finally:
            self.tally.progress.stop()
            for sig in _SIGNAL_EXIT:
                loop.remove_signal_handler(sig)
            executor.shutdown(wait=False, cancel_futures=True)
            writer.close()

    def _stop(self, sig: signal.Signals, task: asyncio.Task[int]) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
            task.cancel()

    async def _repositories(self, registry: Registry) -> tuple[list[str], Failure | None]:
        try:
            # First, on its own: requests build their URLs from the scheme the ping settles
            # (``--insecure`` may fall back to plain HTTP).
            await registry.ping()
        except RegistryError as exc:
            raise _Fatal(f"cannot reach the registry {registry.host}: {exc}") from exc
        if self.repo_globs and not any(is_glob(g) for g in self.repo_globs):
            return select(list(dict.fromkeys(self.repo_globs)), (), self.exclude), None
        names: list[str] = []
        failure = None
        try:
            # A loop, not a comprehension: the pages before a failure are kept.
            async for name in registry.catalog():
                names.append(name)  # noqa: PERF401
        except AuthError as exc:
            raise _Fatal(
                f"{exc}: name each repository with --repo REPOSITORY (literal names need no "
                "catalog)"
            ) from exc
        except RegistryError as exc:
            if not names:
                raise _Fatal(f"cannot list the repositories of {registry.host}: {exc}") from exc
            failure = failure_of(exc, ref=registry.host, stage="catalog", image=None)
        return select(names, self.repo_globs, self.exclude), failure

    async def _walk(
        self,
        registry: Registry,
        crawler: Crawler,
        writer: state.StateWriter,
        out: state.ResumableOutput | _StdoutOutput,
        repos: list[str],
    ) -> None:
        jobs: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        for repo in repos:
            jobs.put_nowait((repo, None))

        async def list_tags(repo: str) -> None:
            key = f"{repo}\0tags"
            try:
                names = [t async for t in registry.tags(repo)]
            except RegistryError as exc:
                if not out.is_done(key):
                    ref = f"{registry.host}/{repo}"
                    failure = failure_of(exc, ref=ref, stage="tags", image=None)
                    await self._emit(writer, out, key, [failure])
                return
            # Sorted: registries list tags in storage order, and --max-tags must be stable.
            chosen = sorted(select(names, self.tag_globs, ()))
            if self.max_tags is not None:
                chosen = chosen[: self.max_tags]
            for tag in chosen:
                self.tags += 1
                if out.is_done(f"{repo}:{tag}"):
                    self.skipped += 1
                else:
                    jobs.put_nowait((repo, tag))

        async def scan_tag(repo: str, tag: str) -> None:
            ref = f"{registry.host}/{repo}:{tag}"
            try:
                result = await crawler.scan_ref(repo, tag, ref_text=ref)
            except Exception as exc:  # noqa: BLE001 - a bug on one image must not end a crawl
                log.exception("crawl_internal_error", ref=ref)
                result = RefResult(
                    ref=ref, failures=[failure_of(exc, ref=ref, stage="crawl", image=None)]
                )
            tally = _Tally(self.tally.progress)
            try:
                block = render(
                    result,
                    self.matcher,
                    tally,
                    packages=self.packages,
                    trusted_bases=self.trusted_bases,
                )
            except Exception as exc:  # noqa: BLE001 - nor must a bug in matching or checks
                log.exception("render_internal_error", ref=ref)
                tally = _Tally(self.tally.progress)
                failure = failure_of(exc, ref=ref, stage="match", image=None)
                block = render(
                    RefResult(ref=ref, failures=[failure]),
                    self.matcher,
                    tally,
                    packages=self.packages,
                    trusted_bases=self.trusted_bases,
                )
            self.tally.add(tally)
            await writer.call(
                out.write_image,
                f"{repo}:{tag}",
                block.splitlines(keepends=True),
                block_counts(tally),
            )
            await self._maybe_checkpoint(writer, out)

        async def worker() -> None:
            while True:
                repo, tag = await jobs.get()
                try:
                    if tag is None:
                        await list_tags(repo)
                    else:
                        await scan_tag(repo, tag)
                finally:
                    jobs.task_done()

        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(worker()) for _ in range(self.options.concurrency)]
            await jobs.join()
            for w in workers:
                w.cancel()

    async def _emit(
        self,
        writer: state.StateWriter,
        out: state.ResumableOutput | _StdoutOutput,
        key: str,
        failures: list[Failure],
    ) -> None:
        buf = BytesIO()
        w = _Writer(buf)
        tally = _Tally(self.tally.progress)
        write_failures(w, failures, tally)
        w.flush()
        self.tally.add(tally)
        lines = buf.getvalue().splitlines(keepends=True)
        await writer.call(out.write_image, key, lines, block_counts(tally))

    async def _maybe_checkpoint(
        self, writer: state.StateWriter, out: state.ResumableOutput | _StdoutOutput
    ) -> None:
        now = time.monotonic()
        if now - self._last_checkpoint >= self.checkpoint_every:
            self._last_checkpoint = now
            await writer.call(out.checkpoint, work_counts(self._crawler))


def _line(record: SummaryRecord) -> bytes:
    buf = BytesIO()
    w = _Writer(buf)
    w.write(record)
    w.flush()
    return buf.getvalue()


@click.command(name="crawl")
@DB_OPTION
@click.argument("url")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="GLOB",
    help="Repositories to crawl (repeatable; literal names skip the catalog).",
)
@click.option(
    "--exclude-repo",
    "exclude",
    multiple=True,
    metavar="GLOB",
    help="Repositories to leave out (repeatable).",
)
@click.option(
    "--tag", "tags", multiple=True, metavar="GLOB", help="Tags to crawl (repeatable; default all)."
)
@click.option(
    "--platform",
    default="all",
    show_default=True,
    metavar="OS/ARCH[/VARIANT]|all",
    help="Only this platform of each index.",
)
@click.option(
    "--max-tags",
    type=click.IntRange(min=1),
    help="At most N tags per repository (the first N in lexical order).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Workers, and requests in flight to the registry.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default="-",
    help="NDJSON output file (resumable); default stdout (not resumable).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=state.default_path,
    show_default="$REGSWEEP_STATE or ~/.cache/regsweep/state.lmdb",
    help="The crawl state store.",
)
@registry_access
@click.option("--packages", "with_packages", is_flag=True, help="Also write package records.")
@click.option(
    "--trusted-base",
    multiple=True,
    metavar="REGISTRY|DIGEST",
    help="Trusted base images (repeatable).",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    help="Exit 1 when a finding at or above this severity exists.",
)
@click.option(
    "--checkpoint-every",
    type=float,
    default=2.0,
    hidden=True,
    help="Seconds between output checkpoints.",
)
def crawl_command(
    db: Path,
    url: str,
    repos: tuple[str, ...],
    exclude: tuple[str, ...],
    tags: tuple[str, ...],
    platform: str,
    max_tags: int | None,
    concurrency: int,
    output: Path,
    state_path: Path,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    with_packages: bool,
    trusted_base: tuple[str, ...],
    fail_on: str | None,
    checkpoint_every: float,
) -> None:
    """Crawl a registry: URL is [http://|https://]HOST[:PORT]."""
    try:
        wanted = None if platform == "all" else parse_platform(platform)
    except SourceError as exc:
        usage_error(str(exc))
    credentials = read_credentials(username, password_stdin)
    options = RegistryOptions(
        insecure=insecure, ca_file=ca_file, credentials=credentials, concurrency=concurrency
    )
    parsed = URL(url if "://" in url else "https://" + url)
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.path not in ("", "/"):
        usage_error(f"not a registry URL: {url!r} (expected [http://|https://]HOST[:PORT])")
    out_path = None if str(output) == "-" else output.resolve()
    cid = state.crawl_id(
        url,
        *sorted(repos),
        "\0",
        *sorted(exclude),
        "\0",
        *sorted(tags),
        "\0",
        platform,
        str(max_tags),
        str(out_path),
    )
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as exc:
        usage_error(str(exc))
    try:
        store = state.StateStore(state_path)
    except state.StateError as exc:
        usage_error(str(exc))
    with index, store:
        run = _Crawl(
            url=url,
            options=options,
            repos=repos,
            exclude=exclude,
            tags=tags,
            platform=wanted,
            max_tags=max_tags,
            output=out_path,
            store=store,
            index=index,
            packages=with_packages,
            trusted_bases=trusted_base,
            checkpoint_every=checkpoint_every,
            cid=cid,
        )
        try:
            code = run_async(run.run())
        except (_Fatal, state.StateError) as exc:
            usage_error(str(exc))
    if code == 0 and fail_on is not None and run.worst >= SEVERITY_RANK[Severity(fail_on.upper())]:
        code = 1
    sys.exit(code)
