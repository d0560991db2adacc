"""Type stub of the compiled PEP 440 scheme (same API as ``pure/pep440.py``)."""

from collections.abc import Sequence

#: Keys are lossless: key order is exactly ``compare`` order.
AUTHORITATIVE: bool

def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""

def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v``; raise ``InvalidVersion`` if it has none."""

def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i (both sequences the same length)."""

def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
