"""``regsweep crawl``: every repository, tag and platform of a registry → findings.

The walk is ``crawler.crawl.RegistryCrawl`` (catalog, repository and tag globs,
``--max-tags``, every platform unless ``--platform``), ``--concurrency`` workers on uvloop;
each tag's images are judged by ``matcher.judge`` as they come and written through the
output sink of ``--format``. A registry that cannot be reached, or refuses its catalog
while ``--repo`` has globs (or is absent), stops the crawl before any output with exit 2
and a message saying to name the repositories with ``--repo``.

Records are written per tag, as one block: the tag's ``error``, ``vulnerability``,
``misconfiguration`` and ``image`` records (``package`` with ``--packages``); a failure
confined to one tag or image is an ``error`` record with ``stage`` and ``retryable`` and the
crawl goes on. A ``summary`` record comes last, counting the work of this run.

``-o FILE`` is written as ``FILE.partial`` under a lock and renamed onto ``FILE`` when the
crawl is complete (``crawler.outfile``): a rerun never truncates the previous result, a
second crawl into the same file exits 2 before writing, and a failed write (disk full)
exits 2 with one line naming the file, the last checkpoint intact.

Resuming (NDJSON): with ``-o FILE`` the output is a ``state.ResumableOutput``: tags finished
are checkpointed (file fsynced, then one LMDB transaction) every ``--checkpoint-every``
seconds. After ``kill -9`` the same command (same URL, filters, platform, ``--max-tags`` and
output path) truncates the file to the last checkpoint and skips the tags recorded there:
no record is written twice and none is lost. SIGINT/SIGTERM cancel the crawl, checkpoint
what was finished, and exit 130/143 **without** a summary (the summary means "the crawl is
complete"; the rerun that finishes writes it). Without ``-o`` records go to stdout and a
rerun starts over (the state store still spares it every download). The document formats
(``sarif``, ``cyclonedx``, ``table``) are one document written as the crawl goes and
finished at its end (an interrupted crawl's is finished without a summary and left in
``FILE.partial``): a rerun starts them over, its downloads spared by the state store all
the same.

Findings (``matcher.changes``): the findings each image's records report are stored in the
state store by image key, for a later ``rematch --changes`` to compare with; only those of
images that changed are written (a warm crawl of an unchanged registry writes none). They
are stored with what makes their records final: a ``-o`` crawl's checkpoint (one
transaction), at the checkpoints of a crawl to stdout (after the flush), and when a
document (``sarif`` …) is complete.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

import click
import structlog

from regsweep.cli.common import (
    DB_OPTION,
    ImageProgress,
    fails,
    finding_options,
    log_judged,
    make_triage,
    now,
    output_options,
    registry_access,
    registry_options,
    run_async,
    state_option,
    summary_record,
    usage_error,
)
from regsweep.crawler import state
from regsweep.crawler.crawl import CrawlFatal, RegistryCrawl, RegistryOptions, connect
from regsweep.crawler.images import Crawler, RefResult
from regsweep.crawler.oci import Platform, SourceError, parse_platform
from regsweep.crawler.outfile import OutputBusy, OutputError, PartialFile, direct, special
from regsweep.crawler.refs import registry_url
from regsweep.matcher.changes import (
    ImageFindings,
    changes,
    fingerprint,
    group_by_image,
    image_key,
)
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.judge import Judgement, Policy, judge_all
from regsweep.matcher.match import Matcher
from regsweep.matcher.output import Format, Sink, open_sink, sink_type
from regsweep.matcher.output.ndjson import encode_lines

log = structlog.get_logger()

#: Exit codes of a crawl stopped by a signal (the shell convention, 128 + signal number).
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


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


class _StdoutOutput:
    """NDJSON straight to a stream: nothing to resume (the calls of ResumableOutput)."""

    resumed = False
    images = 0
    records = 0
    runs = 1

    def __init__(self, out: BinaryIO, store: state.StateStore) -> None:
        self._out = out
        self._store = store
        self.started_at = now()
        self._counts: dict[str, int] = {}
        #: Findings reported since they were last stored (``store_findings``).
        self._findings: dict[str, ImageFindings] = {}

    def tally(self, live: Mapping[str, int] | None = None) -> dict[str, int]:
        out = dict(self._counts)
        state.add_counts(out, live or {})
        return out

    def is_done(self, image: str) -> bool:
        return False

    def write_image(
        self,
        image: str,
        lines: Iterable[bytes],
        counts: Mapping[str, int] | None = None,
        findings: Mapping[str, ImageFindings] | None = None,
    ) -> bool:
        for line in lines:
            self._out.write(line)
        self._out.flush()
        state.add_counts(self._counts, counts or {})
        if findings:
            self._findings.update(findings)
        return True

    def store_findings(self) -> None:
        """Store the findings reported so far (on the writer thread), in one transaction."""
        if self._findings:
            self._store.put_findings(self._findings)
            self._findings = {}

    def checkpoint(self, live: Mapping[str, int] | None = None) -> None:
        self._out.flush()
        self.store_findings()

    def complete(self, last: Iterable[bytes] = ()) -> None:
        self.write_image("", last)
        self.store_findings()

    def close(self, live: Mapping[str, int] | None = None) -> None:
        self._out.flush()
        self.store_findings()

    def abandon(self) -> None:
        """Nothing to release: the stream is the caller's."""


