"""A file kept as it streams by, for analyzers that need to seek in it (a zip archive's
central directory is at its end, an SQLite database's pages point anywhere): in memory while
it is small, in a temporary file on disk beyond that, so that a large file costs disk, not
memory. Up to a cap: what passes the cap is not kept (the reader, which knows the file's
size, says so).

The temporary file is unnamed (``tempfile.TemporaryFile``: gone when closed, or when the
process dies) unless the reader needs a path to hand to another library (SQLite opens
databases by name); a named one lives in a private temporary directory removed on close.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from typing import IO, Final

#: Bytes a spool keeps in memory before it moves to disk. Most files analysers seek in are
#: smaller (a jar is typically tens of KiB to a few MiB); past this, memory would grow with
#: what a hostile layer decides.
SPOOL_MEMORY: Final = 4 << 20


class Spool:
    """The first ``cap`` bytes of a file, in memory up to ``memory`` bytes, else on disk."""

    __slots__ = ("_dir", "_file", "_mem", "cap", "memory", "named", "size")

    def __init__(self, cap: int, *, memory: int = SPOOL_MEMORY, named: bool = False) -> None:
        self.cap = cap
        self.memory = 0 if named else memory
        #: The bytes must end up in a file with a name (``path``).
        self.named = named
        self.size = 0
        self._mem: io.BytesIO | None = io.BytesIO()
        self._file: IO[bytes] | None = None
        self._dir: str | None = None

    def feed(self, chunk: bytes | memoryview) -> bool:
        """Keep the next bytes; False once the cap is reached (the rest is not wanted)."""
        room = self.cap - self.size
        if len(chunk) > room:
            chunk = chunk[:room]
        if chunk:
            if self._file is None and self.size + len(chunk) > self.memory:
                self._to_disk()
            if self._file is not None:
                self._file.write(chunk)
            else:
                assert self._mem is not None
                self._mem.write(chunk)
            self.size += len(chunk)
        return self.size < self.cap

    def _to_disk(self) -> None:
        if self.named:
            self._dir = tempfile.mkdtemp(prefix="regsweep-")
            self._file = open(os.path.join(self._dir, "file"), "w+b")  # noqa: SIM115
        else:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        if self._mem is not None:
            self._file.write(self._mem.getbuffer())
            self._mem = None

    @property
    def on_disk(self) -> bool:
        """Whether the bytes went to a temporary file."""
        return self._file is not None

    def file(self) -> IO[bytes]:
        """The kept bytes as a seekable binary file, at its start (valid until ``close``)."""
        if self._file is None and self.named:
            self._to_disk()
        f: IO[bytes] = self._file if self._file is not None else self._mem  # type: ignore[assignment]
        f.flush()
        f.seek(0)
        return f

    def path(self) -> str:
        """The name of the file that holds the bytes (a ``named`` spool only)."""
        assert self.named
        f = self.file()
        return f.name

    def close(self) -> None:
        """Drop the bytes (the temporary file is deleted); idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._mem = None
