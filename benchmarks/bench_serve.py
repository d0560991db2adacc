"""``regsweep serve`` on real layers: start-up crawl, push latency and rematch, beside the CLI.

    python -m benchmarks.bench_serve [--repos 200] [--tags 5] [--pushes 20] [--no-write]

One run:

1. **The registry** of ``bench_crawl``: Debian's ``docker-registry`` on 127.0.0.1 holding
   ``--repos`` × ``--tags`` tags over the real layers (mmdebstrap bookworm rootfs for amd64
   and arm64, Python, npm and user layers), every 4th repository's tags OCI indexes.
2. **The peer, the batch commands**: ``regsweep crawl URL -o FILE`` cold into a new state
   store, then ``regsweep rematch`` of that store: what a cron job does.
3. **The service**: the same storage served again by a registry whose
   ``notifications.endpoints`` point at the service; ``regsweep serve`` started with a new
   state store. Measured from its log and its output directory:
   - *start-up crawl*: process start to ``crawl_done`` (the service's first full crawl);
   - *push latency*: ``--pushes`` tags PUT one after another (an existing image under a new
     tag, as a CI pipeline tags a build); for each, the time from the registry's 201 to the
     image record in a **complete** output part (``max_age = 1s``): what a warehouse sees;
   - *rematch*: the index file replaced (``db build`` renamed onto it) to the
     ``rematch_done`` line, its own ``seconds``, and the output's ``resolved`` records;
   - peak RSS of the service process, and SIGTERM to exit.

Targets (issue 17): a push in the output within 5 s; the lab registry's 1,513 stored images
re-matched in at most 2 s (scaled here by images).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from benchmarks._common import REPO, PeakRss, write_section
from benchmarks.bench_crawl import (
    REGSWEEP,
    T_REMATCH_IMAGES,
    T_REMATCH_S,
    Server,
    crawl,
    populate,
    real_layers,
    rematch,
    start_registry,
    stop_registry,
)
from tests.service.common import free_port, notifications

T_PUSH_S = 5.0
TOKEN = "bench-serve-token"


#: Real advisories (OSV Debian, PyPI, Go …, Alpine secdb, Wolfi) when ``../shared`` is there:
#: the real layers' Python packages have findings in them; else the bundled samples.
SHARED = REPO.parent / "shared" / "data" / "advisories"
#: The advisory taken out for the rematch (it hits the real layers' ``requests``), or the
#: bundled one (which does not: the rematch then has nothing to resolve).
WITHDRAWN = "PYSEC-2023-74.*" if SHARED.is_dir() else "DSA-5044-1.json"


def build_db(path: Path, *, without: str | None = None) -> None:
    """An index of the real (or bundled) advisories, ``without`` one advisory file, renamed
    onto ``path`` as ``db build`` and ``db update`` replace an index."""
    sources = [SHARED] if SHARED.is_dir() else [
        REPO / "tests/data/advisories/osv", REPO / "tests/data/advisories/secdb"
    ]  # fmt: skip
    if without is not None:
        copy = path.parent / "advisories-without"
        shutil.rmtree(copy, ignore_errors=True)
        copied = []
        for i, src in enumerate(sources):
            shutil.copytree(src, copy / str(i))
            copied.append(copy / str(i))
        for f in copy.rglob(without):
            f.unlink()
        sources = copied
    new = path.with_suffix(".new")
    subprocess.run(
        [REGSWEEP, "db", "build", "--db", str(new), *map(str, sources)],
        check=True, capture_output=True,
    )  # fmt: skip
    os.replace(new, path)


@dataclass
class Service:
    """A running ``regsweep serve``: its process, log and output."""

    proc: subprocess.Popen[bytes]
    log: Path
    out: Path
    started: float

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_bytes().splitlines():
            try:
                out.append(msgspec.json.decode(line))
            except msgspec.DecodeError:
                continue
        return out

    def wait(self, event: str, after: int = 0, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events()[after:] if e.get("event") == event]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                sys.exit(f"regsweep serve exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.02)
        sys.exit(f"no {event} within {timeout} s: {self.log.read_text()[-3000:]}")

    def complete_refs(self) -> set[str]:
        refs = set()
        for part in self.out.rglob("part-*.ndjson"):
            for line in part.read_bytes().splitlines():
                if b'"kind":"image"' in line[:20]:
                    refs.add(msgspec.json.decode(line)["image"]["ref"])
        return refs

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for part in self.out.rglob("part-*.ndjson"):
            for line in part.read_bytes().splitlines():
                kind = msgspec.json.decode(line)["kind"]
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def start_service(work: Path, registry: Server, db: Path, port: int) -> Service:
    config = work / "serve.toml"
    config.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
token_env = "BENCH_SERVE_TOKEN"
write_rate = 1000
[paths]
db = "{db}"
state = "{work / "state.lmdb"}"
output = "{work / "out"}"
[output]
max_age = "1s"
[[registry]]
url = "{registry.url}"
interval = "6h"
credentials = "none"
""")
    log = work / "serve.log"
    env = {**os.environ, "BENCH_SERVE_TOKEN": TOKEN}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [REGSWEEP, "serve", "--config", str(config)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    return Service(proc=proc, log=log, out=work / "out", started=time.perf_counter())


def push_tag(registry: Server, repo: str, from_tag: str, to_tag: str) -> float:
    """PUT ``repo:from_tag``'s manifest under ``to_tag``; the time of the 201."""
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    req = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{from_tag}", headers={"Accept": accept}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body, media_type = resp.read(), resp.headers["Content-Type"]
    put = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{to_tag}", data=body, method="PUT",
        headers={"Content-Type": media_type},
    )  # fmt: skip
    with urllib.request.urlopen(put, timeout=30) as resp:
        assert resp.status == 201
    return time.perf_counter()