class _DocumentOutput(_StdoutOutput):
    """A document sink (SARIF, CycloneDX, table): blocks go to the sink as records;
    ``finish`` ends the document of a complete crawl, ``close`` that of a stopped one."""

    def __init__(
        self, sink: Sink, store: state.StateStore, file: PartialFile | None = None
    ) -> None:
        super().__init__(sink.out, store)
        self.sink = sink
        #: The ``-o`` file (None: stdout), renamed into place when the document is complete.
        self.file = file
        self._ended = False
        sink.begin()

    def write_judgement(
        self, judgement: Judgement, findings: Mapping[str, ImageFindings] | None = None
    ) -> None:
        self.sink.write_many(judgement.records)
        state.add_counts(self._counts, judgement.tally.counts())
        if findings:
            self._findings.update(findings)

    def checkpoint(self, live: Mapping[str, int] | None = None) -> None:
        # A document reports nothing until it is complete: its findings are stored then.
        self._out.flush()

    def abandon(self) -> None:
        """Stop after a failed write: the partial document stays as it is."""
        self._ended = True
        if self.file is not None:
            self.file.close()

    def finish(self) -> None:
        """The crawl is complete: finish the document."""
        self._end(complete=True)

    def close(self, live: Mapping[str, int] | None = None) -> None:
        """The crawl was stopped: finish the document, saying it is incomplete."""
        self._end(complete=False)

    def _end(self, *, complete: bool) -> None:
        if self._ended:  # a signal while the finished document was being closed
            return
        self._ended = True
        self.sink.end(complete)
        if self.file is not None:
            if complete:
                self.file.commit()
            else:  # a stopped crawl's document stays beside the previous complete one
                self.file.close()
                log.warning("document_incomplete", path=str(self.file.partial))
        if complete:
            self.store_findings()


_Output = state.ResumableOutput | _StdoutOutput


