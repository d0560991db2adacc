"""Key-building helpers shared by the pure-Python schemes; byte-identical to ``_keybuf.pxd``."""

from __future__ import annotations


def put_number(out: bytearray, digits: str) -> None:
    """Append the canonical key of a run of ASCII digits (numeric order, zeros stripped).

    One length byte then the digits; 255 digits or more is 0xFF plus a four-byte big-endian
    length. The empty run and zero are both the single byte 0x00.
    """
    d = digits.lstrip("0")
    n = len(d)
    if n < 0xFF:
        out.append(n)
    else:
        out.append(0xFF)
        out += n.to_bytes(4, "big")
    out += d.encode("ascii")


def cmp_bytes(a: bytes, b: bytes) -> int:
    """Return -1, 0 or 1 as ``a`` sorts before, equal to or after ``b`` (memcmp order)."""
    return (a > b) - (a < b)
