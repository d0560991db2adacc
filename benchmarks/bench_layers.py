"""Layer streaming speed and memory: ``regsweep scan`` on real big layers, and the walk alone.

    python -m benchmarks.bench_layers [--blob FILE.tar.gz] [--source DIR] [--no-product]
                                      [--no-write]

**The product command** (unless ``--no-product``): ``regsweep scan oci:LAYOUT`` as a user
runs it, every analyzer on, on two one-layer images made from real files and cached in
``~/.cache/regsweep-tests``:

* *bookworm ×5*: five copies of the mmdebstrap minbase bookworm amd64 root filesystem in one
  layer (``copyN/…``), gzip -6: ~140 MB of blob, ~390 MB of tar, ~2,200 executables;
* *executables ≥ 1 GB*: eleven copies of the Go toolchain's programs (``/usr/lib/go-*``:
  real Go binaries, each with build information) and one of the rootfs's ``usr/bin``, under
  ``bin`` directories: every file a Go and a Rust analyzer read, over 1 GB of them.

Beside each: ``zcat | tar -t`` of the same blob. Reported: wall, CPU, peak RSS (``VmHWM``),
packages and error records, and the ratio to ``zcat | tar -t``.

**The walk alone** (``scan_layer`` with no analyzer) on ``--blob`` if given, else
``tar -c DIR | gzip -6`` of a real directory tree (``/usr/share`` by default: tens of
thousands of real files), written to a temporary directory. On the same blob it times:

* ``regsweep``: ``scan_layer`` with the blob digest *and* the diff_id checked, no file
  wanted (every entry skipped at header speed), reading the blob from disk;
* ``regsweep bench layers``: ``scan_layer`` with every default analyzer, and its floor
  (decompress and walk the tar headers, one thread, nothing hashed):
  ``regsweep.crawler.benchmark.measure_layer``, the figures the command prints for this blob;
* ``isal raw``: ISA-L decompression alone, the floor for any gzip reader here;
* ``zcat | tar -t`` and ``tarfile`` (stream mode ``r|gz``, listing every member);
* when ``zstd`` is installed, the same tar recompressed with ``zstd -3``: ``scan_layer``
  beside ``zstdcat | tar -t``.

Rates are MB/s of *uncompressed* tar. Targets: >= 450 MB/s per core, scan wall <= 0.35x
``zcat | tar -t``; for the product scans, peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import igzip_lib

from benchmarks._common import REPO, best_of, run_scan, write_section
from regsweep.cli import bench
from regsweep.crawler import benchmark
from regsweep.crawler.layers import scan_layer
from tests.realimage import cache_dir, debian_rootfs

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def build_blob(source: Path, folder: Path) -> Path:
    """``tar -c source | gzip -6`` (gzip's and Go's default level, as registries serve)."""
    blob = folder / "layer.tar.gz"
    with blob.open("wb") as out:
        tar = subprocess.Popen(
            ["tar", "-cf", "-", "-C", str(source.parent), source.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(["gzip", "-6", "-c"], stdin=tar.stdout, stdout=out, check=True)
        tar.wait()
    return blob


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def raw_isal(path: Path) -> int:
    """Bytes of uncompressed output, ISA-L alone (no hashing, no tar)."""
    n = 0
    with path.open("rb") as f:
        dec = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        while chunk := f.read(1 << 20):
            n += len(dec.decompress(chunk))
    return n


REGSWEEP = str(Path(sys.executable).parent / "regsweep")
T_RSS_MB = 150.0
T_RATIO = 0.35
#: Part of the cached layouts' names: change it when what they hold changes.
_RECIPE = "1"


def _copies(src: Path, n: int) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """The entries of a root filesystem tar, ``n`` times, under ``copyK/``."""
    with tarfile.open(src) as tf:
        entries = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]  # type: ignore[union-attr]
    for k in range(n):
        for m, data in entries:
            info = tarfile.TarInfo(f"./copy{k}/{m.name.removeprefix('./')}")
            info.type, info.mode, info.mtime, info.size = m.type, m.mode, m.mtime, m.size
            if m.islnk():
                info.linkname = f"./copy{k}/{m.linkname.removeprefix('./')}"
            else:
                info.linkname = m.linkname
            if not m.isfile():
                info.size = 0
            yield info, data


def _executables(rootfs: Path) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Eleven copies of the Go toolchain's programs and the rootfs's usr/bin: > 1 GB."""
    tools = sorted(
        p for pattern in ("/usr/lib/go-*/bin/*", "/usr/lib/go-*/pkg/tool/*/*")
        for p in glob.glob(pattern) if os.path.isfile(p) and not os.path.islink(p)
    )  # fmt: skip
    if not tools:
        raise FileNotFoundError("no Go toolchain in /usr/lib/go-* (apt-get install golang-go)")
    blobs = [(os.path.basename(p), Path(p).read_bytes()) for p in tools]
    for k in range(11):
        for name, data in blobs:
            info = tarfile.TarInfo(f"./opt/go{k}/bin/{name}")
            info.size, info.mode, info.mtime = len(data), 0o755, 1716163200
            yield info, data
    with tarfile.open(rootfs) as tf:
        for m in tf:
            if m.isfile() and m.name.startswith("./usr/bin/"):
                yield m, tf.extractfile(m).read()  # type: ignore[union-attr]


