"""Layer streaming: decompress, verify, read tar headers, hand wanted files to the analyzers.

A layer blob is read once, front to back, and never written to disk. ``scan_layer`` hashes
the compressed bytes (checked against the descriptor digest) and the uncompressed tar (checked
against the config's ``diff_id``), inflates gzip through ISA-L and zstd through ``zstandard``
with a bounded output per call (a decompression bomb hits the cap on inflated bytes,
``MAX_EXPANSION`` times the blob's size, long before it can fill memory or take long), and
parses tar headers itself: an entry nobody wants costs one 512-byte header and a skip, so
the walk runs at decompression speed. A wanted file's bytes go to the analyzers' readers as
they pass (a small database is buffered up to its cap within a shared ``Budget``; a dpkg
status is parsed as it streams; an archive or an SQLite database too large for memory is
spooled to a temporary file; an executable is searched in a sliding window), and the
layer's result is what they found: ``LayerFacts``, small whatever the layer, cached by
digest and shared by every image built on the layer. ``merge`` applies the layers' facts
with overlay semantics (replacement, whiteouts, opaque directories, hard links, symlinks)
into the view the analyzers' ``assemble`` reads.

Reading and inflating run on a helper thread, hashing the blob on another, while the caller's
thread hashes the tar and walks it (ISA-L, zstd and hashlib release the GIL), so one layer
uses two cores with a few MiB in flight. Every failure of the blob is a ``LayerError`` subclass
(an ``OSError`` from the stream itself is passed through unchanged: it is the transport's, not
the layer's); bad entries *inside* a readable layer (an absolute or ``..`` path, a malformed
whiteout) are skipped and explained in ``notes``. Links whose targets no analyzer reads are
normal (usrmerge's ``bin -> usr/bin``): they are followed when a path is asked for, and say
nothing otherwise.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from datetime import datetime
from typing import IO, BinaryIO, Final, assert_never, cast

import msgspec
import structlog
import zstandard
from isal import igzip_lib

from regsweep.crawler.analyzers.interface import (
    Analyzer,
    Budget,
    FileFacts,
    FileReader,
    Found,
    owner_relevant,
)
from regsweep.crawler.oci import Compression, SourceError, layer_compression, split_digest

#: Default cap on the uncompressed size of one layer: far above real layers (the largest
#: CUDA/ML layers are ~10 GB) yet a bound on the work a hostile blob can cause.
DEFAULT_MAX_UNCOMPRESSED: Final = 32 * 1024**3
#: Uncompressed bytes a layer may hold per byte of its blob (as its descriptor sizes it:
#: the local sources check that size before streaming; a descriptor claiming more than its
#: blob only loosens the cap, up to the absolute one). Real layers are far below it,
#: measured here: a Debian rootfs is 2.7x under gzip -6 and 3.2x under zstd -3, Python's
#: library 3.3x, /usr/share/doc 1.6x, Go binaries 2.5x; text-heavy trees (logs, JSON) stay
#: under 10x. A gzip bomb of zeros is ~1000x (deflate's limit): refused after 100x its
#: blob, a 40 MB one in 4 s, where the absolute cap alone let it inflate 32 GiB first (47 s
#: here; 80 s of CPU as the reliability campaign measured it).
MAX_EXPANSION: Final = 100
#: What any layer may inflate to, however small its blob: room for the few real layers that
#: are mostly zeros (a ``lastlog`` of a high UID, a preallocated file: hundreds of MB that
#: gzip takes to a few hundred KB), at the cost of about a second of inflating a bomb.
MIN_UNCOMPRESSED_CAP: Final = 1 << 30

#: Compressed bytes read per call: large reads keep the per-call Python cost negligible.
_READ_SIZE: Final = 1 << 20
#: Bound on the uncompressed bytes ISA-L may return per call (memory per step, not per layer).
_OUT_SIZE: Final = 1 << 20
#: Uncompressed chunks in flight between the inflating thread and the tar reader.
_QUEUE_DEPTH: Final = 4
#: Linux's own limit on symlinks followed during one path resolution.
_MAX_SYMLINKS: Final = 40
#: Notes one layer keeps; more are counted in a last note.
_MAX_NOTES: Final = 50

_BLOCK: Final = 512
# isal's stub declares IsalError as an instance, not a class; it is an Exception subclass.
_ISAL_ERROR: Final = cast("type[Exception]", igzip_lib.IsalError)
_WHITEOUT: Final = ".wh."
_OPAQUE: Final = ".wh..wh..opq"
_log = structlog.get_logger("regsweep.crawler.layers")


class LayerError(Exception):
    """Base of every error about one layer blob: the layer cannot be trusted or read."""


class UnsupportedMediaType(LayerError):
    """The layer's media type names a format regsweep cannot read."""


class DigestMismatch(LayerError):
    """The compressed blob does not hash to its descriptor digest (or the digest is not a
    verifiable sha256/sha512 one)."""


class DiffIdMismatch(LayerError):
    """The uncompressed tar does not hash to the config's ``diff_id``."""


class CorruptLayer(LayerError):
    """Truncated or corrupt gzip/zstd data, or a tar stream that is not a valid archive."""


