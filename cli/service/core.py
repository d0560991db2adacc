"""The service behind ``regsweep serve``: one asyncio loop that crawls, scans and re-judges.

Work comes from three places: a scheduler per configured registry (a crawl at start-up,
then on its interval or cron, with jitter; a failing registry backs off), a queue of scan
requests (registry push notifications, ``POST /v1/scan``), and the advisory index (when
its file changes, every stored image is judged again without registry traffic).

Every piece of work ends in a *unit*: the records of one reference, compared image by image
with the findings the state store says were reported last (``matcher.changes``).
An image seen for the first time, or whose tag now names another digest, is written whole;
an image judged again writes only what changed, new ``vulnerability`` records and
``resolved`` ones; ``error`` records are always written, and never retire a finding. A
unit's lines are appended to the current output part and its findings stored with the
part's new committed position in ONE state-store transaction, then the part writer is told
it may complete the part. After ``kill -9`` at any point the part is cut back to the
stored position, and the work after it (whose findings were not stored either) is done
again by the next crawl: no record lost, none doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import structlog

from regsweep.cli.common import summary_record
from regsweep.cli.service import config as cfg
from regsweep.cli.service.metrics import Metrics
from regsweep.cli.service.parts import Cursor, PartWriter
from regsweep.crawler import state
from regsweep.crawler.crawl import (
    CrawlFatal,
    RegistryCrawl,
    RegistryOptions,
    Visit,
    connect,
    stored_refs,
)
from regsweep.crawler.images import Crawler, RefResult
from regsweep.crawler.oci import Platform, parse_platform
from regsweep.crawler.outfile import OutputError
from regsweep.crawler.refs import select
from regsweep.crawler.registry import RegistryError
from regsweep.matcher import changes
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.facts import problem_of
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.judge import Policy, Tally, judge_all
from regsweep.matcher.match import Matcher
from regsweep.matcher.output.ndjson import encode_lines
from regsweep.matcher.records import (
    ErrorRecord,
    ImageRecord,
    Package,
    Record,
    ResolvedRecord,
    ResolveReason,
)

log = structlog.get_logger("regsweep.serve")

#: How often the index file is looked at for a replacement.
INDEX_POLL = 2.0
#: A failing registry is tried again after this, doubling up to its schedule's period.
BACKOFF_FIRST = 30.0
#: Scan requests worked on at once, and waiting at most (then refused: 503, or counted
#: as ``queue_full`` notifications; the next crawl finds those images).
SCAN_WORKERS = 4
MAX_QUEUE = 10_000
#: Fault injection for the tests (``REGSWEEP_SERVE_UNIT_DELAY``, seconds): a wait between
#: writing a unit's lines and committing them, the window that ``kill -9`` must survive.
UNIT_DELAY = float(os.environ.get("REGSWEEP_SERVE_UNIT_DELAY") or 0)


class ScanJob(msgspec.Struct, frozen=True, array_like=True):
    """One image to scan: a configured registry's ``repo:tag`` (or ``repo@digest``)."""

    registry: str
    repository: str
    reference: str
    #: From a push notification: a tag not found yet is asked for again for a few seconds
    #: (Distribution notifies before it writes the tag).
    push: bool = False

    @property
    def key(self) -> str:
        """What deduplicates requests: the same image asked for twice is scanned once."""
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


class Mark(msgspec.Struct, frozen=True, array_like=True):
    """What every commit stores beside the findings (``StateStore.put_findings``'s
    cursor): the output position, and the index every stored image was last judged
    against in full (a rematch cut off by a stop is done again at start-up)."""

    cursor: Cursor | None = None
    judged: str | None = None


class RegistryStatus(msgspec.Struct, kw_only=True):
    """What ``GET /v1/crawls`` says of one registry."""

    registry: str
    running: bool = False
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_run_at: datetime | None = None
    tags: int = 0
    images: int = 0


class _Registry:
    def __init__(self, conf: cfg.RegistryConfig) -> None:
        self.conf = conf
        self.lock = asyncio.Lock()  # never two crawls of one registry at once
        self.status = RegistryStatus(registry=conf.name)
        self.platform: Platform | None = (
            None if conf.platform == "all" else parse_platform(conf.platform)
        )


def _now() -> datetime:
    return datetime.now(UTC)