class _Crawl:
    """One ``regsweep crawl`` run (see the module doc): wiring, output and signals."""

    def __init__(
        self,
        *,
        url: str,
        options: RegistryOptions,
        filters: _Filters,
        platform: Platform | None,
        store: state.StateStore,
        index: AdvisoryIndex,
        policy: Policy,
        open_output: Callable[[], _Output],
        checkpoint_every: float,
    ) -> None:
        self.url, self.options, self.filters = url, options, filters
        self.platform, self.store, self.index = platform, store, index
        self.policy = policy
        self.open_output = open_output
        self.checkpoint_every = checkpoint_every
        self.matcher = Matcher(index)
        #: The worst severity over the whole crawl (every run of it), and how many images or
        #: tags could not be read, for ``--fail-on``.
        self.worst = 0
        self.unreadable = 0
        self.stopped_by: signal.Signals | None = None
        self._crawler: Crawler | None = None
        self._last_checkpoint = time.monotonic()
        self._progress = ImageProgress()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in _SIGNAL_EXIT:
            loop.add_signal_handler(sig, self._stop, sig, task)
        writer = state.StateWriter(self.store)
        out: _Output | None = None
        try:
            self._progress.start()
            # Everything up to the last line written is inside: a signal anywhere in it
            # (the last cache writes, the summary) is a clean stop, never a traceback.
            async with connect(
                self.url, self.options, store=self.store, writer=writer, platform=self.platform
            ) as crawler:
                self._crawler = crawler
                f = self.filters
                crawl = RegistryCrawl(
                    crawler, repos=f.repos, exclude=f.exclude, tags=f.tags,
                    max_tags=f.max_tags, concurrency=self.options.concurrency,
                )  # fmt: skip
                await crawl.start()
                out = await writer.call(self.open_output)
                if out.resumed:
                    log.info("crawl_resumed", images_done=out.images, records=out.records)
                async for visit in crawl.visits(out.is_done):
                    await self._write(writer, out, visit.key, visit.result)
                await crawler.flush()
                # The whole crawl's: a resumed crawl counts on from its earlier runs.
                counts = await writer.call(out.tally, work_counts(crawler))
                self.worst = counts.get("max_severity", 0)
                self.unreadable = counts.get("unreadable", 0)
                summary = summary_record(
                    out.started_at, counts, self.index,
                    repositories=crawl.repositories, tags=crawl.tags, runs=out.runs,
                )  # fmt: skip
                # Off the terminal before a table is printed there.
                self._progress.stop()
                if isinstance(out, _DocumentOutput):
                    out.sink.write(summary)
                    await writer.call(out.finish)
                else:
                    await writer.call(out.complete, encode_lines([summary]))
                c = crawler.counters
                log.info(
                    "crawl_done", tags=crawl.tags, skipped_as_done=crawl.skipped,
                    manifests_fetched=c.manifests_fetched, manifests_cached=c.manifests_cached,
                    images_analysed=c.images_analysed, images_cached=c.images_cached,
                    layers_fetched=c.layers_fetched, layers_cached=c.layers_cached,
                    state_writes_failed=c.state_writes_failed,
                )  # fmt: skip
                return 0
        except OutputError:
            # Nothing more is written: the last checkpoint still describes the file.
            if out is not None:
                await writer.call(out.abandon)
            raise
        except asyncio.CancelledError:
            if self.stopped_by is None:
                raise
            task.uncancel()
            self._progress.stop()
            if out is not None:
                await writer.call(out.close, work_counts(self._crawler))
            log.warning("crawl_interrupted", signal=self.stopped_by.name)
            return _SIGNAL_EXIT[self.stopped_by]
        finally:
            self._progress.stop()
            for sig in _SIGNAL_EXIT:
                loop.remove_signal_handler(sig)
            writer.close()

    def _stop(self, sig: signal.Signals, task: asyncio.Task[int]) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
            task.cancel()

    async def _write(
        self, writer: state.StateWriter, out: _Output, key: str, result: RefResult
    ) -> None:
        for note in result.notes:
            log.info("source_note", ref=result.ref, note=note)
        judgement = judge_all(result.failures, result.images, self.matcher, self.policy)
        log_judged(judgement)
        for _ in result.images:
            self._progress.advance()
        findings = self._findings(result, judgement)
        if isinstance(out, _DocumentOutput):
            out.write_judgement(judgement, findings)
        else:
            lines = encode_lines(judgement.records)
            await writer.call(out.write_image, key, lines, judgement.tally.counts(), findings)
        now_ = time.monotonic()
        if now_ - self._last_checkpoint >= self.checkpoint_every:
            self._last_checkpoint = now_
            await writer.call(out.checkpoint, work_counts(self._crawler))

    def _findings(self, result: RefResult, judgement: Judgement) -> dict[str, ImageFindings]:
        """The findings to store for the images of one tag: those whose findings differ
        from what is stored (``changes``; a failed image's are left as they are)."""
        groups = group_by_image(judgement.records)
        if not groups:
            return {}
        facts = {image_key(f.image): f for f in result.images}
        at = now()
        out: dict[str, ImageFindings] = {}
        # One short read transaction for the tag, as the crawler's own reads.
        with self.store.reading() as r:
            for key, group in groups.items():
                stored = r.findings_fingerprint(key)
                if stored is not None and stored == fingerprint(group):
                    continue  # unchanged: the common case of a warm crawl, decoded no further
                image = facts.get(key)
                current = changes(
                    r.get_findings(key), group, known=self.index.has_advisory, at=at,
                    packages=None if image is None else image.packages,
                ).current  # fmt: skip
                if current is not None:
                    out[key] = current
        return out


