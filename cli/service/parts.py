"""The service's output: NDJSON parts, rotated by size and time, each renamed into place
when complete (issue 17, items 5 and 6).

Layout::

    ROOT/.regsweep-parts.lock                       flock: one writer per ROOT
    ROOT/dt=YYYY-MM-DD/part-000001.ndjson           complete parts (or .ndjson.zst)
    ROOT/dt=YYYY-MM-DD/.part-000002.ndjson.tmp      the part being written

``dt=`` is the UTC date when the part was opened; the number is one sequence across all
``dt=`` directories that continues after a restart. A reader globbing ``**/*.ndjson`` (or
``**/*.ndjson.zst``) sees complete parts only: the part being written has a hidden name
ending in ``.tmp`` and appears by ``rename`` once it is sealed (``fsync`` of the file, the
rename, ``fsync`` of the directory). With compression, the plain temporary part is
compressed at sealing into a temporary ``.zst`` which is then renamed: the final part is an
ordinary zstd file that DuckDB and ``zstdcat`` read.

Never lose or double a line. The caller owns the durable record of what it has done (the
state store); a ``Cursor`` is the output position, committed in the same transaction::

    cur = writer.write(lines)          # the bytes are in the file (no user-space buffer)
    txn.put(b"out", cur.encode()); txn.commit()   # with what those lines stand for
    writer.committed(cur)              # only now may the part be sealed

After ``kill -9`` at any point, ``open(last committed cursor)`` truncates the temporary part
to the cursor (the uncommitted tail goes; the caller redoes that work) and removes anything
else left half-done. A part is sealed only when every byte in it is committed, because a
sealed part is final: sealing an uncommitted line and then redoing its work would write it
twice. The guarantee is for the process dying; surviving a power loss also needs the
caller's commits to be ``fsync``-ed after the part's bytes (``write`` does not ``fsync``,
which would cost a disk flush per unit).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog
import zstandard

from regsweep.crawler.outfile import OutputBusy, OutputError, sync_dir, write_error

__all__ = ["LOCK_NAME", "Cursor", "PartWriter"]

#: The lock file in ROOT that a writer holds (``flock``) while it is open.
LOCK_NAME = ".regsweep-parts.lock"

_log = structlog.get_logger("regsweep.cli.service.parts")

_DAY = 86_400
_DIR = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_FINAL = re.compile(r"part-(\d{6,})\.ndjson(?:\.zst)?")
_TEMP = re.compile(r"\.part-(\d{6,})\.ndjson(\.zst)?\.tmp")
# After a failed seal (disk full), the next attempt waits this long: sealing a big part
# means reading (and compressing) all of it, too much to retry after every unit.
_SEAL_RETRY = 10.0
_ZSTD_LEVEL = 3


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    """The committed output position: ``offset`` bytes of part number ``part`` (in
    ``dt=day``). Encoded as a short JSON array, readable when inspecting the state store."""

    #: Sequence number of the part being written (0: no part yet).
    part: int
    #: Its ``dt=`` date, ``YYYY-MM-DD`` (UTC); empty when there is no part yet.
    day: str
    #: How many bytes of it are committed (always a whole number of lines).
    offset: int

    def encode(self) -> bytes:
        """The bytes to store with the caller's commit."""
        return _ENCODER.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> Cursor:
        """The cursor ``encode`` gave; ``msgspec.DecodeError`` when ``raw`` is not one."""
        return _DECODER.decode(raw)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Cursor)
_NOTHING = Cursor(0, "", 0)


class _Part:
    """The temporary part being written (or salvaged at recovery)."""

    __slots__ = ("committed", "day", "deadline", "dir", "fd", "seq", "size", "temp")

    def __init__(self, seq: int, day: str, directory: Path, fd: int, size: int) -> None:
        self.seq = seq
        self.day = day
        self.dir = directory
        self.temp = directory / _temp_name(seq)
        self.fd = fd
        #: Bytes written (the file may hold more after a failed write: they are ignored).
        self.size = size
        #: Bytes the caller has committed.
        self.committed = size
        #: When it is due by age or by the end of its UTC day (whichever is first).
        self.deadline = float("inf")


def _temp_name(seq: int) -> str:
    return f".part-{seq:06d}.ndjson.tmp"