class Service:
    """``regsweep serve``: see the module doc. ``run()`` until SIGTERM or SIGINT."""

    def __init__(self, conf: cfg.Config, *, token: str | None) -> None:
        self.conf = conf
        self.token = token
        self.metrics = Metrics()
        self.registries = {r.name: _Registry(r) for r in conf.registry}
        self.policy = Policy(
            packages=conf.output.packages, trusted_bases=tuple(conf.output.trusted_bases)
        )
        self.index: AdvisoryIndex | None = None
        self.matcher: Matcher | None = None
        self._index_stat: tuple[int, int, int, int] | None = None
        self.store: state.StateStore | None = None
        self.writer: state.StateWriter | None = None
        self.parts: PartWriter | None = None
        self._cursor: Cursor | None = None
        #: The identity of the index file every stored image was last judged against in
        #: full (``Mark.judged``), and of the one loaded now.
        self._judged: str | None = None
        self._index_id: str | None = None
        #: When the newest committed result of each reference was read (``RefResult.
        #: read_at``): an older one arriving later (a crawl that read a tag before a push
        #: scan of it committed) is dropped rather than written over the newer.
        self._read_at: dict[str, float] = {}
        #: Why the service stopped producing output (state store failed): exit 1.
        self.broken: str | None = None
        self._commit_lock = asyncio.Lock()
        self._rematch_lock = asyncio.Lock()
        self.index_ready = asyncio.Event()
        self.queue: asyncio.Queue[ScanJob] = asyncio.Queue()
        #: Jobs waiting, and running, by key (both kept in the queue file until done); a
        #: request for a running one is done again after it (``again``).
        self.pending: dict[str, ScanJob] = {}
        self.running: dict[str, ScanJob] = {}
        self.again: set[str] = set()
        self._queue_file = Path(f"{conf.paths.state}.queue")
        self._journal_lines = 0
        self._severities: dict[str, Counter[str]] = {}
        #: Stored image keys by manifest digest (``GET /v1/images/{digest}``), and back.
        self._digests: dict[str, set[str]] = {}
        self._digest_by_key: dict[str, str] = {}
        #: Stored image keys by reference (a tag's platforms).
        self._keys_of_ref: dict[str, set[str]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._in_flight: set[asyncio.Future[None]] = set()
        self._stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    # -- life cycle ---------------------------------------------------------------------------

    async def run(
        self, *, serve: Callable[[Service], Awaitable[Callable[[], Awaitable[None]]]]
    ) -> int:
        """Open everything, start the work and the HTTP API (``serve`` starts it and returns
        its cleanup), and run until a signal; then finish or set aside work in flight."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            self._open()
            stop_http = await serve(self)
        except (state.StateError, OutputError, OSError) as exc:
            # Another service on the same output, a port in use …: one line, and nothing
            # left open.
            log.error("service_cannot_start", error=str(exc))
            self._close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            return 2
        self._session = aiohttp.ClientSession(auto_decompress=False)
        try:
            self._start_tasks()
            await self._stopping.wait()
            log.info("service_stopping", queued=len(self.pending), running=len(self.running))
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # Units whose lines are written finish their commit before anything closes.
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            await stop_http()
            await self._session.close()
            self._close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("service_stopped")
        return 0 if self.broken is None else 1

    def _stop(self, sig: signal.Signals) -> None:
        log.info("signal", signal=sig.name)
        self._stopping.set()

    def _open(self) -> None:
        paths = self.conf.paths
        paths.state.parent.mkdir(parents=True, exist_ok=True)
        self.store = state.StateStore(paths.state, scrub=SCRUB)
        self.writer = state.StateWriter(self.store)
        out = self.conf.output
        parts = PartWriter(
            paths.output,
            max_bytes=cfg.parse_size(out.max_bytes),
            max_seconds=cfg.parse_duration(out.max_age),
            compress=out.compression == "zstd",
        )
        raw = self.store.output_cursor()
        mark = Mark() if raw is None else msgspec.json.decode(raw, type=Mark)
        self._cursor, self._judged = mark.cursor, mark.judged
        parts.open(self._cursor)
        self.parts = parts
        self._load_findings()
        self._load_index()
        self._load_queue()

    def _close(self) -> None:
        if self.parts is not None:
            try:
                self.parts.close()
            except OutputError as exc:
                log.error("output_close_failed", error=str(exc))
        if self.writer is not None:
            self.writer.close()
        if self.store is not None:
            self.store.close()
        if self.index is not None:
            self.index.close()

    def _start_tasks(self) -> None:
        spawn = self._tasks.append
        for reg in self.registries.values():
            spawn(asyncio.create_task(self._schedule(reg), name=f"crawl {reg.conf.name}"))
        for i in range(SCAN_WORKERS):
            spawn(asyncio.create_task(self._scan_worker(), name=f"scan {i}"))
        spawn(asyncio.create_task(self._watch_index(), name="index watch"))
        spawn(asyncio.create_task(self._resume_rematch(), name="resume rematch"))
        spawn(asyncio.create_task(self._tick_parts(), name="parts"))
        if self.conf.feeds.update_interval is not None:
            spawn(asyncio.create_task(self._update_feeds(), name="feeds"))

    @property
    def ready(self) -> dict[str, bool]:
        """What ``GET /readyz`` checks: the index loaded, the state store and output open."""
        return {
            "index": self.matcher is not None,
            "state": self.store is not None and self.store.bypassed is None,
            "output": self.parts is not None and self.broken is None,
        }

    # -- the advisory index -------------------------------------------------------------------

    def _stat_index(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.conf.paths.db)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _load_index(self) -> bool:
        """Open the index file as it is now; False (and the previous index kept) when it
        is missing or refused."""
        seen = self._stat_index()
        if seen is None:
            if self._index_stat is None:
                log.warning("index_missing", db=str(self.conf.paths.db))
            return False
        try:
            index = AdvisoryIndex(self.conf.paths.db)
        except AdvisoryIndexError as exc:
            log.error("index_refused", db=str(self.conf.paths.db), error=str(exc))
            self._index_stat = seen  # the same broken file is not tried every poll
            return False
        old, self.index, self.matcher = self.index, index, Matcher(index)
        self._index_stat = seen
        self._index_id = "{1}:{2}:{3}".format(*seen)
        # Judging runs on the loop thread between awaits, so nothing holds the old index.
        if old is not None:
            old.close()
        meta = index.meta
        log.info("index_loaded", db=str(self.conf.paths.db), built_at=meta.built_at)
        self.index_ready.set()
        return True

    async def _watch_index(self) -> None:
        while True:
            await asyncio.sleep(INDEX_POLL)
            seen = self._stat_index()
            if seen is None or seen == self._index_stat:
                continue
            try:
                await self.reload_index(reason="index_changed")
            except Exception:  # noqa: BLE001 - the watch must outlive a bug in one rematch
                self.metrics.errors.labels("rematch").inc()
                log.exception("rematch_internal_error")

    async def reload_index(self, *, reason: str) -> None:
        """Open the index file again (under the commit lock: no commit holds the old one
        then) and, if stored images were judged against another, judge them again."""
        async with self._commit_lock:
            loaded = self._load_index()
        if loaded and self._judged is not None and self._judged != self._index_id:
            await self.rematch(reason=reason)
        elif loaded and self._judged is None:
            # Nothing judged before (a new state store): this is the index of record.
            self._judged = self._index_id

    async def _update_feeds(self) -> None:
        interval = cfg.parse_duration(self.conf.feeds.update_interval or "6h")
        try:
            age = time.time() - os.stat(self.conf.paths.db).st_mtime
        except OSError:
            age = float("inf")
        delay = max(0.0, interval - age)
        while True:
            await asyncio.sleep(delay)
            try:
                await self._run_db_update()
            except Exception:  # noqa: BLE001 - the next update must still come
                self.metrics.errors.labels("feeds").inc()
                log.exception("feed_update_internal_error")
            delay = interval

    async def _run_db_update(self) -> None:
        feeds = self.conf.feeds
        argv = [
            sys.executable,
            "-m",
            "regsweep.cli",
            "db",
            "update",
            "--db",
            str(self.conf.paths.db),
        ]
        for url in feeds.urls:
            argv += ["--from", url]
        if feeds.mirror:
            argv += ["--mirror", feeds.mirror]
        for eco in feeds.ecosystems:
            argv += ["--ecosystem", eco]
        log.info("feed_update_start")
        started = time.monotonic()
        # A process of its own: a rebuild holds hundreds of MB for a minute, which the
        # service need not keep; the new file is picked up by the index watch.
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await proc.communicate()
        except asyncio.CancelledError:
            proc.terminate()
            await proc.wait()
            raise
        said = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        if proc.returncode == 0:
            log.info("feed_update_done", seconds=round(time.monotonic() - started, 1), said=said)
        else:
            self.metrics.errors.labels("feeds").inc()
            log.error("feed_update_failed", status=proc.returncode, said=said)
        # Picked up now rather than at the next poll.
        seen = self._stat_index()
        if seen is not None and seen != self._index_stat:
            await self.reload_index(reason="feeds_updated")

    # -- findings and output -----------------------------------------------------------------

    def _load_findings(self) -> None:
        assert self.store is not None
        for key, found in self.store.findings():
            self._count(key, found)

    def _count(self, key: str, found: changes.ImageFindings | None) -> None:
        old = self._severities.pop(key, None)
        if old is not None:
            for severity, n in old.items():
                self.metrics.findings.labels(severity).dec(n)
        digest = self._digest_by_key.pop(key, None)
        if digest is not None:
            self._digests[digest].discard(key)
        ref = key.partition("\0")[0]
        if found is None:
            self._keys_of_ref.get(ref, set()).discard(key)
            return
        self._keys_of_ref.setdefault(ref, set()).add(key)
        counts = Counter(a.severity.value for _, a in found.records())
        self._severities[key] = counts
        for severity, n in counts.items():
            self.metrics.findings.labels(severity).inc(n)
        if found.digest is not None:
            self._digests.setdefault(found.digest, set()).add(key)
            self._digest_by_key[key] = found.digest

    def keys_of_digest(self, digest: str) -> list[str]:
        """The stored images (``ref`` + platform keys) whose manifest is ``digest``."""
        return sorted(self._digests.get(digest, ()))

    async def unit(
        self, result: RefResult, written: Counter[str], *, judged_again: bool = False
    ) -> Tally:
        """Judge one reference's result, write what changed and store its findings (see the
        module doc); ``written`` counts the records written, by kind. Never raises for bad
        output: an output failure is logged and counted, and the unit is done again by the
        next crawl."""
        assert self.matcher is not None
        judgement = judge_all(result.failures, result.images, self.matcher, self.policy)
        if not judged_again:
            self.metrics.images_scanned.inc(len(result.images))
        packages = {changes.image_key(f.image): f.packages for f in result.images}
        # Shielded: once a unit's lines are written its commit must happen, or a stop
        # between the two would cut them back (no loss, but the work is done again).
        commit = asyncio.ensure_future(
            self._commit(result.ref, result.read_at, judgement.records, packages, written)
        )
        self._in_flight.add(commit)
        commit.add_done_callback(self._in_flight.discard)
        await asyncio.shield(commit)
        return judgement.tally

    async def _commit(
        self,
        ref: str,
        read_at: float,
        records: Sequence[Record],
        packages: Mapping[str, Sequence[Package]],
        written: Counter[str],
    ) -> None:
        assert self.store is not None and self.writer is not None and self.parts is not None
        async with self._commit_lock:
            if self.broken is not None:
                return
            newest = self._read_at.get(ref)
            if read_at and newest is not None and newest > read_at:
                # A result read earlier than one already written (a crawl's, of a tag a
                # push scan read after it): writing it would put the older image back.
                log.info("result_superseded", ref=ref)
                return
            assert self.index is not None
            known = self.index.has_advisory  # under the lock: no index swap meanwhile
            at = _now()
            out: list[Record] = []
            updates: dict[str, changes.ImageFindings | None] = {}
            out.extend(r for r in records if getattr(r, "image", None) is None)
            groups = changes.group_by_image(records)
            if groups and not any(
                isinstance(r, ErrorRecord) and (r.image is None or r.image.platform is None)
                for r in records
            ):
                # The tag was read whole: a platform stored before and not in it now has
                # left its index.
                for key in sorted(self._keys_of_ref.get(ref, set()) - set(groups)):
                    out.extend(self._retire(key, updates, at))
            for key, group in groups.items():
                previous = self.store.get_findings(key)
                change = changes.changes(
                    previous, group, known=known, at=at, packages=packages.get(key)
                )
                image = next((r.image for r in group if isinstance(r, ImageRecord)), None)
                if image is None:
                    # Not read: its error records, and what was found before stays.
                    out.extend(group)
                    continue
                whole = previous is None or previous.digest != image.digest
                out.extend(group if whole else [*change.new, *_errors(group)])
                out.extend(change.resolved)
                current = change.current
                if current is None and previous is None:
                    # Stored even without findings: the image is then known as reported,
                    # and the next crawl writes nothing for it.
                    current = changes.ImageFindings(
                        fingerprint=changes.fingerprint(group) or "", image=image
                    )
                if current is not None:
                    updates[key] = current
            if out or updates:
                try:
                    cursor = await self._write(out, updates)
                except OutputError as exc:
                    # Cut back by the part writer: nothing of the unit is kept, and the
                    # next crawl does it again.
                    self._output_failed(exc)
                    return
                if cursor is None:
                    return
                for key, found in updates.items():
                    self._count(key, found)
                for r in out:
                    kind = str(r.__struct_config__.tag)
                    written[kind] += 1
                    self.metrics.records.labels(kind).inc()
                    if isinstance(r, ErrorRecord):
                        self.metrics.errors.labels(r.stage).inc()
            if read_at:
                self._read_at[ref] = max(read_at, newest or 0.0)

    def _retire(
        self, key: str, updates: dict[str, changes.ImageFindings | None], at: datetime
    ) -> list[Record]:
        """A ``resolved`` record (``image_gone``) for each finding stored for ``key``, whose
        image is gone; its findings are deleted with the commit."""
        assert self.store is not None
        previous = self.store.get_findings(key)
        updates[key] = None
        if previous is None:
            return []
        return [
            ResolvedRecord(image=previous.image, package=pkg, advisory=adv,
                           reason=ResolveReason.IMAGE_GONE, resolved_at=at)
            for pkg, adv in previous.records()
        ]  # fmt: skip

    async def retire_refs(self, refs: Iterable[str], written: Counter[str]) -> None:
        """Retire every stored image of ``refs`` (tags a complete crawl no longer found)."""
        refs = sorted(refs)
        async with self._commit_lock:
            if self.broken is not None:
                return
            at = _now()
            out: list[Record] = []
            updates: dict[str, changes.ImageFindings | None] = {}
            for ref in refs:
                for key in sorted(self._keys_of_ref.get(ref, ())):
                    out.extend(self._retire(key, updates, at))
            if not updates:
                return
            try:
                if await self._write(out, updates) is None:
                    return
            except OutputError as exc:
                self._output_failed(exc)
                return
            for key in updates:
                self._count(key, None)
            written["resolved"] += len(out)
            self.metrics.records.labels("resolved").inc(len(out))
            log.info("tags_gone", tags=len(refs), resolved=len(out))

    async def _write(
        self, out: Sequence[Record], updates: Mapping[str, changes.ImageFindings | None]
    ) -> Cursor | None:
        """Append ``out`` to the part and store ``updates`` with the new position in one
        transaction; then the part may be completed. None when the state store failed:
        the service stops producing output (see ``_broken``)."""
        assert self.store is not None and self.writer is not None and self.parts is not None
        cursor = self.parts.write(b"".join(encode_lines(out)))
        try:
            if UNIT_DELAY:
                await asyncio.sleep(UNIT_DELAY)
            mark = Mark(cursor=cursor, judged=self._judged)
            await self.writer.call(self.store.put_findings, updates, msgspec.json.encode(mark))
            if self.store.bypassed is not None:
                raise state.StateError(self.store.bypassed)
        except Exception as exc:  # noqa: BLE001 - any failure here is the same failure
            self._broken(f"the state store failed: {exc}")
            return None
        self._cursor = cursor
        try:
            # In a thread: completing a part (fsync, zstd) takes up to a quarter second.
            await asyncio.to_thread(self.parts.committed, cursor)
        except OutputError as exc:
            self._output_failed(exc)  # the part is completed at a later tick
        return cursor

    def _broken(self, why: str) -> None:
        """The lines just written are in the part but their findings and position are not
        stored: nothing may follow them (a later commit's position would cover them, and
        they would be written again after a restart). Stop, exit 1 (systemd restarts the
        service), and let the restart cut the part back to the stored position."""
        self.broken = why
        self.metrics.errors.labels("state").inc()
        log.error("service_broken", error=why)
        self._stopping.set()

    def _output_failed(self, exc: OutputError) -> None:
        """A write or a part's completion failed (a full disk …): the part writer has cut a
        failed write back (the unit is done again by the next crawl) and tries a failed
        completion again later; here it is counted and logged."""
        self.metrics.errors.labels("output").inc()
        log.error("output_failed", error=str(exc))

    async def _tick_parts(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            assert self.parts is not None
            async with self._commit_lock:
                try:
                    await asyncio.to_thread(self.parts.tick)
                except OutputError as exc:
                    self._output_failed(exc)
                except Exception:  # noqa: BLE001 - parts must go on being completed
                    log.exception("output_internal_error")

    async def write_summary(
        self, started: datetime, tally: Tally, written: Counter[str], **counts: int
    ) -> None:
        """A ``summary`` record for a crawl or a rematch that ended: the images and packages
        it judged, and the findings and errors it wrote (the changes, not all there are)."""
        assert self.index is not None
        summed = tally.counts()
        summed.update(
            vulnerabilities=written["vulnerability"],
            misconfigurations=written["misconfiguration"],
            errors=written["error"],
        )
        record = msgspec.structs.replace(
            summary_record(started, summed, self.index, **counts), resolved=written["resolved"]
        )
        async with self._commit_lock:
            if self.broken is not None:
                return
            try:
                if await self._write([record], {}) is not None:
                    self.metrics.records.labels("summary").inc()
            except OutputError as exc:
                self._output_failed(exc)

    # -- crawls -------------------------------------------------------------------------------

    def registry_options(self, conf: cfg.RegistryConfig) -> RegistryOptions:
        """How to reach a configured registry (credentials read now: a rotated secret is
        picked up by the next crawl)."""
        credentials, docker_config = conf.load_credentials()
        return RegistryOptions(
            insecure=conf.insecure, ca_file=conf.ca_file, credentials=credentials,
            concurrency=conf.concurrency, rate=conf.rate_limit, docker_config=docker_config,
        )  # fmt: skip

    async def _schedule(self, reg: _Registry) -> None:
        conf = reg.conf
        await self.index_ready.wait()
        while True:
            ok = await self.crawl(reg)
            st = reg.status
            assert st.last_started_at is not None
            delay = next_delay(
                conf, ok=ok, started=st.last_started_at, failures=st.consecutive_failures,
                now=_now(), rng=random,
            )  # fmt: skip
            st.next_run_at = datetime.fromtimestamp(time.time() + delay, UTC)
            await asyncio.sleep(delay)

    async def crawl(self, reg: _Registry) -> bool:
        """Crawl one registry now (waiting for a crawl of it in progress); True when it
        could be listed and walked (images that failed are error records, not a failure)."""
        conf, st = reg.conf, reg.status
        async with reg.lock:
            started, t0 = _now(), time.monotonic()
            st.running, st.last_started_at, st.next_run_at = True, started, None
            log.info("crawl_start", registry=conf.name)
            tally, written = Tally(), Counter[str]()
            outcome, error = "failed", None
            crawl: RegistryCrawl | None = None
            try:
                options = self.registry_options(conf)
                assert self.store is not None and self.writer is not None
                async with connect(
                    conf.url, options, store=self.store, writer=self.writer,
                    platform=reg.platform, session=self._session,
                ) as crawler:  # fmt: skip
                    crawl = RegistryCrawl(
                        crawler, repos=conf.repos, exclude=conf.exclude, tags=conf.tags,
                        max_tags=conf.max_tags, concurrency=conf.concurrency,
                    )  # fmt: skip
                    await crawl.start()
                    seen = _Fetched(crawler)
                    # Closed at once when the crawl is stopped: its workers must not go on
                    # (and write to the state store) after the service closed it.
                    visited: set[str] = set()
                    listed = True
                    async with contextlib.aclosing(crawl.visits()) as visits:
                        async for visit in visits:
                            if _unlisted(visit):
                                listed = False  # what was not listed is not known gone
                            visited.add(visit.result.ref)
                            tally.add(await self.unit(visit.result, written))
                            seen.count(self.metrics)
                    await crawler.flush()
                    seen.count(self.metrics)
                    if listed:
                        # Tags stored from earlier crawls and not found now are gone (or no
                        # longer crawled); images scanned by digest are not tags.
                        host = f"{crawler.registry.host}/"
                        await self.retire_refs(
                            (r for r in self._keys_of_ref
                             if r.startswith(host) and "@" not in r and r not in visited
                             and self._keys_of_ref[r]),
                            written,
                        )  # fmt: skip
                outcome = "ok"
            except (CrawlFatal, cfg.ConfigError, ValueError) as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug must not end the registry's schedule
                log.exception("crawl_internal_error", registry=conf.name)
                error = f"internal error: {type(exc).__name__}"
            except asyncio.CancelledError:
                outcome, error = "stopped", "the service stopped"
                raise
            finally:
                seconds = time.monotonic() - t0
                st.running, st.last_finished_at = False, _now()
                st.last_outcome, st.last_error = outcome, error
                self.metrics.crawls.labels(conf.name, outcome).inc()
                if crawl is not None:
                    st.tags, st.images = crawl.tags, tally.counts().get("images", 0)
                if outcome == "ok":
                    st.consecutive_failures = 0
                    st.last_success_at = st.last_finished_at
                    self.metrics.crawl_duration.labels(conf.name).observe(seconds)
                    self.metrics.last_success.labels(conf.name).set(time.time())
                    log.info(
                        "crawl_done", registry=conf.name, seconds=round(seconds, 3),
                        tags=st.tags, **tally.counts(),
                    )  # fmt: skip
                elif outcome == "failed":
                    st.consecutive_failures += 1
                    self.metrics.errors.labels("crawl").inc()
                    log.error(
                        "crawl_failed", registry=conf.name, error=error,
                        consecutive_failures=st.consecutive_failures,
                    )  # fmt: skip
                else:
                    log.warning("crawl_stopped", registry=conf.name)
            if crawl is None or outcome != "ok":
                return False
            await self.write_summary(
                started, tally, written, repositories=crawl.repositories, tags=crawl.tags
            )
            return True

    # -- scans on request ---------------------------------------------------------------------

    def request_scan(self, job: ScanJob) -> bool | None:
        """Queue a scan of ``job``; False when the same image is already waiting (it is
        scanned once), None when ``MAX_QUEUE`` are waiting. One asked for while it is being
        scanned is scanned again after: the tag may have moved since the running scan read
        it."""
        if job.key in self.pending:
            return False
        if job.key in self.running:
            self.again.add(job.key)
            return True
        if len(self.pending) >= MAX_QUEUE:
            return None
        self.pending[job.key] = job
        self._journal(["+", job])
        self.queue.put_nowait(job)
        self.metrics.queue_depth.set(self.queue.qsize())
        log.info("scan_queued", ref=job.key)
        return True

    def wanted(self, conf: cfg.RegistryConfig, repository: str, tag: str | None) -> bool:
        """Whether a configured registry's crawl would cover ``repository`` (and ``tag``)."""
        if not select([repository], conf.repos, conf.exclude):
            return False
        return tag is None or bool(select([tag], conf.tags, ()))

    async def _scan_worker(self) -> None:
        await self.index_ready.wait()
        while True:
            job = await self.queue.get()
            self.metrics.queue_depth.set(self.queue.qsize())
            del self.pending[job.key]
            self.running[job.key] = job
            try:
                await self.scan(job)
            except Exception:  # noqa: BLE001 - one bad request must not stop the worker
                log.exception("scan_internal_error", ref=job.key)
            except asyncio.CancelledError:
                # Stopped: the job stays in the queue file and is done after a restart.
                raise
            del self.running[job.key]
            self._journal(["-", job.key])
            if job.key in self.again:
                self.again.discard(job.key)
                self.request_scan(job)

    async def scan(self, job: ScanJob) -> None:
        """Scan one image of a configured registry and write what changed."""
        reg = self.registries[job.registry]
        conf = reg.conf
        t0 = time.monotonic()
        try:
            options = self.registry_options(conf)
        except cfg.ConfigError as exc:
            log.error("scan_failed", ref=job.key, error=str(exc))
            self.metrics.errors.labels("auth").inc()
            return
        assert self.store is not None and self.writer is not None
        async with connect(
            conf.url, options, store=self.store, writer=self.writer, platform=reg.platform,
            session=self._session,
        ) as crawler:  # fmt: skip
            sep = "@" if job.reference.startswith("sha256:") else ":"
            ref = f"{crawler.registry.host}/{job.repository}{sep}{job.reference}"
            try:
                # First, on its own: requests build their URLs from the scheme it settles.
                await crawler.registry.ping()
            except RegistryError as exc:
                result = RefResult(ref=ref, failures=[problem_of(exc, stage="auth", ref=ref)])
            else:
                read_at = time.monotonic()
                result = await crawler.scan_ref(job.repository, job.reference, ref_text=ref)
                for delay in _TAG_NOT_YET if job.push else ():
                    if not _tag_not_found(result):
                        break
                    # Distribution notifies a manifest push before it writes the tag (the
                    # handler tags after the put): the tag is there a moment later.
                    await asyncio.sleep(delay)
                    read_at = time.monotonic()
                    result = await crawler.scan_ref(job.repository, job.reference, ref_text=ref)
                result.read_at = read_at
            await self.unit(result, Counter())
            _Fetched(crawler).count(self.metrics)
        log.info(
            "scan_done", ref=job.key, images=len(result.images), failures=len(result.failures),
            seconds=round(time.monotonic() - t0, 3),
        )  # fmt: skip

    def _load_queue(self) -> None:
        """The scan requests not done when the service last stopped, from the queue
        journal (``STATE.queue``: one line per request queued, ``["+", job]``, and per
        request done, ``["-", key]``; a line cut short by ``kill -9`` is skipped)."""
        jobs: dict[str, ScanJob] = {}
        try:
            with self._queue_file.open("rb") as fh:
                for line in fh:
                    try:
                        op, arg = msgspec.json.decode(line, type=tuple[str, ScanJob | str])
                    except msgspec.DecodeError:
                        continue
                    if op == "+" and isinstance(arg, ScanJob):
                        jobs[arg.key] = arg
                    elif op == "-" and isinstance(arg, str):
                        jobs.pop(arg, None)
        except FileNotFoundError:
            pass
        self._compact_queue([])
        for job in jobs.values():
            if job.registry in self.registries:
                self.request_scan(job)

    def _journal(self, entry: list[Any]) -> None:
        # Appended, not rewritten: a burst of requests costs a line each.
        try:
            with self._queue_file.open("ab") as fh:
                fh.write(msgspec.json.encode(entry) + b"\n")
        except OSError as exc:
            log.error("queue_file_failed", path=str(self._queue_file), error=exc.strerror)
            return
        self._journal_lines += 1
        live = len(self.pending) + len(self.running)
        if self._journal_lines > 4 * live + 1024:
            self._compact_queue([*self.running.values(), *self.pending.values()])

    def _compact_queue(self, jobs: list[ScanJob]) -> None:
        """Rewrite the journal as just ``jobs`` (a temp file renamed over it)."""
        tmp = self._queue_file.with_name(self._queue_file.name + ".tmp")
        try:
            tmp.write_bytes(b"".join(msgspec.json.encode(["+", j]) + b"\n" for j in jobs))
            os.replace(tmp, self._queue_file)
        except OSError as exc:
            log.error("queue_file_failed", path=str(self._queue_file), error=exc.strerror)
            return
        self._journal_lines = len(jobs)

    # -- rematch ------------------------------------------------------------------------------

    async def rematch(self, *, reason: str) -> None:
        """Judge every stored image of the configured registries again with the current
        index (no registry traffic), each registry's tags under its platform filter."""
        assert self.store is not None
        async with self._rematch_lock:
            started, t0 = _now(), time.monotonic()
            index_id = self._index_id
            log.info("rematch_start", reason=reason)
            tally, written = Tally(), Counter[str]()
            tags = 0
            stored = [key for key, _ in self.store.tags()]
            for reg in self.registries.values():
                mine = [k for k in stored if k.startswith(f"{reg.conf.name}/")]
                for result in stored_refs(self.store, platform=reg.platform, only=mine):
                    tags += 1
                    tally.add(await self.unit(result, written, judged_again=True))
            self.metrics.rematches.inc()
            if self._index_id == index_id:
                # Stored with the summary: a rematch cut off before this is done again.
                self._judged = index_id
            await self.write_summary(started, tally, written, tags=tags)
            log.info(
                "rematch_done", reason=reason, tags=tags, seconds=round(time.monotonic() - t0, 3)
            )

    async def _resume_rematch(self) -> None:
        """At start-up: judge the stored images again if the last full judgement used
        another index (the file was replaced while stopped, or a rematch was cut off)."""
        await self.index_ready.wait()
        if self._judged is None:
            self._judged = self._index_id
        elif self._judged != self._index_id:
            await self.rematch(reason="index_changed_while_stopped")

    async def current_records(self, digest: str) -> list[Record]:
        """The records of the image ``digest`` as judged now, from the state store."""
        assert self.store is not None and self.matcher is not None
        out: list[Record] = []
        for key in self.keys_of_digest(digest):
            ref = key.partition("\0")[0]
            reg = self.registries.get(ref.partition("/")[0])
            result = stored_tag(self.store, ref, None if reg is None else reg.platform)
            if result is None:
                continue
            judgement = judge_all([], result.images, self.matcher, self.policy)
            out += [r for r in judgement.records if _digest_of(r) == digest]
            if out:
                break
        return out


