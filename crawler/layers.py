"""Layer streaming: decompress, verify, read tar headers, keep only the files analyzers want.

A layer blob is read once, front to back, and never written to disk. ``scan_layer`` hashes
the compressed bytes (checked against the descriptor digest) and the uncompressed tar (checked
against the config's ``diff_id``), inflates gzip through ISA-L and zstd through ``zstandard``
with a bounded output per call (a decompression bomb hits ``max_uncompressed`` long before it
can fill memory), and parses tar headers itself: an entry nobody wants costs one 512-byte
header and a skip, so the walk runs at decompression speed. ``collect`` then merges the
per-layer results with overlay semantics (replacement, whiteouts, opaque directories, hard
links, symlinks) into the view analyzers read.

Reading and inflating run on a helper thread, hashing the blob on another, while the caller's
thread hashes the tar and walks it (ISA-L, zstd and hashlib release the GIL), so one layer
uses two cores with a few MiB in flight. Every failure of the blob is a ``LayerError`` subclass (an
``OSError`` from the stream itself is passed through unchanged: it is the transport's, not
the layer's); bad entries *inside* a readable layer (an absolute or ``..`` path, a dangling
link, a symlink loop) are skipped and explained in ``notes``.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, BinaryIO, Final, assert_never, cast

import msgspec
import zstandard
from isal import igzip_lib

from regsweep.crawler.analyzers.interface import LayerFile
from regsweep.crawler.oci import Compression, SourceError, layer_compression, split_digest

#: Default cap on the uncompressed size of one layer: far above real layers (the largest
#: CUDA/ML layers are ~10 GB) yet a bound on the work a hostile blob can cause.
DEFAULT_MAX_UNCOMPRESSED: Final = 32 * 1024**3

#: Compressed bytes read per call: large reads keep the per-call Python cost negligible.
_READ_SIZE: Final = 1 << 20
#: Bound on the uncompressed bytes ISA-L may return per call (memory per step, not per layer).
_OUT_SIZE: Final = 1 << 20
#: Uncompressed chunks in flight between the inflating thread and the tar reader.
_QUEUE_DEPTH: Final = 4
#: Linux's own limit on symlinks followed during one path resolution.
_MAX_SYMLINKS: Final = 40

_BLOCK: Final = 512
# isal's stub declares IsalError as an instance, not a class; it is an Exception subclass.
_ISAL_ERROR: Final = cast("type[Exception]", igzip_lib.IsalError)
_WHITEOUT: Final = ".wh."
_OPAQUE: Final = ".wh..wh..opq"


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


class Captured(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A wanted regular file of one layer: its first ``cap`` bytes."""

    data: bytes
    truncated: bool = False


class LayerContents(msgspec.Struct, kw_only=True):
    """What one layer says about the paths that matter, in the order-independent form that
    ``collect`` merges (and that a layer cache could store by digest).

    ``files`` holds wanted regular files; ``symlinks`` and ``hardlinks`` hold *every* link
    (they are tiny, and a wanted path may be reached through a link whose own name no
    analyzer asks for); ``others`` and ``dirs`` hold the remaining entry paths, needed to know
    what this layer hides below it (a file replacing a directory hides its subtree).
    """

    digest: str
    files: dict[str, Captured] = {}
    symlinks: dict[str, str] = {}
    #: link path -> normalised target path (same root).
    hardlinks: dict[str, str] = {}
    #: Paths deleted in lower layers (from ``.wh.NAME`` entries).
    whiteouts: list[str] = []
    #: Directories whose lower-layer contents are hidden (``.wh..wh..opq``).
    opaque_dirs: list[str] = []
    others: set[str] = set()
    dirs: set[str] = set()
    notes: list[str] = []
    #: Uncompressed tar bytes seen (the whole stream, padding included).
    uncompressed_size: int = 0


class LayerSource(msgspec.Struct, frozen=True, kw_only=True):
    """One layer to scan: how to open its blob and what it must hash to."""

    open: Callable[[], BinaryIO]
    media_type: str
    digest: str
    diff_id: str | None = None


