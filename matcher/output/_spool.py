"""A JSON array kept on disk until the document it belongs to is finished."""

from __future__ import annotations

import shutil
import tempfile
from typing import BinaryIO

import msgspec


class Spool:
    """Items encoded as they come into an anonymous temporary file, copied out as the
    elements of a JSON array: what a streamed document must write after its big array
    costs disk, not memory."""

    def __init__(self) -> None:
        self._file: BinaryIO | None = None
        self._enc = msgspec.json.Encoder()
        self.count = 0

    def add(self, item: object) -> None:
        """Append one item (anything msgspec encodes)."""
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by copy_to
        if self.count:
            self._file.write(b",")
        self._file.write(self._enc.encode(item))
        self.count += 1

    def copy_to(self, out: BinaryIO) -> None:
        """Write the items, comma-separated (no brackets), and drop the file."""
        if self._file is None:
            return
        self._file.seek(0)
        shutil.copyfileobj(self._file, out, 1 << 20)
        self._file.close()
        self._file = None
