"""Hostile sizes: ``regsweep scan oci:DIR`` on hand-made image layouts built to cost memory
or time, peak RSS and wall time against the targets.

    python -m benchmarks.bench_hostile [--only NAME ...] [--scale X] [--no-write]

Each case is an OCI layout with one layer, written by streaming into a temporary directory
(``tests.hostile``: nothing is held whole in memory, a case is deleted once scanned), then
scanned by the product command, ``regsweep scan --db DB oci:DIR:latest``, as a fresh
process; its peak RSS is its ``VmHWM`` (``benchmarks._common.PeakRss``), its wall time
includes start-up and the index. The cases, as the reliability campaign made them:

* ``bin-6x250``: six 250 MB files in ``usr/bin`` that start like ELF executables (then
  incompressible bytes): every one is handed to the Go and Rust binary readers;
* ``rpmdb-250``: a 250 MB ``var/lib/rpm/rpmdb.sqlite`` (a real SQLite database in rpm's
  layout, WAL mode, rows of junk blobs);
* ``jar-lies``: ``app.jar`` whose nested ``BOOT-INF/lib/big.jar`` declares 1 KiB but
  inflates to 250 MB;
* ``dpkg-200``: a 200 MB ``var/lib/dpkg/status`` of well-formed paragraphs;
* ``bomb-40``: a valid 40 MB gzip layer that inflates to ~40 GB of zeros (one tar entry):
  the time to its refusal.

``--scale`` multiplies every size (0.1 for a quick look). Targets: peak RSS <= 150 MB for
each case (reported as a ratio to it); the bomb refused (a ``layer_too_large`` error record)
within 10 s of wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import REPO, run_scan, write_section
from tests import hostile
from tests.example import REGSWEEP

T_RSS_MB = 150.0
#: Wall seconds within which the bomb must be refused.
T_BOMB_S = 10.0
MB = 1_000_000


@dataclass
class Case:
    """One hostile layout: its name, what it holds, and how to write it."""

    name: str
    what: str
    build: Callable[[Path, float], None]


def _bin(root: Path, scale: float) -> None:
    size = int(250 * MB * scale)
    fill = hostile.random_block(b"bin")
    hostile.write_layout(
        root,
        [
            hostile.generated_entry(f"usr/bin/tool{k}", size, fill, hostile.ELF_HEADER)
            for k in range(6)
        ],
    )


def _rpmdb(root: Path, scale: float) -> None:
    db = root.parent / "rpmdb.sqlite"
    hostile.rpm_sqlite(db, int(250 * MB * scale))
    hostile.write_layout(root, [hostile.file_entry("var/lib/rpm/rpmdb.sqlite", db)])
    db.unlink()


def _jar(root: Path, scale: float) -> None:
    jar = hostile.lying_jar(int(250 * MB * scale), 1024)
    hostile.write_layout(root, [hostile.data_entry("app/app.jar", jar)])


def _dpkg(root: Path, scale: float) -> None:
    status = root.parent / "status"
    with status.open("wb") as f:
        for piece in hostile.dpkg_status(int(200 * MB * scale)):
            f.write(piece)
    hostile.write_layout(root, [hostile.file_entry("var/lib/dpkg/status", status)])
    status.unlink()


def _bomb(root: Path, scale: float) -> None:
    # ~1010 bytes inflated per byte of blob: 40 MB of blob is ~40 GB of zeros.
    part = root.parent / "bomb.gz"
    with part.open("wb") as f:
        _, diff_id = hostile.gzip_bomb(f, int(40 * MB * scale) * 1010)
    root.mkdir()
    hostile.write_layout(root, [], blob=(part, diff_id))


CASES = [
    Case("bin-6x250", "6 × 250 MB ELF-headed files in usr/bin", _bin),
    Case("rpmdb-250", "250 MB rpmdb.sqlite", _rpmdb),
    Case("jar-lies", "jar member declaring 1 KiB, inflating to 250 MB", _jar),
    Case("dpkg-200", "200 MB dpkg status", _dpkg),
    Case("bomb-40", "40 MB gzip bomb (~40 GB of zeros)", _bomb),
]


@dataclass
class Result:
    """One scan of one case."""

    case: Case
    blob_mb: float
    wall: float
    cpu: float
    rss_mb: float
    packages: int
    errors: list[str]


def _blob_mb(root: Path) -> float:
    """The layer blob's size, as the layout's manifest gives it."""
    index = json.loads((root / "index.json").read_text())
    man = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((root / "blobs" / "sha256" / man).read_bytes())
    return float(manifest["layers"][0]["size"]) / MB


def scan(case: Case, db: Path, scale: float, tmp: Path, repeat: int) -> Result:
    """Write ``case``, run ``regsweep scan`` on it ``repeat`` times (the run of least wall
    time is kept: the machine may be shared), delete it."""
    work = tmp / case.name
    work.mkdir()
    root = work / "layout"
    case.build(root, scale)
    blob_mb = _blob_mb(root)
    try:
        runs = [_scan_once(case, root, db, blob_mb) for _ in range(repeat)]
    finally:
        shutil.rmtree(work)
    return min(runs, key=lambda r: r.wall)


def _scan_once(case: Case, root: Path, db: Path, blob_mb: float) -> Result:
    run = run_scan(db, f"oci:{root}:latest")
    code = run.code
    records = [json.loads(line) for line in run.out.splitlines()]
    if code != 0 or not records or records[-1].get("kind") != "summary":
        raise RuntimeError(f"regsweep scan failed on {case.name} (exit {code})")
    errors = [f"{r['error']}: {r['message'][:200]}" for r in records if r["kind"] == "error"]
    return Result(case, blob_mb, run.wall, run.cpu, run.rss_mb, records[-1]["packages"], errors)


def report(results: list[Result], scale: float, names: list[str], repeat: int) -> str:
    """The RESULTS.md section."""
    lines = [
        "## Hostile sizes (`bench_hostile`)",
        "",
        "| case | what | blob MB | scan wall s | CPU s | peak RSS MB | RSS / 150 MB | "
        "packages | error records |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        errors = "; ".join(sorted({e.split(":")[0] for e in r.errors})) or "none"
        lines.append(
            f"| {r.case.name} | {r.case.what} | {r.blob_mb:.1f} | {r.wall:.2f} | {r.cpu:.2f} | "
            f"{r.rss_mb:.0f} | **{r.rss_mb / T_RSS_MB:.2f}** | {r.packages} | {len(r.errors)} "
            f"({errors}) |"
        )
    lines += ["", "Error records, first line of each (at most 3 a case):", ""]
    for r in results:
        for e in r.errors[:3]:
            lines.append(f"- {r.case.name}: `{e}`")
    lines.append("")
    for r in results:
        met = r.rss_mb <= T_RSS_MB
        line = (
            f"- {r.case.name}: peak RSS {r.rss_mb:.0f} MB (target ≤ {T_RSS_MB:.0f}: "
            f"{'met' if met else '**not met**'})"
        )
        if r.case.name.startswith("bomb"):
            refused = any(e.startswith("layer_too_large") for e in r.errors)
            fast = refused and r.wall <= T_BOMB_S
            line += (
                f"; {'refused' if refused else '**not refused**'} after {r.wall:.1f} s wall, "
                f"{r.wall / T_BOMB_S:.2f} of the {T_BOMB_S:.0f} s target "
                f"({'met' if fast else '**not met**'})"
            )
        lines.append(line)
    only = "".join(f" --only {n}" for n in names)
    lines += [
        "",
        "Each scan is a fresh process (start-up and the index of `tests/data/advisories` "
        f"included), every analyzer on, the fastest of {repeat} kept; peak RSS is its `VmHWM`. "
        "The layouts are written by "
        "`tests.hostile` into a temporary directory (the bomb's diff_id is its real one, "
        "hashed over the ~40 GB it inflates to) and deleted once scanned.",
        "",
        f"Command: `python -m benchmarks.bench_hostile --scale {scale:g} --repeat {repeat}{only}`",
    ]
    return "\n".join(lines)


def main() -> None:
    """Build each case, scan it, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], choices=[c.name for c in CASES])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1, help="scans per case; the fastest kept")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    results = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        db = tmp / "db.lmdb"
        adv = REPO / "tests/data/advisories"
        subprocess.run([REGSWEEP, "db", "build", "--db", str(db), str(adv / "osv"),
                        str(adv / "secdb")], check=True, capture_output=True)  # fmt: skip
        for case in cases:
            r = scan(case, db, args.scale, tmp, args.repeat)
            print(f"{case.name}: wall {r.wall:.2f} s, peak RSS {r.rss_mb:.0f} MB, "
                  f"{r.packages} packages, {len(r.errors)} errors", flush=True)  # fmt: skip
            results.append(r)
    body = report(results, args.scale, args.only, args.repeat)
    print(body)
    if not args.no_write:
        write_section("bench_hostile", body)


if __name__ == "__main__":
    main()
