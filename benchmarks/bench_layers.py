"""Layer streaming speed: regsweep's scan beside ``zcat | tar -t`` and stdlib ``tarfile``.

    python -m benchmarks.bench_layers [--blob FILE.tar.gz] [--source DIR] [--no-write]

The blob is a real gzip layer: ``--blob`` if given, else ``tar -c DIR | gzip -6`` of a real
directory tree (``/usr/share`` by default: tens of thousands of real files), written to a
temporary directory. On the same blob it times:

* ``regsweep``: ``scan_layer`` with the blob digest *and* the diff_id checked, no file
  wanted (every entry skipped at header speed), reading the blob from disk;
* ``isal raw``: ISA-L decompression alone, the floor for any gzip reader here;
* ``zcat | tar -t`` and ``tarfile`` (stream mode ``r|gz``, listing every member);
* when ``zstd`` is installed, the same tar recompressed with ``zstd -3``: ``scan_layer``
  beside ``zstdcat | tar -t``.

Rates are MB/s of *uncompressed* tar. Target (issue "Image analysis"): >= 450 MB/s per core,
scan wall <= 0.35x ``zcat | tar -t``.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from isal import igzip_lib

from benchmarks._common import best_of, write_section
from regsweep.crawler.layers import scan_layer

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


def diff_id_of(path: Path) -> str:
    """sha256 of the uncompressed tar (what the image config calls the diff_id)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        dec = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        while chunk := f.read(1 << 20):
            h.update(dec.decompress(chunk))
    return "sha256:" + h.hexdigest()


def main() -> None:
    """Build or take the blob, time each reader, print and record the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blob", type=Path)
    parser.add_argument("--source", type=Path, default=Path("/usr/share"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blob = args.blob or build_blob(args.source, Path(tmp))
        digest, diff_id = file_digest(blob), diff_id_of(blob)
        size = raw_isal(blob)
        entries = 0

        def ours() -> None:
            nonlocal entries
            with blob.open("rb") as f:
                layer = scan_layer(
                    f, media_type=GZIP, digest=digest, diff_id=diff_id, wants=lambda _: None
                )
            entries = len(layer.others) + len(layer.dirs) + len(layer.symlinks)

        def stdlib() -> None:
            with tarfile.open(blob, mode="r|gz") as tar:
                for _ in tar:
                    pass

        def zcat_tar() -> None:
            subprocess.run(f"zcat '{blob}' | tar -t > /dev/null", shell=True, check=True)

        rows = [("regsweep scan_layer (digest + diff_id)", best_of(ours, args.repeat))]
        rows.append(("isal raw decompression", best_of(lambda: raw_isal(blob), args.repeat)))
        if shutil.which("zcat") and shutil.which("tar"):
            rows.append(("zcat | tar -t", best_of(zcat_tar, args.repeat)))
        rows.append(("stdlib tarfile r|gz", best_of(stdlib, 1)))
        if shutil.which("zstd") and shutil.which("zcat"):
            zst = Path(tmp) / "layer.tar.zst"
            subprocess.run(f"zcat '{blob}' | zstd -3 -T0 -q -o '{zst}'", shell=True, check=True)
            zst_digest = file_digest(zst)

            def ours_zstd() -> None:
                with zst.open("rb") as f:
                    scan_layer(
                        f, media_type=ZSTD, digest=zst_digest, diff_id=diff_id, wants=lambda _: None
                    )

            def zstdcat_tar() -> None:
                subprocess.run(f"zstdcat '{zst}' | tar -t > /dev/null", shell=True, check=True)

            rows.append(
                ("regsweep scan_layer, same tar as zstd -3", best_of(ours_zstd, args.repeat))
            )
            rows.append(("zstdcat | tar -t", best_of(zstdcat_tar, args.repeat)))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        compressed = blob.stat().st_size
    lines = [
        "## Layer streaming (bench_layers)",
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
        f"scan wall / zcat|tar wall = {ratio:.2f} (target <= 0.35); "
        f"peak RSS of the benchmark process {peak_mib:.0f} MiB.",
        "",
        "Command: `python -m benchmarks.bench_layers "
        + (f"--blob {args.blob}" if args.blob else f"--source {args.source}")
        + f" --repeat {args.repeat}`",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("bench_layers", body)


if __name__ == "__main__":
    main()