def next_delay(
    conf: cfg.RegistryConfig,
    *,
    ok: bool,
    started: datetime,
    failures: int,
    now: datetime,
    rng: random.Random | Any,
) -> float:
    """Seconds until a registry's next crawl: after a crawl that worked, the next time its
    schedule fires (an interval counts from the last start; a crawl longer than it is
    followed at once) plus up to ``jitter_seconds`` at random; after ``failures`` in a row,
    ``BACKOFF_FIRST`` doubling per failure up to the schedule's period (an hour for cron),
    ±20 %."""
    schedule = conf.schedule()
    if ok:
        if isinstance(schedule, cfg.Cron):
            delay = (schedule.next_after(now) - now).total_seconds()
        else:
            delay = schedule - (now - started).total_seconds()
        return max(0.0, delay) + rng.uniform(0, conf.jitter_seconds())
    cap = 3600.0 if isinstance(schedule, cfg.Cron) else max(schedule, BACKOFF_FIRST)
    delay = min(BACKOFF_FIRST * 2 ** max(0, failures - 1), cap)
    return float(delay * rng.uniform(0.8, 1.2))


#: Waits before asking again for a tag a notification named and the registry did not have.
_TAG_NOT_YET = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def _tag_not_found(result: RefResult) -> bool:
    return not result.images and any(
        p.stage == "manifest" and p.error == "not_found" for p in result.failures
    )


