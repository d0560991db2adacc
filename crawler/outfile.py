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
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["OutputBusy", "OutputError", "PartialFile", "partial_path"]


class OutputError(Exception):
    """The output file could not be written (its name and the system's reason)."""


class OutputBusy(OutputError):
    """Another run is writing the same output file."""


class _Checked(io.BufferedRandom):
    """The partial file's stream: a failed write or flush is an ``OutputError`` naming the
    file, wherever it happens (a sink's write, a checkpoint's flush, the close)."""

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise _failed(self.name, exc) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise _failed(self.name, exc) from None


def _failed(name: object, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {name}: {exc.strerror or exc}")


def partial_path(path: Path) -> Path:
    """Where a run writes ``path`` until it is complete."""
    return path.with_name(path.name + ".partial")


class PartialFile:
    """``FILE.partial`` opened for appending and locked; ``fh`` is its buffered stream (its
    failed writes raise ``OutputError``); ``commit`` renames it onto ``FILE``, ``close``
    leaves it where it is."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.fh: BinaryIO = self._open_locked()

    def _open_locked(self) -> BinaryIO:
        while True:
            try:
                # "a+": created, never truncated before the lock is ours.
                raw = io.FileIO(self.partial, "a+")
            except OSError as exc:
                raise _failed(self.partial, exc) from None
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
            raise _failed(self.partial, exc) from None

    def commit(self) -> None:
        """The result is complete: make it durable, rename it onto ``FILE`` (replacing the
        previous result in one step), make the rename durable, release the lock."""
        self.sync()
        try:
            os.replace(self.partial, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
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