@dataclass
class Layout:
    """A one-layer OCI image layout and its blob."""

    name: str
    path: Path
    blob: Path
    tar_bytes: int
    executables: int


def _layout(name: str, entries: Callable[[], Iterator[tuple[tarfile.TarInfo, bytes | None]]],
            level: int) -> Layout:  # fmt: skip
    """Build (once; cached) an OCI layout whose one layer holds ``entries``, gzip ``level``."""
    root = cache_dir() / f"layout-{name}-r{_RECIPE}"
    meta = root / "bench.json"
    if not meta.is_file():
        shutil.rmtree(root, ignore_errors=True)
        (root / "blobs" / "sha256").mkdir(parents=True)
        part = root / "layer.part"
        diff = hashlib.sha256()
        size = exe = 0
        with part.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level,
                                                    mtime=0) as gz:  # fmt: skip

            class Hashed(io.RawIOBase):
                def write(self, b: bytes) -> int:  # type: ignore[override]
                    nonlocal size
                    diff.update(b)
                    size += len(b)
                    gz.write(b)
                    return len(b)

            with tarfile.open(fileobj=Hashed(), mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for info, data in entries():
                    if data is not None and "/bin/" in info.name:
                        exe += len(data)
                    tar.addfile(info, io.BytesIO(data) if data is not None else None)
        digest = file_digest(part)
        blob = root / "blobs" / "sha256" / digest.removeprefix("sha256:")
        part.replace(blob)

        def put(doc: dict[str, object]) -> tuple[str, int]:
            data = json.dumps(doc).encode()
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            (root / "blobs" / "sha256" / d.removeprefix("sha256:")).write_bytes(data)
            return d, len(data)

        cfg, cfg_size = put({"architecture": "amd64", "os": "linux", "config": {"User": "1000"},
                             "rootfs": {"type": "layers",
                                        "diff_ids": ["sha256:" + diff.hexdigest()]}})  # fmt: skip
        man, man_size = put({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                       "size": cfg_size},
            "layers": [{"mediaType": GZIP, "digest": digest, "size": blob.stat().st_size}],
        })  # fmt: skip
        ref = {"org.opencontainers.image.ref.name": "latest"}
        entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man,
                 "size": man_size, "annotations": ref}  # fmt: skip
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        meta.write_text(json.dumps({"blob": str(blob), "tar_bytes": size, "executables": exe}))
    info = json.loads(meta.read_text())
    return Layout(name, root, Path(info["blob"]), info["tar_bytes"], info["executables"])


@dataclass
class Scan:
    """One ``regsweep scan`` process, and its floors on the same blob."""

    wall: float
    cpu: float
    rss_mb: float
    packages: int
    errors: int
    zcat: float
    #: ISA-L decompression of the blob alone, in this process: no hashing, tar or analysis.
    inflate: float = 0.0


