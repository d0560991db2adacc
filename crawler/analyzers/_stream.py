"""Reading an executable as it streams by: patterns found and byte ranges kept by offset.

The Go and Rust analyzers never hold a whole executable. Their readers see each chunk once,
find their markers in it (a few ``bytes.find`` calls per chunk, in C), and keep only the
small ranges the markers lead to. ``Tape`` does the bookkeeping both need: absolute offsets,
matches that straddle two chunks, and ranges asked for before they arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


def literal(needle: bytes) -> re.Pattern[bytes]:
    """A pattern for ``Tape.matches`` that finds ``needle`` (which cannot overlap itself)."""
    return re.compile(re.escape(needle))


def _spans_of(pattern: re.Pattern[bytes] | bytes, data: bytes) -> Iterator[tuple[int, int]]:
    if isinstance(pattern, bytes):
        i = data.find(pattern)
        while i >= 0:
            yield i, i + len(pattern)
            i = data.find(pattern, i + 1)
    else:
        for m in pattern.finditer(data):
            yield m.span()


class Span:
    """A byte range ``[start, start + size)`` kept as the stream passes it."""

    __slots__ = ("data", "size", "start")

    def __init__(self, start: int, size: int) -> None:
        self.start = start
        self.size = size
        self.data = bytearray()

    @property
    def complete(self) -> bool:
        """Whether every byte of the range has been kept."""
        return len(self.data) >= self.size


class Tape:
    """Absolute offsets over a stream fed chunk by chunk.

    The current *window* is the last ``overlap`` bytes of the stream before the current
    chunk (``tail``), then the chunk: a pattern up to ``overlap + 1`` bytes long is found
    even where a chunk boundary cuts it, and reported once (``matches``). The window is
    never joined into one buffer: a chunk is large, the tail a few bytes. ``want`` asks for
    a range that has not passed yet; ``window`` fills it.
    """

    def __init__(self, overlap: int) -> None:
        self.overlap = overlap
        #: Offset of the first byte the next chunk will hold (the bytes seen so far).
        self.pos = 0
        self._spans: list[Span] = []
        #: The current chunk, and the offset of its first byte.
        self.chunk = b""
        self.base = 0
        #: The stream's last ``overlap`` bytes before ``chunk``.
        self.tail = b""
        self._next_tail = b""

    def window(self, chunk: bytes) -> None:
        """Take the next chunk; wanted ranges are filled from the window."""
        self.tail = self._next_tail
        self.chunk = chunk
        self.base = self.pos
        self.pos += len(chunk)
        if self.overlap:
            end = chunk[-self.overlap :]
            self._next_tail = (
                end if len(end) == self.overlap else (self.tail + end)[-self.overlap :]
            )
        if self._spans:
            self._fill()

    def matches(self, pattern: re.Pattern[bytes] | bytes) -> Iterator[int]:
        """Offsets of ``pattern``'s matches (each at most ``overlap + 1`` bytes) in the
        current window that no earlier window reported. Both searches run in C; which is
        faster depends on the needle: ``bytes.find`` skips ahead on a long needle, the regex
        engine ``memchr``s a pattern's literal first byte where ``find`` of a short needle
        crawls (``literal`` makes a pattern of a needle)."""
        tail, base = self.tail, self.base
        if tail:
            # Matches that start in the tail and end in the chunk: the tail's own were
            # found in the previous window.
            edge = tail + self.chunk[: self.overlap]
            for start, end in _spans_of(pattern, edge):
                if start < len(tail) < end:
                    yield base - len(tail) + start
        for start, _ in _spans_of(pattern, self.chunk):
            yield base + start

    def data_from(self, start: int) -> bytes | memoryview:
        """The window's bytes from offset ``start`` (in the window) to its end: a view of
        the chunk, or, for a start in the tail, a copy."""
        if start >= self.base:
            return memoryview(self.chunk)[start - self.base :]
        return self.tail[start - (self.base - len(self.tail)) :] + self.chunk

    def want(self, start: int, size: int, have: bytes = b"") -> Span:
        """Keep ``[start, start + size)``; bytes of it already in the current window are
        taken at once, later ones as they arrive. Bytes before the window are gone unless
        the caller kept them and passes them as ``have`` (the range's first bytes);
        otherwise the span stays incomplete (the caller finds them elsewhere or gives up)."""
        span = Span(start, size)
        span.data += have
        self._spans.append(span)
        self._fill()
        return span

    def grow(self, span: Span, size: int) -> None:
        """Keep more of a range asked for earlier (its length was in its first bytes)."""
        if size <= span.size:
            return
        span.size = size
        if span not in self._spans:
            self._spans.append(span)
        self._fill()

    def _fill(self) -> None:
        chunk, base, tail = self.chunk, self.base, self.tail
        start = base - len(tail)
        end = base + len(chunk)
        keep: list[Span] = []
        for span in self._spans:
            at = span.start + len(span.data)
            stop = min(end, span.start + span.size)
            if at < start:
                continue  # passed before it was asked for: never complete
            if at < base:
                span.data += tail[at - start : min(stop, base) - start]
                at = base
            if at < stop:
                span.data += chunk[at - base : stop - base]
            if not span.complete:
                keep.append(span)
        self._spans = keep
