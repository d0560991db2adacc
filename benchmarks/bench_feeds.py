"""``regsweep db update`` at osv.dev's scale, from a mirror on 127.0.0.1.

    python -m benchmarks.bench_feeds [--replicas N] [--repeat N] [--work DIR] [--no-write]

osv.dev's exports of the ecosystems regsweep matches are several hundred thousand records;
``../shared/data`` holds 17,000 real ones (Debian, PyPI, Go, crates.io and samples of the
others). The corpus is those records written ``N`` times (default 24, about 408,000
records), each copy under renamed ids and aliases (``DSA-5044-1-R7``), as one ``all.zip``
per ecosystem in osv.dev's layout (``tests.feeds.write_osv_mirror``; an empty zip for each
catalog ecosystem with no record), beside NVD's yearly CVE feeds, which the catalog fetches
too, written empty (``tests.feeds.write_cve_mirror``: no NVD corpus is measured here). It
is served by aiohttp's static files on 127.0.0.1
(``tests.feeds.MirrorServer``) and fetched by the product command, as a user runs it::

    regsweep db update --mirror http://127.0.0.1:PORT/ --db DB

in a fresh process with an empty feed cache. Reported: wall time and peak RSS (``VmHWM``
polled every 10 ms, and ``ru_maxrss`` from ``os.wait4``) against the targets (≤ 3 min,
≤ 1 GB) as ratios; the download and index-build parts the command prints; the same at 1/4
and 1/2 of the corpus, to show that the index time grows linearly; and a second update of
the full corpus, which must find every feed not modified and rebuild nothing.

The corpora are written by a child process (so that this one stays small: ``ru_maxrss`` of
a child counts its parent's pages at fork) and kept in ``--work`` for the next run.
Needs ``../shared/data``; without it the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from benchmarks._common import SHARED, PeakRss, write_section
from regsweep.matcher.index import catalog
from tests.feeds import MirrorServer, write_cve_mirror, write_osv_mirror

OSV = SHARED / "data" / "advisories" / "osv"
REGSWEEP = str(Path(sys.executable).parent / "regsweep")
TARGET_WALL_S = 180.0
TARGET_RSS_MB = 1024.0
NAMES = [f.name for f in catalog.CATALOG]


class Run(msgspec.Struct, kw_only=True):
    """One ``db update`` process."""

    records: int
    zip_mb: float
    wall: float
    cpu: float
    rss_mb: float
    maxrss_mb: float
    fetch_s: float
    index_s: float
    index_cpu: float
    advisories: int
    stderr_tail: str


def _make_corpus(root: str, replicas: int) -> None:
    counts = write_osv_mirror(Path(root), [OSV], replicas=replicas, only=NAMES, empty=NAMES)
    (Path(root) / "records").write_text(str(sum(counts.values())))


def corpus(work: Path, replicas: int) -> tuple[Path, int]:
    """The mirror of ``replicas`` copies, written once (by a child process) and kept."""
    root = work / f"osv-x{replicas}"
    stamp = root / "records"
    if not stamp.is_file():
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=_make_corpus, args=(str(root), replicas)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"writing the x{replicas} corpus failed")
        print(f"  wrote the x{replicas} corpus in {time.perf_counter() - t0:.0f} s", flush=True)
    if not (root / "feeds").is_dir():
        # A corpus kept from before the catalog had CVE feeds: add them (empty, small).
        write_cve_mirror(root)
    return root, int(stamp.read_text())


def _seconds(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else float("nan")


def update(server: MirrorServer, db: Path, records: int) -> Run:
    """``regsweep db update --mirror`` in a fresh process: its wall, CPU and peak RSS."""
    cmd = [REGSWEEP, "db", "update", "--mirror", server.base, "--db", str(db)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = PeakRss(proc.pid)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    rss = peak.stop()
    # wait4: this child's own rusage (RUSAGE_CHILDREN would mix in the corpus writers).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"regsweep db update failed:\n{err[-3000:]}")
    built = re.search(r"built \S+: (\d+) advisories", err)
    zip_bytes = sum((server.root / n / "all.zip").stat().st_size for n in NAMES)
    return Run(
        records=records,
        zip_mb=zip_bytes / 1e6,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=rss,
        maxrss_mb=usage.ru_maxrss / 1024,
        fetch_s=_seconds(r"feeds in ([\d.]+) s", err),
        index_s=_seconds(r"index built in ([\d.]+) s", err),
        index_cpu=_seconds(r"index built in [\d.]+ s \(([\d.]+) s CPU\)", err),
        advisories=int(built.group(1)) if built else 0,
        stderr_tail="\n".join(err.strip().splitlines()[-3:]),
    )


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    # Least squares y = a + b x, and r².
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures, and record them in RESULTS.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--replicas", type=int, default=24, help="copies of the records (full size)")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path.home() / ".cache" / "regsweep-bench" / "feeds",
        help="where the corpora are kept between runs",
    )
    ap.add_argument("--repeat", type=int, default=2, help="updates per size; the fastest is kept")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args(argv)
    if not OSV.is_dir():
        print(f"bench_feeds: {OSV} is not on this machine; nothing measured")
        return 0
    full = max(4, args.replicas)
    sizes = [full // 4, full // 2, full]
    args.work.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    again: Run | None = None
    with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
        for replicas in sizes:
            root, records = corpus(args.work, replicas)
            with MirrorServer(root) as server:
                tries = []
                for i in range(max(1, args.repeat)):
                    db = Path(tmp) / f"x{replicas}-{i}" / "advisories.lmdb"
                    tries.append(update(server, db, records))
                # The fastest: on a shared machine the slower ones measured the neighbours.
                run = min(tries, key=lambda r: r.wall)
                print(
                    f"  x{replicas}: {records} records, {run.zip_mb:.0f} MB of zips: "
                    f"wall {run.wall:.1f} s (fetch {run.fetch_s:.1f}, index {run.index_s:.1f}), "
                    f"peak RSS {run.rss_mb:.0f} MB",
                    flush=True,
                )
                runs.append(run)
                if replicas == full:
                    again = update(server, db, records)
                    if "no rebuild" not in again.stderr_tail:
                        raise RuntimeError(f"the second update rebuilt:\n{again.stderr_tail}")
    assert again is not None
    big = runs[-1]
    # CPU, not wall: on a shared machine the wall time of one build says as much about the
    # neighbours as about the build.
    a, b, r2 = _fit([r.records / 1000 for r in runs], [r.index_cpu for r in runs])
    per_k = [r.index_cpu / (r.records / 1000) for r in runs]
    linear = max(per_k) <= 1.25 * min(per_k)
    rows = [
        f"| {r.records:,} | {r.zip_mb:.0f} | {r.wall:.1f} | {r.cpu:.1f} | {r.fetch_s:.1f} | "
        f"{r.index_s:.1f} | {r.index_cpu:.1f} | {1000 * per_k[i]:.1f} | {r.rss_mb:.0f} | "
        f"{r.maxrss_mb:.0f} |"
        for i, r in enumerate(runs)
    ]
    body = "\n".join(
        [
            "## Feed update at osv.dev's scale (`bench_feeds`)",
            "",
            f"Corpus: the {runs[0].records // sizes[0]:,} OSV records of ../shared/data "
            f"written {full} times under renamed ids and aliases, one `all.zip` per "
            "ecosystem in osv.dev's layout (an empty one for each catalog ecosystem without "
            "records), served by aiohttp's static files on 127.0.0.1. Each row is "
            "`regsweep db update --mirror http://127.0.0.1:PORT/ --db DB` in a fresh "
            "process with an empty feed cache: the whole catalog fetched (4 at a time, "
            "each zip checked member by member), then one index build; the fastest of "
            f"{max(1, args.repeat)}.",
            "",
            "| records | zips MB | wall s | CPU s | fetch + verify s | index s | index CPU s | "
            "index CPU ms per 1k records | peak RSS MB (VmHWM) | ru_maxrss MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- full size, {big.records:,} records ({big.advisories:,} advisories indexed): "
            f"wall **{big.wall:.1f} s**, {big.wall / TARGET_WALL_S:.2f}× the 180 s target "
            f"({'met' if big.wall <= TARGET_WALL_S else '**not met**'}); peak RSS "
            f"**{big.rss_mb:.0f} MB**, {big.rss_mb / TARGET_RSS_MB:.2f}× the 1 GB target "
            f"({'met' if big.rss_mb <= TARGET_RSS_MB else '**not met**'})",
            f"- index CPU = {a:.2f} s + {1000 * b:.1f} ms per 1k records (r² = {r2:.3f}); "
            f"per 1k records {1000 * per_k[0]:.1f} / {1000 * per_k[1]:.1f} / "
            f"{1000 * per_k[2]:.1f} ms at 1/4, 1/2 and full size: "
            + ("linear (within 25 %)" if linear else "**not linear** (more than 25 % apart)"),
            f"- a second update of the full corpus (every feed 304, no rebuild): "
            f"{again.wall:.1f} s, peak RSS {again.rss_mb:.0f} MB; it said "
            f"`DB is {again.stderr_tail.splitlines()[-1].split(' is ', 1)[-1]}`",
            "",
            f"Command: `python -m benchmarks.bench_feeds --replicas {full} "
            f"--repeat {max(1, args.repeat)}`",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("bench_feeds", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