def product_scan(layout: Layout, db: Path) -> Scan:
    """``regsweep scan oci:LAYOUT`` (peak RSS from VmHWM) and ``zcat | tar -t`` beside it."""
    run = run_scan(db, f"oci:{layout.path}:latest")
    if run.code != 0:
        raise RuntimeError(f"regsweep scan failed on {layout.name}")
    records = [json.loads(line) for line in run.out.splitlines()]
    summary = records[-1]
    zcat = best_of(
        lambda: subprocess.run(f"zcat '{layout.blob}' | tar -t > /dev/null", shell=True,
                               check=True), 2)  # fmt: skip
    inflate = best_of(lambda: raw_isal(layout.blob), 2)
    return Scan(run.wall, run.cpu, run.rss_mb, summary["packages"], summary["errors"], zcat,
                inflate)  # fmt: skip


def startup(db: Path) -> float:
    """Wall seconds of ``regsweep scan`` of a tiny image (start-up, imports, the index)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "scripts/make-example-image.py"), tmp],
                       check=True, capture_output=True)  # fmt: skip
        return best_of(
            lambda: subprocess.run([REGSWEEP, "scan", "--db", str(db), f"oci:{tmp}:latest"],
                                   check=True, capture_output=True), 3)  # fmt: skip


def product(repeat: int) -> str:
    """The product-command section of the report."""
    rootfs = debian_rootfs("amd64")
    layouts = [
        _layout("bookworm-x5", lambda: _copies(rootfs, 5), 6),
        _layout("executables-1g", lambda: _executables(rootfs), 6),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.lmdb"
        adv = REPO / "tests/data/advisories"
        subprocess.run([REGSWEEP, "db", "build", "--db", str(db), str(adv / "osv"),
                        str(adv / "secdb")], check=True, capture_output=True)  # fmt: skip
        start = startup(db)
        scans = []
        for layout in layouts:
            runs = [product_scan(layout, db) for _ in range(repeat)]
            scans.append((layout, min(runs, key=lambda r: r.wall)))
    lines = [
        "### `regsweep scan` on real big layers",
        "",
        "| image | blob MB | tar MB | executables MB | scan wall s | CPU s | peak RSS MB | "
        r"packages | error records | `zcat \| tar -t` s | scan / zcat | floor / zcat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    checks = []
    for layout, r in scans:
        ratio = r.wall / r.zcat
        lines.append(
            f"| {layout.name} | {layout.blob.stat().st_size / 1e6:.0f} | "
            f"{layout.tar_bytes / 1e6:.0f} | {layout.executables / 1e6:.0f} | {r.wall:.2f} | "
            f"{r.cpu:.2f} | {r.rss_mb:.0f} | {r.packages} | {r.errors} | {r.zcat:.2f} | "
            f"{ratio:.2f} | {(r.inflate + start) / r.zcat:.2f} |"
        )
        checks.append(
            f"- {layout.name}: peak RSS {r.rss_mb:.0f} MB (target ≤ {T_RSS_MB:.0f}: "
            f"{'met' if r.rss_mb <= T_RSS_MB else '**not met**'}); scan / zcat|tar "
            f"{ratio:.2f} (target ≤ {T_RATIO}: {'met' if ratio <= T_RATIO else '**not met**'})"
        )
    lines += [
        "",
        f"Best of {repeat} by wall time; each scan is a fresh process (start-up and the index "
        "opened included), every analyzer on; `zcat | tar -t` best of 2. Floor: ISA-L "
        "decompression of the blob alone (no digest, no diff_id, no tar, no analysis; "
        f"best of 2) plus the start-up of `regsweep scan` on a tiny image ({start:.2f} s): "
        "what no scan by this process can go below.",
        "",
        *checks,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Build or take the blob, time each reader, print and record the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blob", type=Path)
    parser.add_argument("--source", type=Path, default=Path("/usr/share"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-product", action="store_true")
    args = parser.parse_args()
    product_section = "" if args.no_product else product(args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        blob = args.blob or build_blob(args.source, Path(tmp))
        # Digest, diff_id, tar size and entries in one untimed pass, as `regsweep bench
        # layers` reads a layer before timing it.
        info = benchmark.inspect_layer(blob)
        digest, diff_id, size, entries = info.digest, info.diff_id, info.tar_bytes, info.entries

        def ours() -> None:
            with blob.open("rb") as f:
                scan_layer(f, media_type=GZIP, digest=digest, diff_id=diff_id, analyzers=[])

        def stdlib() -> None:
            with tarfile.open(blob, mode="r|gz") as tar:
                for _ in tar:
                    pass

        def zcat_tar() -> None:
            subprocess.run(f"zcat '{blob}' | tar -t > /dev/null", shell=True, check=True)

        # What `regsweep bench layers BLOB` prints: every analyzer on, beside its floor.
        measured = [("gzip", benchmark.measure_layer(info, args.repeat))]
        rows = [
            ("regsweep scan_layer, no analyzer (digest + diff_id)", best_of(ours, args.repeat)),
            ("`regsweep bench layers`: scan_layer, every analyzer", measured[0][1].product.seconds),
            ("`regsweep bench layers` floor: decompress + walk, one thread",
             measured[0][1].floor.seconds),
        ]  # fmt: skip
        rows.append(("isal raw decompression", best_of(lambda: raw_isal(blob), args.repeat)))
        if shutil.which("zcat") and shutil.which("tar"):
            rows.append(("zcat | tar -t", best_of(zcat_tar, args.repeat)))
        rows.append(("stdlib tarfile r|gz", best_of(stdlib, 1)))
        if shutil.which("zstd") and shutil.which("zcat"):
            zst = Path(tmp) / "layer.tar.zst"
            subprocess.run(f"zcat '{blob}' | zstd -3 -T0 -q -o '{zst}'", shell=True, check=True)
            zst_info = benchmark.inspect_layer(zst)

            def ours_zstd() -> None:
                with zst.open("rb") as f:
                    scan_layer(
                        f, media_type=ZSTD, digest=zst_info.digest, diff_id=diff_id, analyzers=[]
                    )

            def zstdcat_tar() -> None:
                subprocess.run(f"zstdcat '{zst}' | tar -t > /dev/null", shell=True, check=True)

            measured.append(("zstd -3", benchmark.measure_layer(zst_info, args.repeat)))
            rows += [
                ("regsweep scan_layer, no analyzer, same tar as zstd -3",
                 best_of(ours_zstd, args.repeat)),
                ("`regsweep bench layers`: every analyzer, zstd -3",
                 measured[1][1].product.seconds),
                ("`regsweep bench layers` floor, zstd -3", measured[1][1].floor.seconds),
                ("zstdcat | tar -t", best_of(zstdcat_tar, args.repeat)),
            ]  # fmt: skip
        peak_mib = bench.peak_rss_mb()
        compressed = blob.stat().st_size
    lines = [
        "## Layer streaming (bench_layers)",
        "",
        product_section,
        "### One big blob: `scan_layer` alone and with every analyzer, beside the floors",
        "",
        f"Blob: {compressed / 1e6:.0f} MB gzip, {size / 1e6:.0f} MB tar, {entries} entries "
        f"({'given blob' if args.blob else f'tar of {args.source} | gzip -6'}).",
        "",
        "| reader | wall s | MB/s (uncompressed) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {secs:.2f} | {size / secs / 1e6:.0f} |" for name, secs in rows]
    ratio = rows[0][1] / next((s for n, s in rows if n.startswith("zcat")), float("nan"))
    lines += [
        "",
        f"scan wall (no analyzer) / zcat|tar wall = {ratio:.2f} (target <= 0.35); "
        f"peak RSS of the benchmark process {peak_mib:.0f} MB.",
        "",
        *(
            f"- `regsweep bench layers`, {name}: product / floor **{m.ratio:.2f}×** "
            f"(CPU {m.cpu_ratio:.2f}×); "
            f"{m.product.mb_per_s:.0f} MB/s and {m.product.files_per_s:,.0f} files/s "
            f"({m.files:,} files), {m.packages} packages found"
            for name, m in measured
        ),
        "",
        "Command: `python -m benchmarks.bench_layers "
        + (f"--blob {args.blob}" if args.blob else f"--source {args.source}")
        + f" --repeat {args.repeat}"
        + (" --no-product" if args.no_product else "")
        + "`",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("bench_layers", body)


if __name__ == "__main__":
    main()