def _unlisted(visit: Visit) -> bool:
    """Whether a visit is a catalog or tag list that could not be read. A repository the
    catalog names whose tag list is 404 has no tag left (Distribution after the last tag's
    manifest was deleted): that is a listing, of nothing."""
    if visit.key == "\0catalog":
        return True
    return visit.key.endswith("\0tags") and any(
        p.error != "not_found" for p in visit.result.failures
    )


def _errors(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if isinstance(r, ErrorRecord)]


def _digest_of(record: Record) -> str | None:
    image = getattr(record, "image", None)
    return None if image is None else image.digest


def stored_tag(store: state.StateStore, ref: str, platform: Platform | None) -> RefResult | None:
    """One tag's result from the store (as ``rematch`` finds it); None when not stored."""
    for result in stored_refs(store, platform=platform, only=[ref]):
        return None if result.failures else result
    return None


class _Fetched:
    """Moves a crawler's download counters onto the metrics as they grow."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.layers = self.bytes = 0

    def count(self, metrics: Metrics) -> None:
        c = self.crawler.counters
        metrics.layers_fetched.inc(c.layers_fetched - self.layers)
        metrics.bytes_fetched.inc(c.bytes_fetched - self.bytes)
        self.layers, self.bytes = c.layers_fetched, c.bytes_fetched
