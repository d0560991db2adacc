"""Layer scanning throughput, measured the way ``regsweep bench layers`` reports it.

``measure_layer`` times the product's layer scan (``layers.scan_layer`` with every default
analyzer: the blob digest and the diff_id checked, every wanted file read) against a floor
measured in the same run on the same blob: decompressing it and walking its tar headers,
one thread, nothing hashed, nothing read. The product reads and inflates on a helper thread
and hashes on a third, so its wall time can come in under the floor's; its CPU time says
what the extra work costs. ``python -m benchmarks.bench_layers`` calls the same functions.

``generate_layer`` writes a deterministic gzip layer of a given size, shaped like a Debian
root filesystem (packages with their documentation, shared libraries, executables, Python
and npm packages, the dpkg database), for a benchmark with no layer of one's own at hand.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Final, assert_never, cast

import msgspec
import zstandard
from isal import igzip_lib

from regsweep.crawler import layers
from regsweep.crawler.analyzers.interface import Analyzer
from regsweep.crawler.oci import Compression

__all__ = [
    "GZIP",
    "TAR",
    "ZSTD",
    "LayerBlob",
    "LayerFileError",
    "LayerPass",
    "LayerResult",
    "generate_layer",
    "inspect_layer",
    "measure_layer",
    "walk_floor",
]

GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR: Final = "application/vnd.oci.image.layer.v1.tar"

_READ: Final = 1 << 20
_BLOCK: Final = 512
_ZERO: Final = bytes(_BLOCK)
_REGULAR: Final = frozenset(b"07\0")
#: Typeflags whose size field announces no data: hard and symbolic links, devices,
#: directories, fifos.
_HEADER_ONLY: Final = frozenset(b"123456")
#: pax and GNU long-name headers: metadata of the entry that follows, not entries.
_META: Final = frozenset(b"xgLK")
# isal's stub declares IsalError as an instance, not a class; it is an Exception subclass.
_ISAL_ERROR: Final = cast("type[Exception]", igzip_lib.IsalError)


class LayerFileError(ValueError):
    """A file given as a layer that is not a tar, gzip-compressed tar or zstd-compressed tar."""


def _analyzers() -> list[Analyzer]:
    # The product's own list: a layer scan here must read exactly what ``regsweep scan``
    # reads. Imported late: it pulls in every analyzer, which ``bench matcher`` never needs.
    from regsweep.crawler.analyze import default_analyzers

    return default_analyzers()


# ----------------------------------------------------------------------------- the floor


def _inflate(read: Callable[[], bytes], compression: Compression) -> Iterator[bytes]:
    """The uncompressed bytes of a blob read by ``read``, in chunks of at most 1 MiB."""
    match compression:
        case Compression.NONE:
            while chunk := read():
                yield chunk
        case Compression.GZIP:
            yield from _gunzip(read)
        case Compression.ZSTD:

            class _Reader:
                @staticmethod
                def read(_size: int = -1) -> bytes:
                    return read()

            reader = zstandard.ZstdDecompressor().stream_reader(
                cast("IO[bytes]", _Reader()), read_size=_READ, read_across_frames=True
            )
            try:
                while out := reader.read(_READ):
                    yield out
            except zstandard.ZstdError as exc:
                raise LayerFileError(f"corrupt zstd data: {exc}") from None
        case _:
            assert_never(compression)


def _gunzip(read: Callable[[], bytes]) -> Iterator[bytes]:
    pending = read()
    while pending:
        # One decompressor per gzip member: pigz and some registries write several.
        dec = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        try:
            while not dec.eof:
                if dec.needs_input:
                    if not pending:
                        pending = read()
                        if not pending:
                            raise LayerFileError("gzip stream truncated")
                    out = dec.decompress(pending, _READ)
                    pending = b""
                else:
                    out = dec.decompress(b"", _READ)
                if out:
                    yield out
        except _ISAL_ERROR as exc:
            raise LayerFileError(f"corrupt gzip data: {exc}") from None
        pending = dec.unused_data or read()
        if pending and not pending.startswith(b"\x1f\x8b"):
            # Zero padding after the last member, as tape-era tools wrote, is not data.
            while pending and not pending.strip(b"\0"):
                pending = read()
            if pending:
                raise LayerFileError("trailing data after the gzip stream")


def _size(field: bytes) -> int:
    # Octal, NUL/space-terminated; GNU base-256 (high bit set) for files of 8 GiB and more.
    if field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    return int(digits, 8) if digits else 0


def _header_ok(header: bytes) -> bool:
    try:
        stored = _size(header[148:156])
    except ValueError:
        return False
    # The checksum field counts as eight spaces (8 * 0x20 = 256).
    return stored == sum(header) - sum(header[148:156]) + 256


def _walk(chunks: Iterator[bytes], *, check: bool) -> tuple[int, int, int]:
    """Walk tar headers over ``chunks``, skipping every entry's data: (tar bytes, entries,
    regular files). ``check`` verifies each header's checksum (``LayerFileError``)."""
    total = entries = files = 0
    skip = 0
    carry = b""
    for chunk in chunks:
        n = len(chunk)
        pos = 0
        while True:
            if skip:
                if skip >= n - pos:
                    skip -= n - pos
                    break
                pos += skip
                skip = 0
            if carry or n - pos < _BLOCK:
                # A header split across two chunks.
                take = min(_BLOCK - len(carry), n - pos)
                carry += chunk[pos : pos + take]
                pos += take
                if len(carry) < _BLOCK:
                    break
                header, carry = carry, b""
            else:
                header = chunk[pos : pos + _BLOCK]
                pos += _BLOCK
            if header == _ZERO:
                continue  # the end-of-archive blocks and the record padding after them
            if check and not _header_ok(header):
                raise LayerFileError(f"not a tar archive (bad header at byte {total + pos - 512})")
            flag = header[156]
            if flag in _META:
                skip = (_size(header[124:136]) + 511) & ~511
                continue
            entries += 1
            if flag in _REGULAR:
                files += 1
            if flag not in _HEADER_ONLY:
                skip = (_size(header[124:136]) + 511) & ~511
        total += n
    if check and (skip or carry):
        raise LayerFileError("tar stream truncated inside an entry")
    return total, entries, files


