"""Shared helpers for the benchmarks: timing, machine facts, and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from regsweep.cli import bench

# The timing loop of the package's own benchmarks (``regsweep bench``), said once.
from regsweep.matcher.benchmark import best_of as best_of

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def machine() -> str:
    """One line naming the machine the figures were measured on (as ``regsweep bench``
    names it), and the Python version."""
    return f"{bench.machine()}, Python {platform.python_version()}"


def commit() -> str:
    """The commit the working tree is at, and whether it has changes beyond it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        # RESULTS.md itself is not code: an earlier benchmark of the same run changed it.
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--",
             ".", ":(exclude)benchmarks/RESULTS.md"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes" if dirty else "")


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``name`` section of RESULTS.md, leaving the others alone."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\n{body.rstrip()}\n\n_Measured {stamp} at {commit()} on {machine()}._\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    RESULTS.write_text(text)


class PeakRss:
    """The peak resident set of a running process, from ``/proc/PID/status`` ``VmHWM``,
    read every 10 ms until it exits. (``ru_maxrss`` of a child also counts the memory of
    the process it was forked from: the benchmark's own, which may hold the layers.)
    Start it right after ``Popen`` returns, which is after the child's ``exec``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.kib = 0
        #: The largest anonymous part seen (``RssAnon``: the heap, not the mapped files: the
        #: LMDB stores' pages are page cache the kernel can take back).
        self.anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self._stop.is_set():
            try:
                text = status.read_text()
            except OSError:
                return
            m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
            if m:
                self.kib = max(self.kib, int(m.group(1)))
            m = re.search(r"^RssAnon:\s+(\d+) kB", text, re.M)
            if m:
                self.anon_kib = max(self.anon_kib, int(m.group(1)))
            self._stop.wait(0.01)

    def stop(self) -> float:
        """Stop watching; the peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.kib / 1024


class ScanRun(NamedTuple):
    """One ``regsweep scan`` process: its stdout, exit code, wall and own CPU seconds, and
    peak RSS (MB, ``VmHWM``)."""

    out: bytes
    code: int
    wall: float
    cpu: float
    rss_mb: float


def run_scan(db: Path, ref: str) -> ScanRun:
    """``regsweep scan --db DB REF`` as a user runs it, measured from outside."""
    cmd = [str(Path(sys.executable).parent / "regsweep"), "scan", "--db", str(db), ref]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = PeakRss(proc.pid)
    out = proc.stdout.read() if proc.stdout else b""
    rss = peak.stop()
    # wait4: this child's own rusage (RUSAGE_CHILDREN would mix in every earlier child).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    return ScanRun(out, os.waitstatus_to_exitcode(status), wall, cpu, rss)
