"""Hostile inputs made by streaming, for the tests and ``benchmarks.bench_hostile``: OCI
layouts whose one layer holds files of any size (generated piecewise, never whole in
memory), SQLite rpm databases, zip members that lie about their size, and gzip bombs
(a valid gzip stream, CRC included, of gigabytes of zeros written in megabytes).
Said once here."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"
MTIME = 1716163200

#: A 64-bit little-endian ELF header (x86-64 executable), what every Linux binary starts with.
ELF_HEADER = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 0x3E, 1)


def random_block(seed: bytes = b"regsweep", size: int = 1 << 20) -> bytes:
    """``size`` pseudo-random bytes (SHA-256 in counter mode): incompressible for gzip, whose
    window is 32 KiB, even when the block repeats."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


class Generated(io.RawIOBase):
    """A read-only stream of ``size`` bytes: ``head``, then ``fill`` repeated (cut to size)."""

    def __init__(self, size: int, fill: bytes, head: bytes = b"") -> None:
        super().__init__()
        self._size = size
        self._fill = fill
        self._head = head
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        if self._pos < len(self._head):
            piece = self._head[self._pos : self._pos + n]
        else:
            at = (self._pos - len(self._head)) % len(self._fill)
            piece = self._fill[at : at + n]
        b[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


#: One tar entry: its path and a way to open (size, stream) of its content.
Entry = tuple[str, Callable[[], tuple[int, BinaryIO]]]


def data_entry(path: str, data: bytes) -> Entry:
    """A regular file holding ``data``."""
    return path, lambda: (len(data), io.BytesIO(data))


def generated_entry(path: str, size: int, fill: bytes, head: bytes = b"") -> Entry:
    """A regular file of ``size`` bytes: ``head`` then ``fill`` repeated."""
    return path, lambda: (size, io.BufferedReader(Generated(size, fill, head), 1 << 20))


def file_entry(path: str, source: Path) -> Entry:
    """A regular file copied from ``source`` on disk, streamed."""
    return path, lambda: (source.stat().st_size, source.open("rb"))


class _Sink(io.RawIOBase):
    """Hashes what is written (the tar: its diff_id) and passes it to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self.hash = hashlib.sha256()
        self.size = 0
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.hash.update(b)
        self.size += len(b)
        self._out.write(b)
        return len(b)


class _Gzip(io.RawIOBase):
    """gzip (ISA-L level 1: the content is what matters, not the ratio) of what is written."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out
        self._z = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self._out.write(self._z.compress(b))
        return len(b)

    def close(self) -> None:
        if not self.closed:
            self._out.write(self._z.flush())
        super().close()


def _put(root: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def file_digest(path: Path) -> str:
    """``sha256:…`` of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def write_layout(
    root: Path,
    entries: Iterable[Entry],
    *,
    media_type: str = GZIP,
    blob: tuple[Path, str] | None = None,
) -> Path:
    """An OCI layout at ``root`` (tag ``latest``, linux/amd64) whose one layer is a tar of
    ``entries`` written as they come (gzip unless ``media_type`` is ``TAR``). ``blob``
    (a prepared layer file and its diff_id) replaces the tar. Returns ``root``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    part = root / "layer.part"
    if blob is not None:
        part, diff_id = blob
    else:
        with part.open("wb") as raw:
            sink_out: BinaryIO = raw
            gz = _Gzip(raw) if media_type == GZIP else None
            if gz is not None:
                sink_out = gz  # type: ignore[assignment]
            sink = _Sink(sink_out)
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for path, opener in entries:
                    size, stream = opener()
                    info = tarfile.TarInfo(path)
                    info.size, info.mode, info.mtime = size, 0o755, MTIME
                    with stream:
                        tar.addfile(info, stream)
            if gz is not None:
                gz.close()
        diff_id = "sha256:" + sink.hash.hexdigest()
    digest = file_digest(part)
    layer = blobs / digest.removeprefix("sha256:")
    size = part.stat().st_size
    part.replace(layer)
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    cfg_digest, cfg_size = _put(root, json.dumps(cfg).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest,
            "size": cfg_size,
        },
        "layers": [{"mediaType": media_type, "digest": digest, "size": size}],
    }
    man_digest, man_size = _put(root, json.dumps(manifest).encode())
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": man_digest,
        "size": man_size,
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


# ----------------------------------------------------------------------------- databases


def rpm_sqlite(path: Path, size: int, blob_size: int = 64 << 10) -> Path:
    """An ``rpmdb.sqlite`` as rpm ≥ 4.16 lays it out (``Packages(hnum, blob)``, WAL mode)
    of about ``size`` bytes, whose rows hold pseudo-random blobs (not rpm headers: each is
    skipped with a note): what a hostile image can put at the path."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    fill = random_block(b"rpmdb", blob_size * 4)
    rows = max(1, size // blob_size)
    with con:
        for i in range(rows):
            at = (i * 4099) % (3 * blob_size)
            con.execute("INSERT INTO Packages (blob) VALUES (?)", (fill[at : at + blob_size],))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path


def dpkg_status(size: int) -> Iterator[bytes]:
    """About ``size`` bytes of a well-formed dpkg status file: distinct installed packages
    with the fields and Description a real one has, in 1 MiB pieces."""
    body = (
        "Status: install ok installed\nPriority: optional\nSection: libs\n"
        "Installed-Size: 1234\nMaintainer: Debian Maintainers <debian@example.org>\n"
        "Architecture: amd64\nMulti-Arch: same\nSource: hostile-src (1.0-1)\n"
        "Version: 1.0-1+b1\nDepends: libc6 (>= 2.34)\n"
        "Description: a package of a hostile status file\n"
        + " A long description, as real packages have, that goes on for a few lines\n" * 8
        + "\n"
    )
    out: list[str] = []
    have = n = 0
    while have < size:
        para = f"Package: hostile-{n}\n{body}"
        out.append(para)
        have += len(para)
        n += 1
        if len(out) >= 2000:
            yield "".join(out).encode()
            out = []
    if out:
        yield "".join(out).encode()


# ----------------------------------------------------------------------------- zip lies


def lying_jar(inflated: int, declared: int) -> bytes:
    """A JAR whose one nested archive (``BOOT-INF/lib/big.jar``) declares ``declared``
    uncompressed bytes but deflates to ``inflated`` zeros (a valid CRC of the real bytes):
    small on disk, a member that lies about its size."""
    deflate, crc = _deflate_zeros(inflated, raw=True)
    name = b"BOOT-INF/lib/big.jar"
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflate), declared, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflate), declared, len(name), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    cd_start = len(local) + len(name) + len(deflate)
    cd = central + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), cd_start, 0)
    return local + name + deflate + cd + end


# ----------------------------------------------------------------------------- gzip bombs

_CRC_POLY = 0xEDB88320


def _gf2_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_zeros(crc: int, n: int) -> int:
    """``zlib.crc32(bytes(n), crc)`` in O(log n): zlib's crc32_combine operator for ``n``
    zero bytes, applied to ``crc`` (the CRC register is pre- and post-inverted)."""
    if n <= 0:
        return crc
    # The operator for one zero bit, then squared up to one byte (8 bits).
    odd = [_CRC_POLY] + [1 << k for k in range(31)]
    even = _gf2_square(odd)  # two bits
    odd = _gf2_square(even)  # four bits
    reg = crc ^ 0xFFFFFFFF
    while True:
        even = _gf2_square(odd)
        if n & 1:
            reg = _gf2_times(even, reg)
        n >>= 1
        if not n:
            break
        odd = _gf2_square(even)
        if n & 1:
            reg = _gf2_times(odd, reg)
        n >>= 1
        if not n:
            break
    return reg ^ 0xFFFFFFFF


#: Zeros per repeated deflate segment (a segment after a full flush encodes them the same).
_SEGMENT = 1 << 20


def _deflate_segments(prefix: bytes, zeros: int) -> tuple[bytes, bytes, int, bytes]:
    """(head, segment, count, tail): raw deflate of ``prefix`` + ``zeros`` zero bytes as
    head + segment × count + tail, each segment ``_SEGMENT`` zeros after a full flush."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(prefix) + z.flush(zlib.Z_FULL_FLUSH)
    block = bytes(_SEGMENT)
    first = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    segment = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor forgets everything: equal input, equal output.
    assert z.compress(block) + z.flush(zlib.Z_FULL_FLUSH) == segment
    count, rest = divmod(zeros, _SEGMENT)
    tail = z.compress(bytes(rest)) + z.flush()
    if count:
        head += first
        count -= 1
    return head, segment, count, tail


def _deflate_zeros(n: int, *, raw: bool) -> tuple[bytes, int]:
    head, segment, count, tail = _deflate_segments(b"", n)
    assert raw
    return head + segment * count + tail, crc32_zeros(0, n)


def gzip_bomb(out: BinaryIO, zeros: int, name: str = "var/cache/zeros") -> tuple[int, str]:
    """Write to ``out`` a valid gzip layer whose tar holds one file of ``zeros`` zero bytes
    (a tar header, the zeros, the end-of-archive blocks): megabytes on disk for gigabytes
    inflated. Returns (uncompressed size, diff_id); the diff_id is computed by streaming
    the tar's bytes through sha256 (slow for tens of GB: tests use small bombs)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = zeros, 0o644, MTIME
    header = info.tobuf(tarfile.GNU_FORMAT)
    pad = -zeros % 512
    trailer_zeros = pad + 1024  # padding, then two zero blocks end the archive
    total = len(header) + zeros + trailer_zeros
    head, segment, count, tail = _deflate_segments(header, zeros + trailer_zeros)
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    out.write(head)
    for _ in range(count):
        out.write(segment)
    out.write(tail)
    crc = crc32_zeros(zlib.crc32(header), zeros + trailer_zeros)
    out.write(struct.pack("<II", crc, total & 0xFFFFFFFF))
    return total, _zeros_diff_id(header, zeros + trailer_zeros)


def _zeros_diff_id(header: bytes, zeros: int) -> str:
    h = hashlib.sha256(header)
    block = bytes(1 << 20)
    full, rest = divmod(zeros, len(block))
    for _ in range(full):
        h.update(block)
    h.update(bytes(rest))
    return "sha256:" + h.hexdigest()
