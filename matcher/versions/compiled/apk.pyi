"""Type stub of the compiled apk scheme (``apk.pyx``); semantics in ``pure/apk.py``."""

from collections.abc import Sequence

#: True: the byte key is lossless (memcmp order is apk-tools 3's version order).
AUTHORITATIVE: bool

def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""

def key(v: str, /) -> bytes:
    """Return the lossless order-preserving byte key of ``v``."""

def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""

def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
