"""Type stub of the compiled composer scheme (``composer.pyx``); semantics: pure/composer.py."""

from collections.abc import Sequence

#: The byte key orders exactly as ``compare`` (``version_compare`` is a lexicographic order).
AUTHORITATIVE: bool

def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""

def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (memcmp order is version order)."""

def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""

def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