def walk_floor(path: Path, compression: Compression) -> tuple[int, int, int]:
    """The floor: decompress the blob at ``path`` and walk its tar headers, nothing else.
    Returns (tar bytes, entries, regular files)."""
    with path.open("rb") as fh:
        read = fh.read
        return _walk(_inflate(lambda: read(_READ), compression), check=False)


# ----------------------------------------------------------------------------- one layer


class LayerBlob(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A layer file, and what scanning it needs to be told (as an image's manifest and
    config would tell it)."""

    path: str
    media_type: str
    digest: str
    diff_id: str
    compressed_bytes: int
    tar_bytes: int
    entries: int
    files: int


def inspect_layer(path: Path) -> LayerBlob:
    """Read the layer file at ``path`` once, untimed: its compression (from its first
    bytes), digest, diff_id and size. Raises ``LayerFileError`` for a file that is not a
    tar, gzip tar or zstd tar, and ``OSError`` for one that cannot be read."""
    with path.open("rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        if magic[:2] == b"\x1f\x8b":
            media_type = GZIP
        elif magic == b"\x28\xb5\x2f\xfd":
            media_type = ZSTD
        else:
            media_type = TAR
        blob_hash, tar_hash = hashlib.sha256(), hashlib.sha256()

        def read() -> bytes:
            chunk = fh.read(_READ)
            blob_hash.update(chunk)
            return chunk

        def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                tar_hash.update(chunk)
                yield chunk

        compression = layers.compression_for(media_type)
        tar_bytes, entries, files = _walk(hashed(_inflate(read, compression)), check=True)
        # A decompressor may stop at the end of its stream: the digest covers every byte.
        while read():
            pass
        size = fh.tell()
    if not entries:
        raise LayerFileError(f"{path}: no tar entry in it, not a layer")
    return LayerBlob(
        path=str(path),
        media_type=media_type,
        digest="sha256:" + blob_hash.hexdigest(),
        diff_id="sha256:" + tar_hash.hexdigest(),
        compressed_bytes=size,
        tar_bytes=tar_bytes,
        entries=entries,
        files=files,
    )


class LayerPass(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One side of a comparison: the fastest of the repeated passes over the layer."""

    seconds: float
    #: User + system CPU of the whole process (every thread) during that pass.
    cpu_seconds: float
    #: Uncompressed tar megabytes (10^6 bytes) per wall second.
    mb_per_s: float
    #: Regular files of the layer per wall second.
    files_per_s: float


class LayerResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``regsweep bench layers``' figures for one layer."""

    layer: str
    media_type: str
    compressed_bytes: int
    tar_bytes: int
    entries: int
    files: int
    #: Packages the analyzers found in the layer's files (as this one layer holds them).
    packages: int
    repeat: int
    #: ``scan_layer`` with every default analyzer, digest and diff_id checked.
    product: LayerPass
    #: Decompress and walk the tar headers, one thread.
    floor: LayerPass
    #: Product seconds / floor seconds.
    ratio: float
    #: The same in CPU seconds (every thread's): what the product's extra work costs, and
    #: steadier than wall time on a shared machine.
    cpu_ratio: float


def _scan(blob: LayerBlob) -> tuple[float, float, int]:
    analyzers = _analyzers()
    with open(blob.path, "rb") as fh:
        t0, c0 = time.perf_counter(), time.process_time()
        facts = layers.scan_layer(
            fh,
            media_type=blob.media_type,
            digest=blob.digest,
            diff_id=blob.diff_id,
            analyzers=analyzers,
            size=blob.compressed_bytes,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, sum(len(f.facts.packages) for f in facts.found)


def _floor(blob: LayerBlob) -> tuple[float, float, int]:
    compression = layers.compression_for(blob.media_type)
    t0, c0 = time.perf_counter(), time.process_time()
    walk_floor(Path(blob.path), compression)
    return time.perf_counter() - t0, time.process_time() - c0, 0


def measure_layer(blob: LayerBlob, repeat: int = 3, label: str | None = None) -> LayerResult:
    """Time the product's scan and the floor on ``blob``, ``repeat`` times each, interleaved
    so both see the same machine; the fastest pass of each is kept. A blob the product
    refuses raises its ``layers.LayerError``."""
    floors: list[tuple[float, float, int]] = []
    scans: list[tuple[float, float, int]] = []
    for _ in range(repeat):
        floors.append(_floor(blob))
        scans.append(_scan(blob))

    def best(runs: list[tuple[float, float, int]]) -> LayerPass:
        wall, cpu, _ = min(runs)
        return LayerPass(
            seconds=wall,
            cpu_seconds=cpu,
            mb_per_s=blob.tar_bytes / wall / 1e6,
            files_per_s=blob.files / wall,
        )

    product, floor = best(scans), best(floors)
    return LayerResult(
        layer=label or blob.path,
        media_type=blob.media_type,
        compressed_bytes=blob.compressed_bytes,
        tar_bytes=blob.tar_bytes,
        entries=blob.entries,
        files=blob.files,
        packages=min(scans)[2],
        repeat=repeat,
        product=product,
        floor=floor,
        ratio=product.seconds / floor.seconds,
        cpu_ratio=product.cpu_seconds / floor.cpu_seconds,
    )


# ----------------------------------------------------------------------------- generation

_MTIME: Final = 1_716_163_200  # fixed: the same bytes, hence the same digest, every run
_SYLLABLES: Final = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]

_OS_RELEASE: Final = b"""\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


class _Pools:
    """Content to cut files from: English-like text (gzip takes it to about a third) and
    machine-code-like bytes (random runs between repetitive ones, about a half)."""

    def __init__(self, rng: random.Random) -> None:
        words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(2000)
        ]
        lines = []
        size = 0
        while size < 1 << 21:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + "\n"
            lines.append(line)
            size += len(line)
        self.text = "".join(lines).encode()
        parts = []
        for i in range(1 << 14):
            parts.append(rng.randbytes(256))
            parts.append(bytes([i & 0xFF, 0, 0, 0]) * 64)
        self.binary = b"".join(parts)

    def cut(self, pool: bytes, size: int, rng: random.Random) -> bytes:
        start = rng.randrange(len(pool) - size) if size < len(pool) else 0
        return pool[start : start + size]


def _log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    # File sizes spread over orders of magnitude: many small files, a few large ones.
    return int(lo * (hi / lo) ** rng.random())


class _Counted:
    """A write-only stream that counts what passes through it to ``out``."""

    def __init__(self, out: gzip.GzipFile) -> None:
        self.out = out
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return self.out.write(data)


class _LayerWriter:
    """Adds files and their parent directories to a tar stream, counting its bytes."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.dirs: set[str] = set()
        self.bytes = 0

    def _dir(self, path: str) -> None:
        parent = path.rpartition("/")[0]
        if not parent or parent in self.dirs:
            return
        self._dir(parent)
        self.dirs.add(parent)
        info = tarfile.TarInfo(parent)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
        self.tar.addfile(info)
        self.bytes += _BLOCK

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._dir(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(data), mode, _MTIME
        self.tar.addfile(info, io.BytesIO(data))
        self.bytes += _BLOCK + (len(data) + 511) // 512 * 512


def _package(w: _LayerWriter, pools: _Pools, rng: random.Random, i: int, status: list[str]) -> None:
    """One Debian package's files, its file list and its status entry."""
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) + str(i)
    version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}-{rng.randint(1, 9)}"
    files: list[str] = []

    def add(path: str, data: bytes, mode: int = 0o644) -> None:
        w.add(path, data, mode)
        files.append("/" + path)

    add(f"usr/share/doc/{name}/copyright", pools.cut(pools.text, rng.randint(600, 9000), rng))
    add(
        f"usr/share/doc/{name}/changelog.Debian.gz",
        pools.cut(pools.binary, rng.randint(400, 12000), rng),
    )
    add(
        f"usr/lib/x86_64-linux-gnu/lib{name}.so.{rng.randint(0, 9)}",
        pools.cut(pools.binary, _log_uniform(rng, 4096, 512 << 10), rng),
    )
    for k in range(rng.randint(0, 12)):
        add(
            f"usr/share/{name}/data{k}.txt",
            pools.cut(pools.text, _log_uniform(rng, 100, 32 << 10), rng),
        )
    if rng.random() < 1 / 3:
        elf = b"\x7fELF\x02\x01\x01" + bytes(57)
        body = pools.cut(pools.binary, _log_uniform(rng, 8 << 10, 1 << 20), rng)
        add(f"usr/bin/{name}", elf + body, 0o755)
    if i % 12 == 3:
        dist = f"usr/lib/python3/dist-packages/{name}-{version.split('-')[0]}.dist-info"
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version.split('-')[0]}\n\n"
        add(f"{dist}/METADATA", meta.encode() + pools.cut(pools.text, 2000, rng))
        add(f"usr/lib/python3/dist-packages/{name}/__init__.py", pools.cut(pools.text, 5000, rng))
    if i % 12 == 7:
        manifest = msgspec.json.encode({"name": name, "version": version.split("-")[0]})
        add(f"usr/lib/node_modules/{name}/package.json", manifest)
        add(f"usr/lib/node_modules/{name}/index.js", pools.cut(pools.text, 3000, rng))
    w.add(f"var/lib/dpkg/info/{name}.list", ("\n".join(files) + "\n").encode())
    status.append(
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        f"Architecture: amd64\nVersion: {version}\n"
        f"Description: generated package {i}\n {name} for the layer benchmark.\n"
    )


def generate_layer(out: BinaryIO, megabytes: int, seed: int = 20261128) -> int:
    """Write a gzip (level 6, as registries serve) tar layer of about ``megabytes`` MB of
    tar to ``out``, shaped like a Debian root filesystem; the same bytes for the same
    arguments. Returns the tar's size in bytes."""
    rng = random.Random(seed)
    pools = _Pools(rng)
    target = megabytes * 1_000_000
    # No file name in the gzip header (GzipFile takes ``out.name`` by default): the bytes
    # must not depend on where they are written.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        counted = _Counted(gz)
        with tarfile.open(
            fileobj=cast(IO[bytes], counted), mode="w|", format=tarfile.GNU_FORMAT
        ) as tar:
            w = _LayerWriter(tar)
            w.add("etc/os-release", _OS_RELEASE)
            status: list[str] = []
            i = 0
            while w.bytes < target:
                _package(w, pools, rng, i, status)
                i += 1
            w.add("var/lib/dpkg/status", "\n".join(status).encode())
    return counted.bytes