def run(args: argparse.Namespace) -> str:
    layers = real_layers()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        db = work / "db.lmdb"
        build_db(db)
        first = start_registry(work / "reg")
        try:
            import asyncio  # noqa: PLC0415

            pop = asyncio.run(populate(first, layers, args.repos, args.tags, "bench"))
            print(f"pushed {len(pop.tags)} tags, {pop.images} images", file=sys.stderr)
            cold = crawl(first, db, work / "cli-state.lmdb", work / "cli.ndjson", 8)
            print(f"cli crawl {cold.wall:.2f} s", file=sys.stderr)
            batch = rematch(first, db, work / "cli-state.lmdb", work / "cli-rematch.ndjson")
            print(f"cli rematch {batch.wall:.2f} s", file=sys.stderr)
        finally:
            stop_registry(first)
        port = free_port()
        notify = notifications(port, TOKEN)
        (work / "reg2").mkdir()
        (work / "reg2" / "storage").symlink_to(work / "reg" / "storage")
        registry = start_registry(work / "reg2", notify)
        svc_dir = work / "svc"
        svc_dir.mkdir()
        try:
            svc = start_service(svc_dir, registry, db, port)
            peak = PeakRss(svc.proc.pid)
            done = svc.wait("crawl_done")
            startup = time.perf_counter() - svc.started
            print(f"service start-up crawl {startup:.2f} s", file=sys.stderr)
            time.sleep(1.5)
            repo = pop.tags[0].split(":")[0]
            latencies = []
            for i in range(args.pushes):
                tag = f"push-{i:03d}"
                ref = f"{registry.url.removeprefix('http://')}/{repo}:{tag}"
                at = push_tag(registry, repo, pop.tags[0].split(":")[1], tag)
                while ref not in svc.complete_refs():
                    if time.perf_counter() - at > 30:
                        sys.exit(f"push {ref} not in the output after 30 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - at)
            print(f"push latency p50 {statistics.median(latencies):.2f} s", file=sys.stderr)
            mark = len(svc.events())
            build_db(db, without=WITHDRAWN)
            swapped = time.perf_counter()  # the new file renamed into place
            end = svc.wait("rematch_done", after=mark)
            seen = time.perf_counter() - swapped
            time.sleep(2.5)
            kinds = svc.kinds()
            stop0 = time.perf_counter()
            svc.proc.send_signal(signal.SIGTERM)
            code = svc.proc.wait(60)
            stop_s = time.perf_counter() - stop0
            rss = peak.stop()
            assert code == 0, svc.log.read_text()[-2000:]
        finally:
            stop_registry(registry)
    source = "../shared/data/advisories" if SHARED.is_dir() else "the bundled samples"
    per_image = end["seconds"] / max(1, done["images"])
    scaled = per_image * T_REMATCH_IMAGES
    lines = [
        f"`python -m benchmarks.bench_serve --repos {args.repos} --tags {args.tags} "
        f"--pushes {args.pushes}`: {len(pop.tags)} tags, {done['images']} images over the "
        f"real layers; index of {source}, then the same without `{WITHDRAWN}`.",
        "",
        "| what | service | batch CLI (same run) | ratio |",
        "|---|---|---|---|",
        f"| first full crawl | {startup:.2f} s (start to `crawl_done`; crawl "
        f"{done['seconds']:.2f} s) | {cold.wall:.2f} s (`regsweep crawl -o`) | "
        f"{startup / cold.wall:.2f}× |",
        f"| re-judge every stored image | {end['seconds']:.3f} s in the service "
        f"({seen:.2f} s from the file's replacement, polled every 2 s) | {batch.wall:.2f} s "
        f"(`regsweep rematch`, process and index start-up included) | "
        f"{end['seconds'] / batch.wall:.2f}× |",
        "",
        f"- push → image record in a complete part: p50 {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s over {len(latencies)} pushes (target ≤ {T_PUSH_S:.0f} s: "
        f"{'met' if max(latencies) <= T_PUSH_S else '**not met**'}); parts complete after "
        "`max_age = 1s`, checked every second",
        f"- rematch per image {per_image * 1000:.3f} ms → {scaled:.2f} s for the lab's "
        f"{T_REMATCH_IMAGES} images (target ≤ {T_REMATCH_S:.0f} s: "
        f"{'met' if scaled <= T_REMATCH_S else '**not met**'}); records written: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
        f"- service peak RSS {rss:.0f} MB; SIGTERM to exit {stop_s:.2f} s (exit {code})",
    ]
    return "\n".join(lines)


def main() -> None:
    """Populate, run the batch commands and the service, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = run(args)
    print(body)
    if not args.no_write:
        write_section("bench_serve", body)


if __name__ == "__main__":
    main()
