"""An ``-o FILE`` written beside its destination and put in place only when complete.

A run writes ``FILE.partial`` (same directory, so the final ``rename`` is atomic) under an
exclusive ``flock`` held for the whole run, and renames it onto ``FILE`` when the result is
complete. So:

* ``FILE`` only ever holds a complete result: a rerun does not truncate the previous one,
  and a run killed or stopped early leaves it as it was (its own work stays in
  ``FILE.partial``, where a resumable crawl picks it up);
* two runs writing the same ``FILE`` cannot interleave: the second finds the partial file
  locked and refuses (``OutputBusy``) before writing anything;
* a write that fails (disk full, quota, I/O error) is an ``OutputError`` naming the file,
  never a traceback.

Only a regular file (or a path not there yet) is written this way. A device, a FIFO or a
socket (``-o /dev/null``, ``-o /dev/stdout``, a named pipe) is written through as it is
(``special``): it cannot be replaced, and replacing it would break it. A symlink is
followed: the file it points at is the one replaced, and the link stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "OutputBusy",
    "OutputError",
    "PartialFile",
    "direct",
    "partial_path",
    "special",
    "sync_dir",
    "write_error",
]


class OutputError(Exception):
    """The output file could not be written (its name and the system's reason)."""


class OutputBusy(OutputError):
    """Another run is writing the same output file."""


class _Checked(io.BufferedRandom):
    """The partial file's stream: a failed write or flush is an ``OutputError`` naming the
    file, wherever it happens (a sink's write, a checkpoint's flush, the close)."""

    def write(self, data: Any) -> int:
        """Write, or raise ``OutputError``."""
        try:
            return super().write(data)
        except OSError as exc:
            raise write_error(self.name, exc) from None

    def flush(self) -> None:
        """Flush, or raise ``OutputError``."""
        try:
            super().flush()
        except OSError as exc:
            raise write_error(self.name, exc) from None


class _CheckedWriter(io.BufferedWriter):
    """A stream written through (standard output, a device, a FIFO): a failed write or
    flush is an ``OutputError`` naming it (``scan > /dev/full`` says so in one line)."""

    def __init__(self, raw: io.FileIO, shown: str) -> None:
        super().__init__(raw, 1 << 16)
        self.shown = shown

    def write(self, data: Any) -> int:
        """Write, or raise ``OutputError``."""
        try:
            return super().write(data)
        except OSError as exc:
            raise write_error(self.shown, exc) from None

    def flush(self) -> None:
        """Flush, or raise ``OutputError``."""
        try:
            super().flush()
        except OSError as exc:
            raise write_error(self.shown, exc) from None


def direct(path: str | os.PathLike[str] | None) -> BinaryIO:
    """Standard output (``path`` None) or a ``special`` file, written through: its failed
    writes raise ``OutputError``. Closing it leaves standard output open."""
    try:
        if path is None:
            return _CheckedWriter(io.FileIO(sys.stdout.fileno(), "w", closefd=False), "stdout")
        return _CheckedWriter(io.FileIO(path, "w"), str(path))
    except OSError as exc:
        raise write_error("stdout" if path is None else path, exc) from None


def write_error(name: object, exc: OSError) -> OutputError:
    """The one-line ``OutputError`` for a failed write of ``name`` (``cannot write NAME:
    No space left on device``)."""
    return OutputError(f"cannot write {name}: {exc.strerror or exc}")


def sync_dir(path: str | os.PathLike[str]) -> None:
    """``fsync`` the directory ``path``, so that a rename or a new entry in it survives a
    crash of the machine; raises ``OSError``."""
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names something other than a regular file once symlinks are
    followed (a device, a FIFO, a socket): an output written through, never replaced."""
    try:
        st = os.stat(path)
    except OSError:  # not there yet (or not reachable): a new file, written the usual way
        return False
    return not stat.S_ISREG(st.st_mode)


def partial_path(path: Path) -> Path:
    """Where a run writes ``path`` until it is complete."""
    return path.with_name(path.name + ".partial")


class PartialFile:
    """``FILE.partial`` opened for appending and locked; ``fh`` is its buffered stream (its
    failed writes raise ``OutputError``); ``commit`` renames it onto ``FILE``, ``close``
    leaves it where it is."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # The file a symlink points at is the one replaced: the link itself stays.
        self.path = Path(os.path.realpath(path))
        self.partial = partial_path(self.path)
        self.fh: BinaryIO = self._open_locked()

    def _open_locked(self) -> BinaryIO:
        while True:
            try:
                # "a+": created, never truncated before the lock is ours.
                raw = io.FileIO(self.partial, "a+")
            except OSError as exc:
                raise write_error(self.partial, exc) from None
            fh = _Checked(raw)
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise OutputBusy(
                    f"{self.path} is being written by another run (it holds the lock on "
                    f"{self.partial}); wait for it to finish"
                ) from None
            # The run we waited behind may have renamed the file we opened onto ``path``
            # (and another started a new one) before we got the lock: only the inode still
            # named ``.partial`` is ours to write.
            try:
                named = os.stat(self.partial)
            except FileNotFoundError:
                fh.close()
                continue
            mine = os.fstat(fh.fileno())
            if (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino):
                return fh
            fh.close()

    def sync(self) -> None:
        """Flush and ``fsync`` what was written."""
        self.fh.flush()
        try:
            os.fsync(self.fh.fileno())
        except OSError as exc:
            raise write_error(self.partial, exc) from None

    def commit(self) -> None:
        """The result is complete: make it durable, rename it onto ``FILE`` (replacing the
        previous result in one step), make the rename durable, release the lock."""
        self.sync()
        try:
            with contextlib.suppress(FileNotFoundError):
                # The new result keeps the permissions the previous one was given.
                os.chmod(self.fh.fileno(), stat.S_IMODE(os.stat(self.path).st_mode))
            os.replace(self.partial, self.path)
            sync_dir(self.path.parent)
        except OSError as exc:
            raise OutputError(
                f"cannot rename {self.partial} to {self.path}: {exc.strerror}"
            ) from None
        finally:
            self.fh.close()

    def close(self) -> None:
        """Stop without completing: the partial file stays (unlocked) for the next run."""
        if not self.fh.closed:
            # The flush of a full disk can fail again: the caller already reported it.
            with contextlib.suppress(OutputError):
                self.fh.close()
