"""The service's scan queue: one scan per image however often it is asked for while it
waits, another after one that was running, and requests kept across a stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from regsweep.cli.service import config as cfg
from regsweep.cli.service.core import ScanJob, Service


def _service(tmp_path: Path) -> Service:
    conf = cfg.Config(
        paths=cfg.PathsConfig(
            db=tmp_path / "db.lmdb", state=tmp_path / "state.lmdb", output=tmp_path / "out"
        ),  # fmt: skip
        registry=[cfg.RegistryConfig(url="http://127.0.0.1:5000")],
    )
    return Service(conf, token=None)


JOB = ScanJob("127.0.0.1:5000", "team/app", "1.0")


def test_a_waiting_request_is_not_queued_twice_and_survives_a_restart(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    assert svc.request_scan(JOB) is True
    assert svc.request_scan(JOB) is False
    assert svc.queue.qsize() == 1
    other = ScanJob("127.0.0.1:5000", "team/app", "sha256:" + "a" * 64)
    assert svc.request_scan(other) is True
    assert other.key == "127.0.0.1:5000/team/app@sha256:" + "a" * 64
    # A new process (after a stop or kill -9) finds both in the queue file.
    again = _service(tmp_path)
    again._load_queue()
    assert sorted(again.pending) == sorted([JOB.key, other.key])


def test_a_request_for_a_running_scan_runs_it_again_after(tmp_path: Path) -> None:
    async def go() -> list[str]:
        svc = _service(tmp_path)
        scanned: list[str] = []
        release = asyncio.Event()

        async def scan(job: ScanJob) -> None:
            scanned.append(job.key)
            if len(scanned) == 1:
                await release.wait()

        svc.scan = scan  # type: ignore[method-assign]
        svc.index_ready.set()
        worker = asyncio.create_task(svc._scan_worker())
        svc.request_scan(JOB)
        while not svc.running:  # noqa: ASYNC110 - polling the service's own state
            await asyncio.sleep(0.01)
        # Pushed again while its scan runs: the tag may have moved since it was read.
        assert svc.request_scan(JOB) is True
        assert svc.request_scan(JOB) is True
        release.set()
        while len(scanned) < 2 or svc.running or svc.pending:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        saved = _service(tmp_path)
        saved._load_queue()
        assert not saved.pending  # done jobs leave the queue file
        return scanned

    assert asyncio.run(go()) == [JOB.key, JOB.key]


def test_a_scan_stopped_by_a_signal_stays_in_the_queue_file(tmp_path: Path) -> None:
    async def go() -> None:
        svc = _service(tmp_path)
        started = asyncio.Event()

        async def scan(job: ScanJob) -> None:
            started.set()
            await asyncio.sleep(3600)

        svc.scan = scan  # type: ignore[method-assign]
        svc.index_ready.set()
        worker = asyncio.create_task(svc._scan_worker())
        svc.request_scan(JOB)
        await started.wait()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(go())
    after = _service(tmp_path)
    after._load_queue()
    assert list(after.pending) == [JOB.key]


def test_the_queue_journal_skips_a_line_cut_short_and_compacts(tmp_path: Path) -> None:
    """The journal after ``kill -9`` mid-append: whole lines are replayed (a job queued and
    done is gone), the cut one skipped; loading rewrites it as the jobs left."""
    svc = _service(tmp_path)
    done = ScanJob("127.0.0.1:5000", "team/app", "2.0")
    svc.request_scan(JOB)
    svc.request_scan(done)
    svc._journal(["-", done.key])
    with svc._queue_file.open("ab") as fh:
        fh.write(b'["+",["127.0.0.1:5000","team/ap')
    again = _service(tmp_path)
    again._load_queue()
    assert list(again.pending) == [JOB.key]
    assert svc._queue_file.read_bytes().count(b"\n") == 1