class MergedView(msgspec.Struct, kw_only=True):
    """The image filesystem as analyzers see it: wanted files only, links resolved."""

    files: dict[str, LayerFile] = {}
    #: Entries skipped or links left unresolved, each a sentence for an ``error`` record.
    notes: list[str] = []


# ----------------------------------------------------------------------------- decompression


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
        digest: str,
        diff_id: str | None,
        max_uncompressed: int,
    ) -> None:
        self._stream = stream
        self._compression = compression
        self._digest = digest
        self._diff_id = diff_id
        self._tar_hash = _hasher(diff_id, "layer diff_id") if diff_id is not None else None
        self._blob_hash = _BackgroundHash(digest, "layer digest")
        self._max = max_uncompressed
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
        else:
            self._source_done = True
        return chunk

    def _emit(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self._max:
            raise LayerTooLarge(
                f"layer inflates beyond the cap of {self._max} bytes (decompression bomb?)"
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
    """Accumulates one layer's entries; a later entry at the same path replaces an earlier."""

    def __init__(self, digest: str) -> None:
        self.c = LayerContents(
            digest=digest,
            files={},
            symlinks={},
            hardlinks={},
            whiteouts=[],
            opaque_dirs=[],
            others=set(),
            dirs=set(),
            notes=[],
        )

    def forget(self, path: str) -> None:
        c = self.c
        c.files.pop(path, None)
        c.symlinks.pop(path, None)
        c.hardlinks.pop(path, None)
        c.others.discard(path)
        c.dirs.discard(path)


def _read_meta(stream: _TarStream, size: int, what: str) -> bytes:
    if size > _MAX_META:
        raise CorruptLayer(f"{what} of {size} bytes in a tar stream")
    data = stream.read(size)
    if len(data) != size:
        raise CorruptLayer("tar stream truncated inside an entry")
    stream.skip(-size % _BLOCK)
    return data


def _walk_tar(chunks: Iterator[bytes], wants: Callable[[str], int | None], layer: _Layer) -> None:
    stream = _TarStream(chunks)
    c = layer.c
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
        _entry(stream, wants, layer, c, kind, raw_name, raw_link, data_size)


def _entry(
    stream: _TarStream,
    wants: Callable[[str], int | None],
    layer: _Layer,
    c: LayerContents,
    kind: int,
    raw_name: str,
    raw_link: str,
    size: int,
) -> None:
    padded = size + (-size % _BLOCK)
    path = normalize_path(raw_name)
    if path is None or not path:
        if path is None:
            c.notes.append(f"skipped tar entry {raw_name[:200]!r}: path leaves the image root")
        stream.skip(padded)
        return
    base = path.rpartition("/")[2] if _WHITEOUT in path else ""
    if base.startswith(_WHITEOUT):
        parent = path[: len(path) - len(base)].rstrip("/")
        if base == _OPAQUE:
            c.opaque_dirs.append(parent)
        else:
            victim = base[len(_WHITEOUT) :]
            if victim in ("", ".", ".."):
                c.notes.append(f"skipped malformed whiteout {path[:200]!r}")
            else:
                c.whiteouts.append(f"{parent}/{victim}" if parent else victim)
        stream.skip(padded)
        return
    if (
        path in c.others
        or path in c.dirs
        or path in c.files
        or path in c.symlinks
        or path in c.hardlinks
    ):
        layer.forget(path)  # a later entry for the same path replaces the earlier one
    if kind in _REGULAR:
        cap = wants(path)
        if cap is None:
            c.others.add(path)
            stream.skip(padded)
            return
        keep = min(size, max(cap, 0))
        data = stream.read(keep) if keep else b""
        if len(data) != keep:
            raise CorruptLayer("tar stream truncated inside an entry")
        stream.skip(padded - keep)
        c.files[path] = Captured(data=data, truncated=size > keep)
        return
    stream.skip(padded)
    if kind == 0x35:  # '5' directory
        c.dirs.add(path)
    elif kind == 0x32:  # '2' symlink: kept raw, resolved at merge time
        c.symlinks[path] = raw_link
    elif kind == 0x31:  # '1' hard link: names an earlier entry of the same root
        target = normalize_path(raw_link)
        if target is None or not target:
            c.notes.append(f"skipped hard link {path[:200]!r}: target leaves the image root")
            c.others.add(path)
            return
        cap = wants(path)
        captured = c.files.get(target)
        if cap is not None and captured is not None:
            keep = max(cap, 0)
            c.files[path] = Captured(
                data=captured.data[:keep],
                truncated=captured.truncated or len(captured.data) > keep,
            )
        else:
            c.hardlinks[path] = target
    else:
        # Devices, fifos, GNU sparse files and unknown types: present, never read.
        c.others.add(path)


def scan_layer(
    stream: BinaryIO,
    *,
    media_type: str,
    digest: str,
    diff_id: str | None,
    wants: Callable[[str], int | None],
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
) -> LayerContents:
    """Stream one layer blob and return what it holds for ``wants``.

    ``wants(path)`` is called once per regular file (normalised path) and returns the size
    cap to read, or None to skip the file at header speed. The whole blob is always read to
    its end so that ``digest`` (compressed) and ``diff_id`` (uncompressed, when given) are
    checked; any problem raises a ``LayerError`` subclass and no partial result escapes.
    """
    inflater = _Inflater(
        stream,
        compression_for(media_type),
        digest=digest,
        diff_id=diff_id,
        max_uncompressed=max_uncompressed,
    )
    layer = _Layer(digest)
    try:
        _walk_tar(iter(inflater), wants, layer)
        inflater.finish()
    except (CorruptLayer, LayerTooLarge) as exc:
        # A blob that is not the one named explains everything after it: say that first.
        blamed = inflater.blame_blob(exc)
        if blamed is exc:
            raise
        raise blamed from exc
    finally:
        inflater.shutdown()
    layer.c.uncompressed_size = inflater.total
    return layer.c


# ----------------------------------------------------------------------------- merging


class _Node(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A merged-view entry: a captured file, a symlink, or a hard link left to resolve."""

    layer: str
    file: Captured | None = None
    symlink: str | None = None


def _hidden_by(path: str, upper: LayerContents) -> bool:
    """Whether a lower entry at ``path`` is hidden by ``upper`` (replaced, whited out, under
    an opaque directory, or under a path that ``upper`` made a non-directory)."""
    if path in upper.dirs or path in upper.others or path in upper.hardlinks:
        return True
    head = path
    while True:
        head, sep, _ = head.rpartition("/")
        if not sep:
            return False
        if (
            head in upper.others
            or head in upper.files
            or head in upper.symlinks
            or head in upper.hardlinks
        ):
            return True


def _apply_deletions(merged: dict[str, _Node], upper: LayerContents) -> None:
    gone: set[str] = set()
    for victim in upper.whiteouts:
        gone.add(victim)
        prefix = victim + "/"
        gone.update(k for k in merged if k.startswith(prefix))
    for opaque in upper.opaque_dirs:
        if not opaque:
            gone.update(merged)
            continue
        prefix = opaque + "/"
        gone.update(k for k in merged if k.startswith(prefix))
    gone.update(k for k in merged if _hidden_by(k, upper))
    for key in gone:
        merged.pop(key, None)


def resolve_symlinks(path: str, symlinks: dict[str, str]) -> str | None:
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


def _capped(path: str, node: _Node, cap: int) -> LayerFile:
    assert node.file is not None
    keep = max(cap, 0)
    data = node.file.data
    return LayerFile(
        path=path,
        data=data[:keep],
        layer=node.layer,
        truncated=node.file.truncated or len(data) > keep,
    )


def _merge(
    layers: Iterable[LayerContents], wants: Callable[[str], int | None]
) -> tuple[MergedView, dict[str, int]]:
    """The merged view, plus the link targets a wanted link needs but no layer captured
    (path -> cap): ``collect`` re-reads the layers holding them."""
    merged: dict[str, _Node] = {}
    notes: list[str] = []
    missing: dict[str, int] = {}
    unresolved: list[tuple[str, str, str]] = []
    for upper in layers:
        notes.extend(f"layer {upper.digest}: {n}" for n in upper.notes)
        _apply_deletions(merged, upper)
        digest = upper.digest
        for path, captured in upper.files.items():
            merged[path] = _Node(layer=digest, file=captured)
        for path, target in upper.symlinks.items():
            merged[path] = _Node(layer=digest, symlink=target)
        for path, target in upper.hardlinks.items():
            # A hard link into a lower layer (some builders write them) takes that content.
            lower = merged.get(target)
            if lower is not None and lower.file is not None:
                merged[path] = _Node(layer=lower.layer, file=lower.file)
            elif (cap := wants(path)) is not None:
                missing[target] = max(cap, missing.get(target, 0))
                unresolved.append((digest, path, target))
    notes.extend(
        f"layer {digest}: hard link {path!r} -> {target!r}: target content not read"
        for digest, path, target in unresolved
        if path not in merged
    )
    symlinks = {p: n.symlink for p, n in merged.items() if n.symlink is not None}
    files: dict[str, LayerFile] = {}
    for path, node in merged.items():
        if node.file is not None and (cap := wants(path)) is not None:
            files[path] = _capped(path, node, cap)
    for path in symlinks:
        cap = wants(path)
        if cap is None:
            continue
        final = resolve_symlinks(path, symlinks)
        if final is None:
            notes.append(f"symlink {path!r}: too many levels of links (a loop?)")
            continue
        found = merged.get(final)
        if found is None or found.file is None:
            missing[final] = max(cap, missing.get(final, 0))
            notes.append(f"symlink {path!r} -> {final!r}: target absent or not read")
            continue
        files[path] = _capped(path, found, cap)
    return MergedView(files=files, notes=notes), missing


def merge(layers: Iterable[LayerContents], wants: Callable[[str], int | None]) -> MergedView:
    """Merge scanned layers (lowest first) with overlay semantics into what analyzers read.

    Only paths ``wants`` accepts are in the result. Symlinks and hard links whose own path
    is wanted are answered with their target's content (capped by the link path's cap) and
    the digest of the layer that wrote that content; unresolvable ones (loop, dangling,
    target never read) become notes.
    """
    return _merge(layers, wants)[0]


def collect(
    layers: Iterable[LayerSource],
    wants: Callable[[str], int | None],
    *,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
) -> MergedView:
    """Scan every layer (lowest first) and merge them: the files analyzers want, as the
    running container would see them. Raises the first layer's ``LayerError``.

    A wanted link whose target no analyzer asked for (``lib/os-release`` ->
    ``usr/lib/x/os-release``) cannot be known before the link is seen, which may be layers
    later: such targets are read in a second pass over only the layers that hold them (rare:
    most wanted links point at paths that are wanted themselves).
    """
    sources = list(layers)

    def scan(source: LayerSource, predicate: Callable[[str], int | None]) -> LayerContents:
        with source.open() as stream:
            return scan_layer(
                stream,
                media_type=source.media_type,
                digest=source.digest,
                diff_id=source.diff_id,
                wants=predicate,
                max_uncompressed=max_uncompressed,
            )

    scanned = [scan(source, wants) for source in sources]
    view, missing = _merge(scanned, wants)
    if not missing:
        return view

    def wants_targets(path: str) -> int | None:
        cap = wants(path)
        return cap if cap is not None else missing.get(path)

    holders = [i for i, c in enumerate(scanned) if not missing.keys().isdisjoint(c.others)]
    if not holders:
        return view
    for i in holders:
        scanned[i] = scan(sources[i], wants_targets)
    # Merge with the wider predicate so links resolve to the re-read targets, then keep only
    # what the analyzers asked for (the targets answer the links, not the analyzers).
    wide, _ = _merge(scanned, wants_targets)
    files = {p: f for p, f in wide.files.items() if wants(p) is not None}
    return MergedView(files=files, notes=wide.notes)
