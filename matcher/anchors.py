"""Whether a buffer holds any of a set of byte literals: the prefilter of file scanning.

``AnchorSet(anchors).search(data)`` answers in one pass over ``data`` (the compiled
``_anchors`` module); ``PureAnchorSet`` is the reference with the same behaviour, one
``in`` per literal, selected by ``REGSWEEP_PURE_PYTHON=1`` (``regsweep.matcher._pure``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from regsweep.matcher._pure import PURE_PYTHON

__all__ = ["AnchorSet", "Anchors", "PureAnchorSet"]


class Anchors(Protocol):
    """A set of byte literals to look for."""

    anchors: tuple[bytes, ...]

    def search(self, data: bytes) -> bool:
        """Whether ``data`` holds any of the anchors."""
        ...


class PureAnchorSet:
    """The reference: one substring search per literal."""

    def __init__(self, anchors: Iterable[bytes]) -> None:
        self.anchors = tuple(anchors)
        if any(len(a) < 2 for a in self.anchors):
            raise ValueError("an anchor is shorter than 2 bytes")

    def search(self, data: bytes) -> bool:
        """Whether ``data`` holds any of the anchors."""
        return any(a in data for a in self.anchors)


def AnchorSet(anchors: Iterable[bytes]) -> Anchors:  # noqa: N802 - a class to its callers
    """The compiled set, or the reference under ``REGSWEEP_PURE_PYTHON=1``."""
    if PURE_PYTHON:
        return PureAnchorSet(anchors)
    from regsweep.matcher._anchors import AnchorSet as Compiled

    return Compiled(anchors)