def _utc_day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class PartWriter:
    """Writes NDJSON units into rotated parts under ``root`` (see the module's docstring).

    A part is sealed once everything in it is committed and it is due: ``max_bytes``
    reached, ``max_seconds`` old, or its UTC date over. ``clock`` (seconds since the
    epoch) is injectable for tests. Failed writes are ``OutputError``s naming the file.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = 64 << 20,
        max_seconds: float = 600.0,
        compress: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.compress = compress
        self._clock = clock
        self._lock_fd: int | None = None
        self._part: _Part | None = None
        self._next = 1
        # The position when no part is open (the end of the last sealed one): what an
        # empty write returns, so that a unit with no lines still has a cursor to commit.
        self._last = _NOTHING
        self._retry_at = 0.0

    # -- opening and recovery ---------------------------------------------------------

    def open(self, committed: Cursor | None) -> None:
        """Lock ``root`` and recover from a previous run, given the last cursor the caller
        committed (None: nothing ever committed). Raises ``OutputBusy`` when another writer
        holds ``root``, ``OutputError`` when it cannot be written."""
        if self._lock_fd is not None:
            raise RuntimeError("PartWriter is already open")
        lock = self.root / LOCK_NAME
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise write_error(lock, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(
                f"{self.root} is being written by another regsweep (it holds the lock on "
                f"{lock}); stop it or give this one another output directory"
            ) from None
        self._lock_fd = fd
        try:
            self._recover(committed)
        except BaseException:
            self._unlock()
            raise

    def _scan(self) -> tuple[dict[int, Path], list[tuple[int, bool, Path]]]:
        """The complete parts by number, and the temporary files (number, is .zst, path)."""
        finals: dict[int, Path] = {}
        temps: list[tuple[int, bool, Path]] = []
        with os.scandir(self.root) as days:
            dirs = [Path(d.path) for d in days if _DIR.fullmatch(d.name) and d.is_dir()]
        for d in dirs:
            with os.scandir(d) as entries:
                for e in entries:
                    if m := _FINAL.fullmatch(e.name):
                        finals[int(m[1])] = Path(e.path)
                    elif m := _TEMP.fullmatch(e.name):
                        temps.append((int(m[1]), m[2] is not None, Path(e.path)))
        return finals, temps

    def _recover(self, committed: Cursor | None) -> None:
        cur = committed or _NOTHING
        finals, temps = self._scan()
        touched: set[Path] = set()
        salvage: list[tuple[int, Path, int | None]] = []
        for seq, zst, path in temps:
            if zst or seq in finals or seq > cur.part:
                # A compressed temporary is never the only copy (its plain source goes
                # after the rename); a plain one whose final part exists died between the
                # rename and the unlink; one past the cursor holds nothing committed.
                path.unlink()
                touched.add(path.parent)
            elif seq == cur.part:
                salvage.append((seq, path, cur.offset))
            else:
                # Before the cursor and never sealed: cannot happen (a part is opened only
                # after the previous one is sealed), but if it does, the cursor is past
                # it, so all of it was committed: keep its whole lines.
                salvage.append((seq, path, None))
        for d in touched:
            self._sync_dir(d)
        last = cur
        for seq, path, offset in sorted(salvage):
            kept = self._salvage(seq, path, offset)
            if seq == cur.part:
                last = Cursor(seq, cur.day, kept)
        if cur.offset and cur.part not in finals and all(s != cur.part for s, _, _ in salvage):
            # The committed bytes are gone (deleted by hand, or a power loss before the
            # part reached the disk): say so. The number is not reused (below): a new
            # part under it would be cut to this cursor if we died before the next commit.
            _log.warning(
                "output_part_missing", root=str(self.root), part=cur.part, offset=cur.offset
            )
        self._last = last
        # Past every complete part and the cursor's part: a new part under the cursor's
        # number would be cut to the cursor's offset if we died before the next commit.
        # At offset 0 the cursor keeps nothing of its part, so that number is free again.
        self._next = max([0, cur.part - (cur.offset == 0), *finals]) + 1

    def _salvage(self, seq: int, path: Path, offset: int | None) -> int:
        """Cut the temporary part ``path`` to its committed ``offset`` (None: all its whole
        lines) and seal it, or remove it when nothing is left; the bytes kept."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise write_error(path, exc) from None
        try:
            size = os.fstat(fd).st_size
            keep = size if offset is None else min(offset, size)
            if offset is not None and size < offset:
                _log.warning("output_part_short", path=str(path), committed=offset, found=size)
            # A committed offset ends a line; anything else (a short file, a part with
            # no cursor) is cut back to the last whole line: never a partial line.
            if keep and os.pread(fd, 1, keep - 1) != b"\n":
                head = os.pread(fd, keep, 0)
                keep = head.rfind(b"\n") + 1
            os.ftruncate(fd, keep)
        except OSError as exc:
            os.close(fd)
            raise write_error(path, exc) from None
        if not keep:
            os.close(fd)
            path.unlink()
            self._sync_dir(path.parent)
            return 0
        part = _Part(seq, path.parent.name[3:], path.parent, fd, keep)
        try:
            self._seal(part)
        except OutputError:
            os.close(fd)
            raise
        self._finish_seal(part)
        return keep

    # -- writing ----------------------------------------------------------------------

    def write(self, data: bytes) -> Cursor:
        """Append one unit's whole lines (``data`` ends with a newline) and return the
        cursor after them. The bytes are in the file when this returns (``os.pwrite``); a
        failed write leaves nothing of ``data`` counted and raises ``OutputError``. An
        empty ``data`` returns the current position."""
        part = self._part
        if not data:
            if part is None:
                return self._last
            return Cursor(part.seq, part.day, part.size)
        if data[-1] != 0x0A:
            raise ValueError("a unit written to a part must end with a newline")
        if part is None:
            part = self._start()
        elif part.committed == part.size and self._due(part):
            # Due by age while idle, and no tick came: seal before growing it further.
            self._seal_current()
            part = self._start()
        start = part.size
        try:
            # pwrite at our own offset: after a failed (partial) write the next one
            # overwrites its leftovers, and sealing cuts the file to ``size``.
            n = os.pwrite(part.fd, data, start)
            while n < len(data):
                n += os.pwrite(part.fd, data[n:], start + n)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(part.fd, start)
            raise write_error(part.temp, exc) from None
        part.size = start + len(data)
        return Cursor(part.seq, part.day, part.size)

    def committed(self, cursor: Cursor) -> None:
        """The caller has durably recorded ``cursor``: its bytes may now be sealed into a
        complete part, which happens here when the part is due and wholly committed."""
        part = self._part
        if part is None or cursor.part < part.seq:
            return  # a part already sealed
        if cursor.part > part.seq or cursor.offset > part.size:
            raise ValueError(f"{cursor} is past what was written")
        if cursor.offset > part.committed:
            part.committed = cursor.offset
        if part.committed == part.size and self._due(part):
            self._seal_current()

    def tick(self) -> None:
        """Seal the current part if it is due (by age or date) and wholly committed; the
        service calls this periodically, so that a quiet output still rotates."""
        part = self._part
        if part is not None and part.committed == part.size and self._due(part):
            self._seal_current()

    def close(self) -> None:
        """Seal the current part if all of it is committed (else leave it for the next
        ``open`` to recover), and release ``root``."""
        part = self._part
        try:
            if part is not None:
                if part.committed == part.size:
                    self._seal_current()
                else:
                    os.close(part.fd)
                    self._part = None
        finally:
            if self._part is not None:  # the seal failed: recovery finishes it
                os.close(self._part.fd)
                self._part = None
            self._unlock()

    def parts(self) -> list[Path]:
        """The complete parts, in sequence order."""
        finals, _ = self._scan()
        return [finals[k] for k in sorted(finals)]

    # -- rotation ---------------------------------------------------------------------

    def _due(self, part: _Part) -> bool:
        now = self._clock()
        return (part.size >= self.max_bytes or now >= part.deadline) and now >= self._retry_at

    def _start(self) -> _Part:
        if self._lock_fd is None:
            raise RuntimeError("PartWriter is not open")
        now = self._clock()
        day = _utc_day(now)
        directory = self.root / f"dt={day}"
        if not directory.is_dir():
            try:
                directory.mkdir(exist_ok=True)
            except OSError as exc:
                raise write_error(directory, exc) from None
            self._sync_dir(self.root)
        seq = self._next
        temp = directory / _temp_name(seq)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise write_error(temp, exc) from None
        self._next = seq + 1
        part = self._part = _Part(seq, day, directory, fd, 0)
        part.deadline = min(now + self.max_seconds, (now // _DAY + 1) * _DAY)
        return part

    def _final(self, part: _Part) -> Path:
        return part.dir / f"part-{part.seq:06d}.ndjson{'.zst' if self.compress else ''}"

    def _seal_current(self) -> None:
        part = self._part
        assert part is not None
        try:
            self._seal(part)
        except OutputError:
            self._retry_at = self._clock() + _SEAL_RETRY
            raise
        # Renamed: the part is final whatever follows.
        self._part = None
        self._last = Cursor(part.seq, part.day, part.size)
        self._finish_seal(part)

    def _seal(self, part: _Part) -> None:
        """Make ``part`` complete under its final name; on failure (``OutputError``) it is
        left as it was, temporary and open."""
        final = self._final(part)
        name = part.temp
        ztemp = part.dir / f".part-{part.seq:06d}.ndjson.zst.tmp"
        try:
            if os.fstat(part.fd).st_size != part.size:
                os.ftruncate(part.fd, part.size)  # the leftovers of a failed write
            if not self.compress:
                os.fsync(part.fd)
                name = final
                os.rename(part.temp, final)
                return
            name = ztemp
            with open(part.temp, "rb") as src, open(ztemp, "wb") as dst:
                zstandard.ZstdCompressor(level=_ZSTD_LEVEL).copy_stream(src, dst, size=part.size)
                dst.flush()
                os.fsync(dst.fileno())
            name = final
            os.rename(ztemp, final)
        except OSError as exc:
            if name == ztemp:
                with contextlib.suppress(OSError):
                    ztemp.unlink()
            raise write_error(name, exc) from None

    def _finish_seal(self, part: _Part) -> None:
        """After the rename: close, drop the plain source of a compressed part, and make
        the rename durable."""
        os.close(part.fd)
        if self.compress:
            # Left behind, it is removed at the next open (its final part exists).
            with contextlib.suppress(OSError):
                part.temp.unlink()
        self._sync_dir(part.dir)

    def _sync_dir(self, path: Path) -> None:
        try:
            sync_dir(path)
        except OSError as exc:
            raise write_error(path, exc) from None

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