class _Filters(NamedTuple):
    """What to crawl of the registry."""

    repos: tuple[str, ...]
    exclude: tuple[str, ...]
    tags: tuple[str, ...]
    max_tags: int | None


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
@output_options
@state_option("The crawl state store.")
@registry_access
@finding_options
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
    fmt: str,
    output: Path,
    state_path: Path,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    with_packages: bool,
    trusted_base: tuple[str, ...],
    fail_on: str | None,
    severities: str | None,
    ignore_unfixed: bool,
    ignore_file: Path | None,
    vex_files: tuple[Path, ...],
    show_suppressed: bool,
    checkpoint_every: float,
) -> None:
    """Crawl a registry: URL is [http://|https://]HOST[:PORT]. With -o FILE, an NDJSON
    crawl that was killed resumes where its last checkpoint left it."""
    try:
        wanted = None if platform == "all" else parse_platform(platform)
    except SourceError as exc:
        usage_error(str(exc))
    options = registry_options(
        insecure=insecure, ca_file=ca_file, username=username, password_stdin=password_stdin,
        concurrency=concurrency,
    )  # fmt: skip
    try:
        registry_url(url)
    except SourceError as exc:
        usage_error(str(exc))
    # Standard output, a device or a FIFO is written through (``outfile.special``): nothing to
    # replace or resume there. A file is written beside itself and put in place at the end.
    through = str(output) == "-" or special(output)
    out_path = None if through else output.resolve()
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
        # What shapes the records: a rerun with other options is another crawl (it starts
        # over instead of finishing a file written under the old ones).
        "\0",
        str(with_packages),
        *sorted(trusted_base),
        "\0",
        str(severities),
        str(ignore_unfixed),
        str(ignore_file),
        *map(str, vex_files),
        str(show_suppressed),
    )
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as exc:
        usage_error(str(exc))
    try:
        store = state.StateStore(state_path, scrub=SCRUB)
    except state.StateError as exc:
        usage_error(str(exc))

    def open_output() -> _Output:
        # After the registry answered: a crawl that cannot start writes nothing.
        if out_path is None:
            stream = direct(None if str(output) == "-" else output)
            if fmt == Format.NDJSON:
                return _StdoutOutput(stream, store)
            return _DocumentOutput(open_sink(fmt, stream), store)
        if fmt == Format.NDJSON:
            return state.ResumableOutput(store, cid, out_path)
        file = PartialFile(out_path)
        file.fh.truncate(0)  # a document is never resumed: a stopped one's is started over
        return _DocumentOutput(open_sink(fmt, file.fh), store, file)

    policy = Policy(
        packages=with_packages or sink_type(fmt).wants_packages,
        trusted_bases=trusted_base,
        triage=make_triage(
            severities=severities, ignore_unfixed=ignore_unfixed, ignore_file=ignore_file,
            vex_files=vex_files, show_suppressed=show_suppressed,
        ),
    )  # fmt: skip
    with index, store:
        run = _Crawl(
            url=url,
            options=options,
            filters=_Filters(repos, exclude, tags, max_tags),
            platform=wanted,
            store=store,
            index=index,
            policy=policy,
            open_output=open_output,
            checkpoint_every=checkpoint_every,
        )
        try:
            code = run_async(run.run())
        except (CrawlFatal, state.StateError, OutputBusy) as exc:
            usage_error(str(exc))
        except OutputError as exc:
            if out_path is None:
                usage_error(str(exc))
            resumes = fmt == Format.NDJSON
            again = "run the same command again to resume" if resumes else "run it again"
            usage_error(f"{exc}; {out_path} is as it was before this run: {again}")
    if code == 0 and fails(run.worst, fail_on, run.unreadable):
        code = 1
    sys.exit(code)