class LayerTooLarge(LayerError):
    """The layer inflates beyond the expansion cap (a decompression bomb, or just too big)."""


#: The most file bytes the buffered readers of one layer scan hold at once, unless the caller
#: shares a ``Budget`` of its own (a crawl shares one across its concurrent layers): the
#: largest database or archive an analyzer buffers (rpm, Java: 256 MiB). A file past it is
#: read up to it, and the layer says so in a note.
DEFAULT_BUFFER_BUDGET: Final = 256 << 20


class HardLink(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """A wanted hard link whose target an earlier layer wrote (same-layer links are
    resolved while scanning): it takes that file's facts when the layers are merged."""

    path: str
    target: str
    #: The analyzers that want ``path``.
    analyzers: tuple[str, ...]


class LayerFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What one layer means to the analyzers, the same for every image that shares it, and
    stored by (layer digest, analyzer set). Its size follows what the analyzers read (a
    few hundred files for a Debian rootfs: 76 KB encoded), not the layer's bytes.

    It holds the analyzers' facts about its files and the paths that matter for overlay:
    the files it writes that analyzers read (they replace lower ones at the same path), its
    symlinks, cross-layer hard links, whiteouts and opaque directories. Not kept: the paths
    of files no analyzer reads, devices, and directories (those that hold something kept
    are known from their contents). So a lower file or link stays visible in one case
    where overlayfs would hide it: when this layer puts an unread file, a device or an
    empty directory at its path or at a parent's.
    """

    digest: str
    #: ``state.analyzer_set_hash`` of the analyzers that read it.
    analyzers: str
    #: Compressed size of the blob.
    size: int = 0
    #: Uncompressed tar bytes (the whole stream).
    uncompressed_size: int = 0
    #: The uncompressed tar's digest, when a diff_id was given and the tar matched it: an
    #: image whose config names another diff_id for this blob is told so from the cache.
    diff_id: str | None = None
    found: list[Found] = []
    #: Every regular file an analyzer read (whatever it found in it).
    present: list[str] = []
    symlinks: dict[str, str] = {}
    hardlinks: list[HardLink] = []
    #: Paths deleted in lower layers (from ``.wh.NAME`` entries).
    whiteouts: list[str] = []
    #: Directories whose lower-layer contents are hidden (``.wh..wh..opq``).
    opaque_dirs: list[str] = []
    #: Entries skipped and what could not be read, each a sentence for an ``error`` record.
    notes: list[str] = []
    stored_at: datetime | None = None


# ----------------------------------------------------------------------------- decompression


def uncompressed_cap(size: int, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED) -> int:
    """The most a layer whose blob is ``size`` bytes may inflate to: ``MAX_EXPANSION`` times
    its blob, at least ``MIN_UNCOMPRESSED_CAP``, at most ``max_uncompressed`` (the whole cap
    when the size is unknown: 0)."""
    if size <= 0:
        return max_uncompressed
    return min(max_uncompressed, max(MIN_UNCOMPRESSED_CAP, MAX_EXPANSION * size))


def compression_for(media_type: str) -> Compression:
    """The compression of a layer of ``media_type``; ``UnsupportedMediaType`` otherwise."""
    try:
        return layer_compression(media_type)
    except SourceError as exc:
        raise UnsupportedMediaType(str(exc)) from None


def _hasher(digest: str, what: str) -> hashlib._Hash:
    try:
        algorithm, _ = split_digest(digest)
    except SourceError as exc:
        raise DigestMismatch(f"{what}: {exc}") from None
    return hashlib.new(algorithm)


class _BackgroundHash:
    """A digest fed from one thread and computed on another: hashlib releases the GIL, so
    hashing the compressed blob costs the inflating thread only a queue hand-off."""

    def __init__(self, digest: str, what: str) -> None:
        self._hash = _hasher(digest, what)
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._run, name="layer-hash", daemon=True)
        self._thread.start()
        self._result: str | None = None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        """Queue ``chunk`` for hashing (blocks while the queue is full)."""
        assert self._result is None, "update after digest"
        self._queue.put(chunk)

    def digest(self) -> str:
        """``algorithm:hex`` of everything fed; stops the thread (idempotent)."""
        if self._result is None:
            self._queue.put(None)
            self._thread.join()
            self._result = f"{self._hash.name}:{self._hash.hexdigest()}"
        return self._result


class _Unhashed:
    """The blob hash of a tar that has no digest to be checked against."""

    def update(self, chunk: bytes) -> None:
        """Nothing to hash."""

    def digest(self) -> None:
        """Nothing hashed (equal to the digest the tar does not have)."""


class _ZstdFrames:
    """Walks zstd frame and block headers (RFC 8878) over the compressed bytes, to tell a
    complete stream from a truncated one: one 3-byte header per block of up to 128 KiB, so
    it costs next to nothing. The decompressor checks everything inside the blocks."""

    def __init__(self) -> None:
        self._carry = b""
        self._need = 4
        self._skip = 0
        self._state = "magic"
        self._checksum = False
        self._frames = 0

    def feed(self, data: bytes) -> None:
        """Advance over ``data``; raises ``CorruptLayer`` on a header no zstd writer makes."""
        pos, n = 0, len(data)
        while True:
            if self._skip:
                take = min(self._skip, n - pos)
                pos += take
                self._skip -= take
                if self._skip:
                    return
            need = self._need - len(self._carry)
            if n - pos < need:
                self._carry += data[pos:]
                return
            field = self._carry + data[pos : pos + need]
            pos += need
            self._carry = b""
            self._step(field)

    def _step(self, field: bytes) -> None:
        value = int.from_bytes(field, "little")
        if self._state == "magic":
            if value == 0xFD2FB528:
                self._state, self._need = "descriptor", 1
            elif 0x184D2A50 <= value <= 0x184D2A5F:
                self._state, self._need = "skippable", 4
            else:
                raise CorruptLayer("not a zstd frame (bad magic number)")
        elif self._state == "skippable":
            self._skip, self._state, self._need = value, "magic", 4
            self._frames += 1
        elif self._state == "descriptor":
            if value & 0x08:
                raise CorruptLayer("zstd frame header has its reserved bit set")
            single = (value >> 5) & 1
            fcs = (0 if not single else 1, 2, 4, 8)[value >> 6]
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + fcs
            self._checksum = bool(value & 0x04)
            self._state, self._need = "block", 3
        else:
            block_type, size = (value >> 1) & 3, value >> 3
            if block_type == 3:
                raise CorruptLayer("zstd block of the reserved type")
            # An RLE block stores one byte however long it expands.
            self._skip = 1 if block_type == 1 else size
            if value & 1:  # last block of the frame
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
                self._frames += 1

    def finish(self) -> None:
        """Raise ``CorruptLayer`` unless the input ended exactly after a whole frame."""
        if self._state != "magic" or self._carry or self._skip:
            raise CorruptLayer("zstd stream truncated")
        if not self._frames:
            raise CorruptLayer("empty zstd layer")


class _Inflater:
    """Reads a blob, hashes it, and yields its uncompressed bytes in bounded chunks.

    Reading and inflating run on a helper thread (the blob hash on a third), and hashing the
    tar plus parsing it on the caller's: ISA-L, zstd and hashlib release the GIL, so a layer
    uses two cores. The queues are short, so memory stays a few MiB whatever the layer.
    """

    def __init__(
        self,
        stream: BinaryIO,
        compression: Compression,
        *,
        digest: str | None,
        diff_id: str | None,
        max_uncompressed: int,
        size: int = 0,
    ) -> None:
        self._stream = stream
        self._compression = compression
        self._digest = digest
        self._diff_id = diff_id
        self._tar_hash = _hasher(diff_id, "layer diff_id") if diff_id is not None else None
        # No digest (a directory tarred on the fly): nothing to hash or check.
        self._blob_hash: _BackgroundHash | _Unhashed = (
            _Unhashed() if digest is None else _BackgroundHash(digest, "layer digest")
        )
        self._max = max_uncompressed
        self._size = size
        #: Compressed bytes read so far.
        self._blob_read = 0
        self.total = 0
        self._source_done = False
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="layer-inflate", daemon=True)
        self._thread.start()
        self._it = self._consume()

    def __iter__(self) -> Iterator[bytes]:
        return self._it

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for chunk in self._chunks():
                if not self._put(chunk):
                    return
        except BaseException as exc:  # forwarded to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(None)

    def _consume(self) -> Iterator[bytes]:
        tar_hash = self._tar_hash
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if tar_hash is not None:
                tar_hash.update(item)
            yield item

    def close(self) -> None:
        """Stop the inflating thread (after an error, or once drained); idempotent."""
        self._stop.set()
        self._thread.join()

    def shutdown(self) -> None:
        """Stop every helper thread, whatever happened; idempotent."""
        self.close()
        self._blob_hash.digest()

    def _read(self) -> bytes:
        chunk = self._stream.read(_READ_SIZE)
        if chunk:
            self._blob_hash.update(chunk)
            self._blob_read += len(chunk)
        else:
            self._source_done = True
        return chunk

    def _emit(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self._max:
            ratio = f", {MAX_EXPANSION}x its {self._size}-byte blob" if self._size else ""
            raise LayerTooLarge(
                f"layer inflates beyond the cap of {self._max} bytes{ratio} (decompression bomb?)"
            )
        # The same ratio against the bytes read so far: a descriptor that overstates its
        # blob (a registry's manifest says what it likes) does not buy a bomb more room.
        if self.total > MIN_UNCOMPRESSED_CAP and self.total > MAX_EXPANSION * self._blob_read:
            raise LayerTooLarge(
                f"layer inflates to {self.total} bytes from the first {self._blob_read} bytes "
                f"of its blob, over {MAX_EXPANSION}x (decompression bomb?)"
            )
        return out

    def _chunks(self) -> Iterator[bytes]:
        """The uncompressed stream; raises ``CorruptLayer`` on truncated/corrupt data."""
        match self._compression:
            case Compression.NONE:
                while chunk := self._read():
                    yield self._emit(chunk)
            case Compression.GZIP:
                yield from self._gzip()
            case Compression.ZSTD:
                yield from self._zstd()
            case _:
                assert_never(self._compression)

    def _gzip(self) -> Iterator[bytes]:
        pending = self._read()
        if not pending:
            raise CorruptLayer("empty gzip layer")
        while True:
            # One decompressor per gzip member: pigz and some registries write several.
            dec = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
            while not dec.eof:
                try:
                    if dec.needs_input:
                        if not pending:
                            pending = self._read()
                            if not pending:
                                raise CorruptLayer("gzip stream truncated")
                        out = dec.decompress(pending, _OUT_SIZE)
                        pending = b""
                    else:
                        out = dec.decompress(b"", _OUT_SIZE)
                except _ISAL_ERROR as exc:
                    raise CorruptLayer(f"corrupt gzip data: {exc}") from None
                if out:
                    yield self._emit(out)
            pending = dec.unused_data or self._read()
            if not pending:
                return
            if not pending.startswith(b"\x1f\x8b"):
                if pending.strip(b"\0") == b"" and self._drain_zeros():
                    return  # zero padding after the last member, as tape-era tools wrote
                raise CorruptLayer("trailing data after the gzip stream")

    def _drain_zeros(self) -> bool:
        while chunk := self._read():
            if chunk.strip(b"\0"):
                return False
        return True

    def _zstd(self) -> Iterator[bytes]:
        # ``stream_reader`` bounds each read's output (a bomb cannot fill memory in one call)
        # but stops quietly on a truncated frame, so the frame walker watches the input.
        frames = _ZstdFrames()

        class _Tap:
            @staticmethod
            def read(_size: int = -1) -> bytes:
                chunk = self._read()
                frames.feed(chunk)
                return chunk

        reader = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", _Tap()), read_size=_READ_SIZE, read_across_frames=True
        )
        try:
            while out := reader.read(_OUT_SIZE):
                yield self._emit(out)
        except zstandard.ZstdError as exc:
            raise CorruptLayer(f"corrupt zstd data: {exc}") from None
        frames.finish()

    def finish(self) -> None:
        """Drain what is left, then check both digests (``DigestMismatch``, ``DiffIdMismatch``)."""
        for _ in self._it:
            pass
        self.close()
        self._check_blob()
        if self._tar_hash is not None:
            actual = f"{self._tar_hash.name}:{self._tar_hash.hexdigest()}"
            if actual != self._diff_id:
                raise DiffIdMismatch(
                    f"uncompressed layer hashes to {actual}, config diff_id is {self._diff_id}"
                )

    def _check_blob(self) -> None:
        while not self._source_done:
            self._read()
        actual = self._blob_hash.digest()
        if actual != self._digest:
            raise DigestMismatch(f"layer blob hashes to {actual}, descriptor says {self._digest}")

    def blame_blob(self, exc: LayerError) -> LayerError:
        """For an error found mid-stream: a digest mismatch is the truer cause when the blob
        is not the one named (a flipped byte shows up as corrupt gzip first)."""
        self.close()
        try:
            self._check_blob()
        except DigestMismatch as mismatch:
            mismatch.__cause__ = exc
            return mismatch
        except OSError:
            return exc
        return exc


# ----------------------------------------------------------------------------- tar reading

_ZERO_BLOCK: Final = bytes(_BLOCK)
#: Typeflags of entries whose size field does not announce data (Go's archive/tar and
#: tarfile both ignore it): hard link, symlink, char/block device, directory, fifo.
_HEADER_ONLY: Final = frozenset(b"123456")
_REGULAR: Final = frozenset(b"07\0")
#: A GNU long name or a PAX header beyond this is not a path but an attack on memory.
_MAX_META: Final = 1 << 20


class _TarStream:
    """Exact reads and fast skips over a chunked byte stream."""

    __slots__ = ("_buf", "_chunks", "_pos")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; b"" if the stream ends cleanly first and nothing was read."""
        buf, pos = self._buf, self._pos
        end = pos + n
        if end <= len(buf):
            self._pos = end
            return buf[pos:end]
        parts = [buf[pos:]]
        have = len(buf) - pos
        while True:
            chunk = next(self._chunks, None)
            if chunk is None:
                if have == 0:
                    self._buf, self._pos = b"", 0
                    return b""
                raise CorruptLayer("tar stream truncated inside an entry")
            need = n - have
            if len(chunk) >= need:
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                return b"".join(parts)
            parts.append(chunk)
            have += len(chunk)

    def piece(self, n: int) -> bytes:
        """The next at most ``n`` bytes (n > 0) as they lie in the stream's chunks: at least
        one byte, without joining chunks."""
        if self._pos >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                raise CorruptLayer("tar stream truncated inside an entry")
            self._buf, self._pos = chunk, 0
        buf, pos = self._buf, self._pos
        end = min(len(buf), pos + n)
        self._pos = end
        return buf if pos == 0 and end == len(buf) else buf[pos:end]

    def skip(self, n: int) -> None:
        """Drop ``n`` bytes without copying them."""
        rem = len(self._buf) - self._pos
        if n <= rem:
            self._pos += n
            return
        n -= rem
        for chunk in self._chunks:
            if n <= len(chunk):
                self._buf, self._pos = chunk, n
                return
            n -= len(chunk)
        raise CorruptLayer("tar stream truncated inside an entry")


def _number(field: bytes) -> int:
    """A tar numeric field: NUL/space-terminated octal, or GNU base-256 for large values."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise CorruptLayer("negative number in a tar header")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits:
        return 0
    try:
        return int(digits, 8)
    except ValueError:
        raise CorruptLayer(f"bad number {field!r} in a tar header (not a tar stream?)") from None


def _checksum_ok(header: bytes) -> bool:
    stored = _number(header[148:156])
    # The checksum field counts as eight spaces (8 * 0x20 = 256).
    unsigned = sum(header) - sum(header[148:156]) + 256
    if stored == unsigned:
        return True
    # Some old tars summed signed chars.
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    return stored == signed


def _text(raw: bytes) -> str:
    # Tar names are bytes; PAX says UTF-8. A non-UTF-8 name is decoded with replacement
    # characters so that the paths stay printable in NDJSON (analyzers want ASCII names).
    return raw.decode("utf-8", "replace")


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _pax_records(data: bytes) -> dict[str, str]:
    """Parse ``LEN key=value\\n`` records (POSIX pax extended header)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # NUL padding some writers leave
        space = data.find(b" ", pos)
        if space < 0:
            raise CorruptLayer("malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptLayer("malformed pax header length") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1] != 0x0A:
            raise CorruptLayer("malformed pax header record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise CorruptLayer("malformed pax header record (no '=')")
        out[_text(key)] = _text(value)
        pos = end
    return out


def normalize_path(raw: str) -> str | None:
    """The path relative to the image root: leading ``/`` and ``./`` dropped, ``.`` and empty
    components removed, ``..`` applied. None when ``..`` would climb above the root: such an
    entry is refused (as containerd does), never clamped onto some other file."""
    if ".." not in raw and "//" not in raw and "/." not in raw:
        path = raw.strip("/")
        if path.startswith("./"):
            path = path[2:]
        return "" if path == "." else path
    parts: list[str] = []
    for comp in raw.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(comp)
    return "/".join(parts)


class _Layer:
    """Accumulates one layer's facts while its tar streams by; a later entry at the same
    path replaces an earlier one."""

    def __init__(self, digest: str, analyzers: Sequence[Analyzer], budget: Budget) -> None:
        self.digest = digest
        self.analyzers = analyzers
        self.budget = budget
        self.found: dict[str, list[Found]] = {}
        self.present: set[str] = set()
        self.symlinks: dict[str, str] = {}
        self.hardlinks: dict[str, HardLink] = {}
        self.whiteouts: list[str] = []
        self.opaque_dirs: list[str] = []
        self.notes: list[str] = []
        self._dropped_notes = 0
        #: Hashes of the paths of every regular file of the layer so far: tells a hard link
        #: to an unread file of this layer from one into a lower layer (transient, a few
        #: bytes a file; a clash only costs a cross-layer link its note).
        self.seen: set[int] = set()

    def note(self, text: str) -> None:
        """Record a note; past ``_MAX_NOTES`` they are counted (a hostile layer can fail on
        every entry)."""
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(text)
        else:
            self._dropped_notes += 1

    def wanting(self, path: str) -> list[tuple[Analyzer, int]]:
        """The analyzers that read ``path`` and how many bytes each asks for."""
        return [(a, cap) for a in self.analyzers if (cap := a.wants(path)) is not None]

    def forget(self, path: str) -> None:
        self.found.pop(path, None)
        self.present.discard(path)
        self.symlinks.pop(path, None)
        self.hardlinks.pop(path, None)

    def keep_owners(self, facts: FileFacts) -> FileFacts:
        """``facts`` with only the owned paths an analyzer may ask about (a full Debian
        lists ~100k files; the owner of a file no analyzer reads is never looked up)."""
        owners = {
            p: n
            for p, n in facts.owners.items()
            if owner_relevant(p, any(a.wants(p) is not None for a in self.analyzers))
        }
        return msgspec.structs.replace(facts, owners=owners)

    def read(
        self, stream: _TarStream, path: str, size: int, wanting: list[tuple[Analyzer, int]]
    ) -> int:
        """Hand a regular file's bytes to the analyzers that want it (``wanting``); returns
        how many bytes of the entry were consumed (the rest is skipped at header speed)."""
        # One share of the budget per file, taken before any reader holds a byte: a file
        # two buffering analyzers want cannot wait for a share it holds itself.
        want = max((min(cap, size) for a, cap in wanting if a.buffers(path)), default=0)
        held = self.budget.take(want) if want else 0
        readers: list[tuple[Analyzer, FileReader]] = []
        try:
            for analyzer, cap in wanting:
                if not analyzer.buffers(path):
                    readers.append((analyzer, analyzer.open(path, size, cap)))
                    continue
                if held < min(cap, size):
                    self.note(
                        f"{path[:200]!r}: {size} bytes, past the buffer budget of "
                        f"{self.budget.total}: {analyzer.NAME} read only its first {held}"
                    )
                readers.append((analyzer, analyzer.open(path, size, min(cap, held))))
            live = [r for _, r in readers]
            left = size
            while left and live:
                piece = stream.piece(left)
                left -= len(piece)
                live = [r for r in live if r.feed(piece)]
            found = []
            for analyzer, reader in readers:
                facts = reader.close()
                if facts is None:
                    continue
                if facts.owners:
                    facts = self.keep_owners(facts)
                found.append(
                    Found(analyzer=analyzer.NAME, path=path, layer=self.digest, size=size,
                          facts=facts)
                )  # fmt: skip
        finally:
            if held:
                self.budget.give(held)
        self.present.add(path)
        if found:
            self.found[path] = found
        return size - left

    def link(self, path: str, target: str) -> None:
        """A hard link: the facts of its target when this layer wrote it, a cross-layer link
        resolved when the layers are merged when it did not."""
        wanting = [a.NAME for a, _ in self.wanting(path)]
        if not wanting:
            return
        self.present.add(path)
        if target in self.present:
            have = {f.analyzer: f for f in self.found.get(target, ())}
            copies = [_moved(have[name], path) for name in wanting if name in have]
            if copies:
                self.found[path] = copies
            readers = {a.NAME for a, _ in self.wanting(target)}
            unread = [name for name in wanting if name not in readers]
        elif hash(target) in self.seen:
            unread = wanting
        else:
            self.hardlinks[path] = HardLink(path=path, target=target, analyzers=tuple(wanting))
            return
        if unread:
            # The content went by under a name these analyzers do not read, and the
            # stream does not come back (pnpm's store hard-links every package.json):
            # what it holds is not known, so say so.
            self.note(
                f"hard link {path[:200]!r} -> {target[:200]!r}: its content went by under "
                f"a name {', '.join(unread)} do not read; not analysed"
            )

    def facts(
        self, analyzers: str, size: int, uncompressed: int, diff_id: str | None
    ) -> LayerFacts:
        """The layer's facts, sorted (equal layers encode equally)."""
        return LayerFacts(
            digest=self.digest,
            analyzers=analyzers,
            size=size,
            uncompressed_size=uncompressed,
            diff_id=diff_id,
            found=[f for path in sorted(self.found) for f in self.found[path]],
            present=sorted(self.present),
            symlinks=dict(sorted(self.symlinks.items())),
            hardlinks=[self.hardlinks[p] for p in sorted(self.hardlinks)],
            whiteouts=sorted(set(self.whiteouts)),
            opaque_dirs=sorted(set(self.opaque_dirs)),
            notes=self.notes
            + ([f"{self._dropped_notes} more notes left out"] if self._dropped_notes else []),
        )


def _moved(found: Found, path: str) -> Found:
    """Facts read under one path, told about another (a hard link to the same file): paths
    that name the file or something inside it (a nested archive, ``outer!/inner``) move
    with it, and so do hints under its directory (a lockfile's installed manifests)."""
    old = found.path
    old_dir, new_dir = old.rpartition("/")[0], path.rpartition("/")[0]

    def moved(p: str | None) -> str | None:
        if p == old:
            return path
        if p is not None and p.startswith(old + "!/"):
            return path + p[len(old) :]
        return p

    def hint(h: str) -> str:
        if old_dir and h.startswith(old_dir + "/"):
            return f"{new_dir}/{h[len(old_dir) + 1 :]}" if new_dir else h[len(old_dir) + 1 :]
        if not old_dir and new_dir:
            return f"{new_dir}/{h}"
        return h

    facts = found.facts
    packages = tuple(msgspec.structs.replace(p, path=moved(p.path)) for p in facts.packages)
    facts = msgspec.structs.replace(
        facts, packages=packages, hints=tuple(hint(h) for h in facts.hints)
    )
    return msgspec.structs.replace(found, path=path, facts=facts)


def _read_meta(stream: _TarStream, size: int, what: str) -> bytes:
    if size > _MAX_META:
        raise CorruptLayer(f"{what} of {size} bytes in a tar stream")
    data = stream.read(size)
    if len(data) != size:
        raise CorruptLayer("tar stream truncated inside an entry")
    stream.skip(-size % _BLOCK)
    return data


def _walk_tar(chunks: Iterator[bytes], layer: _Layer) -> None:
    stream = _TarStream(chunks)
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = stream.read(_BLOCK)
        if not header or header == _ZERO_BLOCK:
            return  # end of archive; what follows (padding) is drained by the caller
        # The blob digest already vouches for every byte; the checksum only tells a tar from
        # garbage, which the ustar/GNU magic does too (v7 tars have no magic: check those).
        if header[257:262] != b"ustar" and not _checksum_ok(header):
            raise CorruptLayer("tar header checksum mismatch (corrupt layer or not a tar)")
        kind = header[156]
        try:
            size = int(header[124:136].strip(b"\0 ") or b"0", 8)
        except ValueError:
            size = _number(header[124:136])
        if size < 0:
            # int() takes a sign: a negative size would make the skip walk backwards.
            raise CorruptLayer("negative entry size in a tar header")
        if kind == 0x4C:  # 'L': GNU long name of the next entry
            long_name = _text(_cstring(_read_meta(stream, size, "GNU long name")))
            continue
        if kind == 0x4B:  # 'K': GNU long link target of the next entry
            long_link = _text(_cstring(_read_meta(stream, size, "GNU long link")))
            continue
        if kind == 0x78:  # 'x': pax header for the next entry
            pax = _pax_records(_read_meta(stream, size, "pax header"))
            continue
        if kind == 0x67:  # 'g': pax global header; path/size globals are not used by writers
            _read_meta(stream, size, "pax global header")
            continue
        if "size" in pax:
            # pax sizes (files >= 8 GiB) override the header, for the entry they precede.
            try:
                size = int(pax["size"])
            except ValueError:
                raise CorruptLayer("malformed pax size") from None
            if size < 0:
                raise CorruptLayer("negative entry size in a pax header")
        if long_name is not None:
            raw_name = long_name
        elif "path" in pax:
            raw_name = pax["path"]
        else:
            name = _cstring(header[0:100])
            if header[257:265] == b"ustar\x0000":
                prefix = _cstring(header[345:500])
                if prefix:
                    name = prefix + b"/" + name
            raw_name = _text(name)
        if long_link is not None:
            raw_link = long_link
        elif "linkpath" in pax:
            raw_link = pax["linkpath"]
        else:
            raw_link = _text(_cstring(header[157:257]))
        long_name = long_link = None
        pax = {}
        data_size = 0 if kind in _HEADER_ONLY else size
        _entry(stream, layer, kind, raw_name, raw_link, data_size)


def _entry(
    stream: _TarStream, layer: _Layer, kind: int, raw_name: str, raw_link: str, size: int
) -> None:
    padded = size + (-size % _BLOCK)
    path = normalize_path(raw_name)
    if path is None or not path:
        if path is None:
            layer.note(f"skipped tar entry {raw_name[:200]!r}: path leaves the image root")
        stream.skip(padded)
        return
    base = path.rpartition("/")[2] if _WHITEOUT in path else ""
    if base.startswith(_WHITEOUT):
        parent = path[: len(path) - len(base)].rstrip("/")
        if base == _OPAQUE:
            layer.opaque_dirs.append(parent)
        else:
            victim = base[len(_WHITEOUT) :]
            if victim in ("", ".", ".."):
                layer.note(f"skipped malformed whiteout {path[:200]!r}")
            else:
                layer.whiteouts.append(f"{parent}/{victim}" if parent else victim)
        stream.skip(padded)
        return
    if path in layer.present or path in layer.symlinks:
        layer.forget(path)  # a later entry for the same path replaces the earlier one
    if kind in _REGULAR:
        layer.seen.add(hash(path))
        wanting = layer.wanting(path)
        if not wanting:
            stream.skip(padded)
            return
        stream.skip(padded - layer.read(stream, path, size, wanting))
        return
    stream.skip(padded)
    if kind == 0x32:  # '2' symlink: kept raw, resolved at merge time
        layer.symlinks[path] = raw_link
    elif kind == 0x31:  # '1' hard link: names an earlier entry of the same root
        target = normalize_path(raw_link)
        if target is None or not target:
            layer.note(f"skipped hard link {path[:200]!r}: target leaves the image root")
            return
        layer.link(path, target)
    # Directories, devices, fifos, GNU sparse files and unknown types: not kept.


def scan_layer(
    stream: BinaryIO,
    *,
    media_type: str,
    digest: str | None,
    diff_id: str | None,
    analyzers: Sequence[Analyzer],
    analyzer_set: str = "",
    size: int = 0,
    budget: Budget | None = None,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
) -> LayerFacts:
    """Stream one layer blob and return what it means to ``analyzers`` (``LayerFacts``).

    Every regular file an analyzer ``wants`` is handed to it as it streams by; files nobody
    wants cost a header and a skip. The whole blob is always read to its end so that
    ``digest`` (compressed) and ``diff_id`` (uncompressed, when given) are checked; any
    problem raises a ``LayerError`` subclass and no partial result escapes. ``analyzer_set``
    and ``size`` (compressed) are recorded in the result for the cache. The tar may be at
    most ``uncompressed_cap(size, max_uncompressed)`` bytes: past it, ``LayerTooLarge``.
    ``digest`` None: a tar made here (``analyze.analyze_rootfs``), with no digest to check.
    """
    inflater = _Inflater(
        stream,
        compression_for(media_type),
        digest=digest,
        diff_id=diff_id,
        max_uncompressed=uncompressed_cap(size, max_uncompressed),
        size=size,
    )
    layer = _Layer(digest or "", analyzers, budget or Budget(DEFAULT_BUFFER_BUDGET))
    try:
        _walk_tar(iter(inflater), layer)
        inflater.finish()
    except (CorruptLayer, LayerTooLarge) as exc:
        # A blob that is not the one named explains everything after it: say that first.
        blamed = inflater.blame_blob(exc)
        if blamed is exc:
            raise
        raise blamed from exc
    finally:
        inflater.shutdown()
    # finish() checked the tar against ``diff_id``: past it, the diff_id is the tar's.
    return layer.facts(analyzer_set, size, inflater.total, diff_id)


# ----------------------------------------------------------------------------- merging


def resolve_symlinks(path: str, symlinks: Mapping[str, str]) -> str | None:
    """``path`` with every symlink component followed, as the kernel would inside the
    container's root (``..`` stops at the root, absolute targets start at it). None when more
    than 40 links are followed (a loop)."""
    pending = path.split("/")[::-1]
    out: list[str] = []
    hops = 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if out:
                out.pop()
            continue
        out.append(comp)
        target = symlinks.get("/".join(out))
        if target is None:
            continue
        hops += 1
        if hops > _MAX_SYMLINKS:
            return None
        out.pop()
        if target.startswith("/"):
            out = []
        pending.extend(target.split("/")[::-1])
    return "/".join(out)


def _hidden(key: str, gone: Set[str], dirs: Set[str], opaque: Set[str]) -> bool:
    """Whether a lower entry (a file or a link) at ``key`` is gone once a layer is applied
    on top: the layer deleted or replaced ``key`` or one of its parents (``gone``), made
    ``key`` a directory (``dirs``: it holds something, or is opaque), or made a parent
    opaque."""
    if key in gone or key in dirs:
        return True
    i = key.find("/")
    while i >= 0:
        head = key[:i]
        if head in gone or head in opaque:
            return True
        i = key.find("/", i + 1)
    return False


def _parents(paths: Iterable[str], into: set[str]) -> None:
    """Add every parent directory of ``paths`` to ``into``."""
    for path in paths:
        i = path.rfind("/")
        while i > 0:
            head = path[:i]
            if head in into:
                break
            into.add(head)
            i = path.rfind("/", 0, i)


class MergedFacts:
    """The facts visible in an image: its layers' facts merged with overlay semantics,
    lowest first (a ``FactsView`` for the analyzers' ``assemble``).

    A later layer's whiteout, opaque directory, file, symlink or hard link at a path (or at
    one of its parents) removes what lower layers had there, so a package whose database or
    metadata a later layer deleted or replaced is gone. Symlinks are kept as the image has
    them and followed when an analyzer asks for a path (``get``).
    """

    def __init__(self, layers: Sequence[LayerFacts]) -> None:
        found: dict[str, list[Found]] = {}
        symlinks: dict[str, str] = {}
        notes: list[str] = []
        for upper in layers:
            notes.extend(f"layer {upper.digest}: {n}" for n in upper.notes)
            if found or symlinks:
                _apply(upper, found, symlinks)
            for f in upper.found:
                if f.path in found and found[f.path][0].layer == upper.digest:
                    found[f.path].append(f)
                else:
                    found[f.path] = [f]
            symlinks.update(upper.symlinks)
            for link in upper.hardlinks:
                lower = found.get(link.target)
                if lower is None:
                    continue
                copies = [_moved(f, link.path) for f in lower if f.analyzer in link.analyzers]
                if copies:
                    found[link.path] = copies
        self._found = found
        self._symlinks = symlinks
        self._by_analyzer: dict[str, dict[str, Found]] | None = None
        #: What the layers could not read, as sentences for ``error`` records.
        self.notes = notes

    def found(self, analyzer: str) -> Mapping[str, Found]:
        """``analyzer``'s facts for every visible file it read, by path."""
        if self._by_analyzer is None:
            by: dict[str, dict[str, Found]] = {}
            for path, fs in self._found.items():
                for f in fs:
                    by.setdefault(f.analyzer, {})[path] = f
            self._by_analyzer = by
        return self._by_analyzer.get(analyzer, {})

    def get(self, analyzer: str, path: str) -> Found | None:
        """The facts of the file a program opening ``path`` reads (symlinks followed)."""
        real = resolve_symlinks(path, self._symlinks) if self._symlinks else path
        if real is None:
            return None
        return next((f for f in self._found.get(real, ()) if f.analyzer == analyzer), None)


def _apply(upper: LayerFacts, found: dict[str, list[Found]], symlinks: dict[str, str]) -> None:
    """Remove the lower entries that ``upper`` deletes, replaces or hides."""
    # A deleted or replaced path goes with everything below it (a directory turned into a
    # file or a symlink hides its contents).
    gone = {*upper.whiteouts, *upper.present, *upper.symlinks}
    opaque = set(upper.opaque_dirs)
    if "" in opaque:  # the root made opaque: nothing below survives
        found.clear()
        symlinks.clear()
        return
    # Where this layer has entries, their parents are directories: a lower file or symlink
    # there (a usrmerge link turned back into a directory) is replaced.
    dirs = set(opaque)
    _parents(gone, dirs)
    _parents(upper.opaque_dirs, dirs)
    for key in [k for k in found if _hidden(k, gone, dirs, opaque)]:
        del found[key]
    for key in [k for k in symlinks if _hidden(k, gone, dirs, opaque)]:
        del symlinks[key]


def merge(layers: Sequence[LayerFacts]) -> MergedFacts:
    """Merge layers' facts (lowest first) into the view ``assemble`` reads."""
    return MergedFacts(layers)
