"""Type stub of ``_api.pyx``: the Python-facing half shared by every compiled scheme."""

from collections.abc import Callable, Sequence
from typing import Any

class SchemeFunctions:
    """The public functions of one compiled scheme, bound to its C part."""

    @property
    def name(self) -> str:
        """The scheme's name, as ``InvalidVersion.scheme`` reports it."""

    @property
    def module(self) -> str:
        """The scheme module whose functions these are."""

    def __init__(self, capsule: Any, module: str, reasons: tuple[str | None, ...]) -> None:
        """Bind to the ``SchemeSpec`` in ``capsule`` (made by ``export``)."""

    def compare(self, a: str, b: str, /) -> int:
        """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""

    def key(self, v: str, /) -> bytes:
        """Return the byte key of ``v`` (memcmp order is version order)."""

    def compare_many(self, a: Sequence[str], b: Sequence[str], /) -> list[int]:
        """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""

    def key_many(self, vs: Sequence[str], /) -> list[bytes]:
        """Return ``[key(v) for v in vs]``."""

def export(
    capsule: Any, module: str, reasons: tuple[str | None, ...] = ...
) -> tuple[
    Callable[[str, str], int],
    Callable[[str], bytes],
    Callable[[Sequence[str], Sequence[str]], list[int]],
    Callable[[Sequence[str]], list[bytes]],
]:
    """Return ``(compare, key, compare_many, key_many)`` for the scheme in ``capsule``."""
