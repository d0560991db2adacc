"""Reading an executable as it streams by: patterns found and byte ranges kept by offset.

The Go and Rust analyzers never hold a whole executable. Their readers see each chunk once,
find their markers in it (a few ``bytes.find`` calls per chunk, in C), and keep only the
small ranges the markers lead to. ``Tape`` does the bookkeeping both need: absolute offsets,
matches that straddle two chunks, and ranges asked for before they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator


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

    ``window(chunk)`` returns the chunk with the last ``overlap`` bytes of the stream before
    it in front, so that a pattern up to ``overlap + 1`` bytes long is found even where a
    chunk boundary cuts it; a match is reported once (``matches``). ``want`` asks for a range
    that has not passed yet; ``window`` fills it.
    """

    def __init__(self, overlap: int) -> None:
        self.overlap = overlap
        #: Offset of the first byte the next chunk will hold (the bytes seen so far).
        self.pos = 0
        self._carry = b""
        self._spans: list[Span] = []
        self.buf = b""
        #: Offset of ``buf[0]``.
        self.base = 0
        self._fresh = 0

    def window(self, chunk: bytes) -> bytes:
        """Take the next chunk; returns ``buf`` (the overlap, then the chunk), whose first
        byte is at offset ``base``. Wanted ranges are filled from it."""
        carry = self._carry
        buf = carry + chunk if carry else chunk
        self.buf = buf
        self._fresh = len(carry)
        self.base = self.pos - len(carry)
        self.pos += len(chunk)
        self._carry = buf[-self.overlap :] if self.overlap else b""
        if self._spans:
            self._fill()
        return buf

    def matches(self, pattern: bytes) -> Iterator[int]:
        """Offsets of ``pattern`` (at most ``overlap + 1`` bytes) in the current window that
        no earlier window reported."""
        buf, fresh = self.buf, self._fresh
        i = buf.find(pattern)
        while i >= 0:
            # One that lay wholly in the carried overlap was found in the previous window.
            if i + len(pattern) > fresh:
                yield self.base + i
            i = buf.find(pattern, i + 1)

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
        buf, base = self.buf, self.base
        end = base + len(buf)
        keep: list[Span] = []
        for span in self._spans:
            at = span.start + len(span.data)
            if at < base:
                continue  # passed before it was asked for: never complete
            if at < end:
                span.data += buf[at - base : min(end, span.start + span.size) - base]
            if not span.complete:
                keep.append(span)
        self._spans = keep

    def passed(self, start: int) -> bool:
        """Whether offset ``start`` lies before the current window (it can no longer be kept)."""
        return start < self.base
