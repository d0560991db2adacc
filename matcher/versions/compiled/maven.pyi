"""Type stub of the compiled maven scheme (``maven.pyx``); semantics in ``pure/maven.py``."""

from collections.abc import Sequence

#: False: Maven's order has cycles, so the key is only monotone (see ``pure/maven.py``).
AUTHORITATIVE: bool

def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""

def key(v: str, /) -> bytes:
    """Return the monotone byte key of ``v`` (the top-level numeric prefix)."""

def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""

def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
