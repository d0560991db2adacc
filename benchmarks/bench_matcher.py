"""Matcher speed and index size: the interval index beside a naive per-advisory loop.

    python -m benchmarks.bench_matcher [--packages N] [--no-write]

In one run, on all of ``../shared/data/advisories`` (or the repo's test samples without it):

1. **Index build** (``db build``: ingest + index, streamed) on 25/50/75/100 % of the records,
   each in a fresh process so its peak RSS is its own; a least-squares line through the four
   points shows how time and memory grow with the number of advisories.
2. **Matching core**: ``Matcher.match`` on an N-package inventory (default 1M) made of real
   names and versions: every package the index names at each of its fixed versions
   (``regsweep.matcher.benchmark.inventory_pool``, what ``regsweep bench matcher --generate``
   draws from) and Debian 12 binaries from ``apt-cache dumpavail`` with their Source fields,
   sampled with repeats as a fleet has them. Beside it, the **naive baseline**: a dict of
   ``(ecosystem, name)`` → advisories whose ranges (events pre-sorted) are evaluated per
   package with the compiled compare — the shape of Grype's and Trivy's matching loops.
3. **End to end**: ``regsweep bench matcher -i`` on the inventory written as NDJSON
   ``package`` records, in a fresh process: ``regsweep match``'s path beside the msgspec
   I/O floor (decode the same lines, encode the same output records), the figures the
   command prints for users; and ``regsweep match`` timed as a whole process.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import msgspec

from benchmarks._common import REPO, SHARED, best_of, write_section
from regsweep.matcher import _identity, advisories, benchmark, versions
from regsweep.matcher.index import store
from regsweep.matcher.match import IDENTITY_FIELDS, IDENTITY_FOLD, Matcher, target
from regsweep.matcher.records import Package

DATA = SHARED / "data" / "advisories"
if not DATA.is_dir():
    DATA = REPO / "tests" / "data" / "advisories"


# ----------------------------------------------------------------------------- build


def _build_child(
    quarters: int, path: str, queue: multiprocessing.Queue[tuple[float, float, float, int]]
) -> None:
    # Ingest everything (untimed), then index a uniform sample: records i with i % 4 below
    # ``quarters``, so every subset has the same mix of feeds. quarters == 4 also times the
    # whole ``db build`` path (ingest streamed into the index) on its own.
    records, stats = advisories.load(DATA)
    if quarters == 4:
        t0 = time.perf_counter()
        store.build(path + ".full", records, stats)
        full = time.perf_counter() - t0
        records, stats = advisories.load(DATA)
    else:
        full = 0.0
    subset = [a for i, a in enumerate(records) if i % 4 < quarters]
    t0, c0 = time.perf_counter(), time.process_time()
    meta = store.build(path, subset, stats)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((wall, cpu, full, rss_kb, meta.advisories))  # type: ignore[arg-type]


def build_scaling(tmp: Path) -> tuple[list[tuple[int, float, float, float]], float]:
    """``(advisories, index wall s, index CPU s, peak RSS MB)`` for 1/4 … 4/4 of the data,
    and the wall time of a full streamed ``db build``."""
    ctx = multiprocessing.get_context("spawn")
    out = []
    full = 0.0
    for quarters in (1, 2, 3, 4):
        q: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        path = str(tmp / f"sub{quarters}.lmdb")
        p = ctx.Process(target=_build_child, args=(quarters, path, q))
        p.start()
        wall, cpu, full_q, rss_kb, got = q.get()
        p.join()
        full = full_q or full
        out.append((got, wall, cpu, rss_kb / 1024))
    return out, full


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: returns (a, b, r²)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys) or 1.0
    return a, b, 1 - ss_res / ss_tot


# ----------------------------------------------------------------------------- inventory


def _apt_packages() -> list[Package]:
    try:
        text = subprocess.run(
            ["apt-cache", "dumpavail"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    out = []
    for para in text.split("\n\n"):
        fields = {}
        for line in para.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        if "Package" not in fields or "Version" not in fields:
            continue
        src, _, src_ver = fields.get("Source", "").partition(" (")
        out.append(
            Package(
                name=fields["Package"],
                version=fields["Version"],
                type="deb",
                ecosystem="Debian:12",
                source_name=src or None,
                source_version=src_ver.rstrip(")") or None,
            )
        )
    return out


def inventory(index: store.AdvisoryIndex, n: int, rng: random.Random) -> list[Package]:
    """N packages, sampled with repeats as a fleet has them (``benchmark.generate_inventory``:
    a package name first, then one of its versions) from what ``regsweep bench matcher
    --generate`` draws from (every package the index names, at each of its fixed versions)
    and, beside it, every binary package ``apt-cache dumpavail`` lists, at its version."""
    pool = benchmark.inventory_pool(index)
    apt: dict[str, list[Package]] = defaultdict(list)
    for p in _apt_packages():
        apt[p.name].append(p)
    pool += [tuple(group) for group in apt.values()]
    return list(benchmark.generate_inventory(pool, n, rng))


# ----------------------------------------------------------------------------- naive


class Naive:
    """Grype/Trivy's shape: (ecosystem, name) → advisories, each range walked per package."""

    def __init__(self, advs: list[advisories.Advisory]) -> None:
        self.table: dict[tuple[str, str], list[tuple[str, list[list[tuple[str, str]]], list[str]]]]
        self.table = defaultdict(list)
        for adv in advs:
            for aff in adv.affected:
                if aff.status == "not_affected":
                    continue
                mod = versions.module(aff.scheme)
                ranges = []
                for r in aff.ranges:
                    evs = [(e.kind.value, e.version) for e in r.events]
                    try:
                        evs.sort(key=lambda e: mod.key(e[1]) if e[1] != "0" else b"")
                    except versions.InvalidVersion:
                        continue
                    ranges.append(evs)
                self.table[(aff.ecosystem, aff.package)].append((adv.id, ranges, aff.versions))

    def match(self, packages: list[Package]) -> int:
        found = 0
        for pkg in packages:
            try:
                t = target(pkg)
            except ValueError:
                continue
            if t is None:
                continue
            cmp = versions.module(t.scheme).compare
            for _adv_id, ranges, listed in self.table.get((t.ecosystem, t.name), ()):
                try:
                    hit = any(cmp(t.version, v) == 0 for v in listed)
                    for evs in ranges:
                        if hit:
                            break
                        vulnerable = False
                        for kind, v in evs:
                            if kind == "introduced":
                                if v == "0" or cmp(t.version, v) >= 0:
                                    vulnerable = True
                            elif kind == "fixed":
                                if cmp(t.version, v) >= 0:
                                    vulnerable = False
                            elif kind == "last_affected" and cmp(t.version, v) > 0:
                                vulnerable = False
                        hit = vulnerable
                except versions.InvalidVersion:
                    continue
                found += hit
        return found


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures with ratios, and record them in RESULTS.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packages", type=int, default=1_000_000)
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    ap.add_argument(
        "--skip-build",
        action="store_true",
        help="build the index once, untimed, and skip the build-scaling part (implies --no-write)",
    )
    args = ap.parse_args(argv)
    rng = random.Random(benchmark.SEED)
    lines = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    records, _ = advisories.load(DATA)
    advs = list(records)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        say(f"## Matcher and index (`bench_matcher`)\n\nData: {DATA} ({len(advs)} advisories).\n")
        if args.skip_build:
            args.no_write = True
            store.build(tmp / "sub4.lmdb", *advisories.load(DATA))
        else:
            say("### Index build (a uniform 1/4 … 4/4 of the records; fresh process each)\n")
            say("| advisories | index wall s | index CPU s | peak RSS MB (incl. ingest) |")
            say("|---|---|---|---|")
            scaling, full = build_scaling(tmp)
            for got, wall, cpu, rss in scaling:
                say(f"| {got} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |")
            xs = [float(s[0]) for s in scaling]
            a, b, r2 = fit(xs, [s[1] for s in scaling])
            ra, rb, rr2 = fit(xs, [s[3] for s in scaling])
            say(
                f"\nIndex time = {a:.2f} s + {b * 1000:.3f} s per 1k advisories (r² = {r2:.3f}); "
                f"peak RSS = {ra:.0f} MB + {rb * 1000:.2f} MB per 1k advisories (r² = {rr2:.3f}). "
                f"Full `db build` of all {len(advs)} (ingest streamed into the index): "
                f"**{full:.2f} s** (target ≤ 60 s, linear).\n"
            )

        # Every package a distinct object with its own strings, as the NDJSON decoder or the
        # state store hands them over (sampling from a pool would repeat the same objects,
        # which no real input does).
        index_path = tmp / "sub4.lmdb"
        with store.AdvisoryIndex(index_path) as index:
            drawn = inventory(index, args.packages, rng)
        pkgs = msgspec.msgpack.decode(msgspec.msgpack.encode(drawn), type=list[Package])
        del drawn
        # The harness holds every parsed advisory and the inventory for the whole run; a
        # matcher in a real process has neither, so the cyclic GC must not walk them during
        # the timed passes.
        gc.freeze()
        batch = 20_000
        with store.AdvisoryIndex(index_path) as index:
            found = 0

            batches = [pkgs[i : i + batch] for i in range(0, len(pkgs), batch)]

            def run_core(matcher: Matcher) -> tuple[float, float]:
                # Only the matcher is timed: the findings are counted after the clock stops.
                nonlocal found
                t0, c0 = time.perf_counter(), time.process_time()
                out = [matcher.match(b)[0] for b in batches]
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                found = sum(len(r) for res in out for r in res)
                return wall, cpu

            # Cold: a fresh Matcher, every distinct package resolved on first sight. Warm:
            # the same Matcher again, as a crawl sees the same base layers image after image.
            cold_wall, cold_cpu = run_core(Matcher(index))
            warm_matcher = Matcher(index)
            run_core(warm_matcher)
            # The floor, interleaved with the warm passes: only touching every cache line of
            # every package's identity, which the matcher must do at the least. The host's
            # memory speed varies by a third from run to run; the ratio to the floor does not.
            floor_table = _identity.IdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
            warm_runs, floor_runs = [], []
            for _ in range(3):
                warm_runs.append(run_core(warm_matcher))
                c0 = time.process_time()
                for b in batches:
                    floor_table.read_floor(b)
                floor_runs.append(time.process_time() - c0)
            warm_wall, warm_cpu = min(warm_runs)
            read_floor = min(floor_runs)
            naive = Naive(advs)
            sub = pkgs[: max(20_000, len(pkgs) // 20)]
            naive_found = 0

            def run_naive() -> None:
                nonlocal naive_found
                naive_found = naive.match(sub)

            naive_rate = len(sub) / best_of(run_naive, repeat=1)
        n = len(pkgs)
        say("### Matching core\n")
        say(
            f"- inventory: {n:,} packages ({len(set(pkgs)):,} distinct), {found:,} findings "
            f"({found / n:.2f} per package). A package name is drawn first (every advisory "
            f"package and `apt-cache dumpavail` binary equally likely), then one of its "
            f"versions (an advisory package at one of its real fixed versions); every package "
            f"is a distinct object with its own strings, as a decoder hands them over"
        )
        say(f"- `Matcher.match` in batches of {batch:,}:\n")
        say("| matcher | wall s | M packages/s | M packages/s per core (CPU) | × naive |")
        say("|---|---:|---:|---:|---:|")
        for label, wall, cpu in (
            ("cold (fresh Matcher: every distinct package resolved)", cold_wall, cold_cpu),
            ("warm (caches filled by an earlier pass; best of 3)", warm_wall, warm_cpu),
        ):
            say(
                f"| {label} | {wall:.3f} | {n / wall / 1e6:.2f} | {n / cpu / 1e6:.2f} | "
                f"{n / wall / naive_rate:.0f}× |"
            )
        warm_rate = n / warm_cpu / 1e6
        say(
            f"\nNaive per-advisory loop on the first {len(sub):,}: {naive_rate / 1e6:.3f} M/s. "
            f"Targets: ≥ 10 M packages/s per core and ≥ 5× naive. Warm: "
            f"**{warm_rate:.2f} M/s per core** ({'met' if warm_rate >= 10 else 'not met'}), "
            f"**{n / warm_wall / naive_rate:.0f}×**; "
            f"cold: {n / cold_cpu / 1e6:.2f} M/s per core, {n / cold_wall / naive_rate:.0f}×.\n"
        )
        say(
            f"Floor in the same run (touching every cache line that holds an identity "
            f"character of a package, nothing else): {read_floor:.3f} s CPU, "
            f"{n / read_floor / 1e6:.1f} M/s; warm core = **{warm_cpu / read_floor:.1f}× the "
            f"floor**.\n"
        )

        nd = tmp / "packages.ndjson"
        with nd.open("wb") as fh:
            benchmark.write_inventory(pkgs, fh)
        env = {**os.environ, "REGSWEEP_DB": str(index_path)}
        bin_dir = Path(sys.executable).parent
        # The figures users get: the same command, in a fresh process (this one holds the
        # whole inventory and every advisory, which changes how fast the allocator serves
        # the decoded records).
        proc = subprocess.run(
            [str(bin_dir / "regsweep"), "bench", "matcher", "-i", str(nd), "--repeat", "3",
             "--json"],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        report = msgspec.json.decode(proc.stdout)
        r = report["result"]
        product, floor = r["product"], r["floor"]

        def whole_process() -> tuple[float, float]:
            # Wall and CPU (user + system of the child, start-up and imports included).
            t0 = time.perf_counter()
            child = subprocess.Popen(
                [str(bin_dir / "regsweep"), "match", "-i", str(nd)],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            _, status, usage = os.wait4(child.pid, 0)
            if status != 0:
                raise RuntimeError(f"regsweep match exited with status {status}")
            return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime

        e2e_s, e2e_cpu = min(whole_process() for _ in range(3))
        say("### `regsweep bench matcher` on the same inventory (end to end)\n")
        say(
            f"- {r['packages']:,} package records in ({r['input_bytes'] / 1e6:.0f} MB), "
            f"{r['findings']:,} vulnerability records out ({product['bytes'] / 1e6:.0f} MB); "
            f"`regsweep bench matcher -i packages.ndjson --repeat 3` in a fresh process, best "
            f"of 3 each, interleaved"
        )
        say("\n| | wall s | CPU s | M packages/s |")
        say("|---|---:|---:|---:|")
        say(
            f"| product: `regsweep match`'s path (decode, match in batches, encode) | "
            f"{product['seconds']:.2f} | {product['cpu_seconds']:.2f} | "
            f"{product['packages_per_s'] / 1e6:.2f} |"
        )
        say(
            f"| floor: msgspec decode of the same lines + encode of the same output records, "
            f"no matching | {floor['seconds']:.2f} | {floor['cpu_seconds']:.2f} | "
            f"{floor['packages_per_s'] / 1e6:.2f} |"
        )
        say(
            f"| product / floor (target ≤ 1.5×) | **{r['ratio']:.2f}×** | "
            f"**{r['cpu_ratio']:.2f}×** | |"
        )
        say(
            f"| `regsweep match` as a whole process (start-up, imports, index opened) | "
            f"{e2e_s:.2f} | {e2e_cpu:.2f} | {r['packages'] / e2e_s / 1e6:.2f} |"
        )
        say(f"\nPeak RSS of the `regsweep bench matcher` process: {report['peak_rss_mb']:.0f} MB.")
    body = "\n".join(lines)
    if not args.no_write:
        write_section(
            "bench_matcher",
            body + f"\n\nCommand: `python -m benchmarks.bench_matcher --packages {args.packages}`",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
