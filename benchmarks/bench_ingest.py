"""Advisory ingest: read all of ``../shared/data/advisories`` into ``Advisory`` Structs.

Run: ``python -m benchmarks.bench_ingest [--repeat N] [--no-write]``. Reports wall and CPU
seconds of the fastest of N full loads (CPU time is the honest figure on a shared
machine), records per second, and what the load counted, and records it in RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import SHARED, write_section
from regsweep.matcher import advisories


def _load_once() -> tuple[float, float, advisories.IngestStats]:
    wall, cpu = time.perf_counter(), time.process_time()
    records, stats = advisories.load(SHARED / "data" / "advisories")
    for _ in records:
        pass
    return time.perf_counter() - wall, time.process_time() - cpu, stats


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures, and record them in RESULTS.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="full loads to run (best is kept)")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args(argv)
    if not (SHARED / "data" / "advisories").is_dir():
        print("../shared/data/advisories is not present on this machine")
        return 1
    runs = [_load_once() for _ in range(max(1, args.repeat))]
    wall, cpu, stats = min(runs, key=lambda r: r[0])
    best_cpu = min(r[1] for r in runs)
    body = "\n".join(
        [
            "## bench_ingest: all of ../shared/data/advisories",
            "",
            f"- {stats.records} advisories from {stats.files} files "
            f"({stats.skipped_total} skipped, {stats.ignored_files} ignored)",
            f"- best wall {wall:.2f} s, best CPU {best_cpu:.2f} s "
            f"({stats.records / wall:,.0f} advisories/s wall), best of {len(runs)}",
            "",
            "```",
            stats.report(),
            "```",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("bench_ingest", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
