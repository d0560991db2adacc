"""Compile OSV range events into half-open intervals of version keys.

An OSV range is a timeline of events (``introduced``, ``fixed``, ``last_affected``,
``limit``). The spec evaluates it per queried version by folding the sorted events; here the
fold is done once, at index-build time, for every piece of the key line between two event
versions, and the affected pieces become ``[lo, hi)`` intervals of byte keys. A query is then
a bisect and a comparison of keys, with no version parsed and no event re-read.

Two facts about byte keys make every bound half-open: ``b""`` sorts before every key (it
stands for OSV's ``introduced: "0"``), and ``k + b"\\x00"`` is the immediate successor of
``k``, so ``v <= k`` is ``v < k + b"\\x00"`` (``last_affected``) and ``v > k`` is
``v >= k + b"\\x00"``. That needs keys that are exact (the scheme's ``AUTHORITATIVE``); for
other schemes the caller re-checks candidates with the comparator.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

#: The lowest key: OSV's ``introduced: "0"`` ("before any version").
MIN_KEY = b""


class EventKind(enum.IntEnum):
    """OSV event kinds. The values are the order of events that share one version.

    The spec sorts events without saying how ties break; regsweep applies ``introduced``
    before ``fixed``, so ``introduced: X, fixed: X`` affects nothing — the only reading
    under which such a record makes sense.
    """

    INTRODUCED = 0
    FIXED = 1
    LAST_AFFECTED = 2
    LIMIT = 3


#: ``(lo, hi)``: keys ``k`` with ``lo <= k < hi``; ``hi`` None is unbounded.
Interval = tuple[bytes, bytes | None]


def successor(key: bytes) -> bytes:
    """The smallest byte string greater than ``key``."""
    return key + b"\x00"


def compile_range(events: Iterable[tuple[EventKind, bytes | None]]) -> list[Interval]:
    """Return the affected intervals of one OSV range, sorted and disjoint.

    ``events`` pairs each kind with the version key; ``None`` is allowed for a ``limit`` of
    ``"*"`` (infinity). The result is exactly the set of keys the spec's ``IsVulnerable``
    fold calls vulnerable, including ``BeforeLimits``: a version must be below some limit
    when limits are given, i.e. below the largest of them.
    """
    timeline: list[tuple[bytes, EventKind]] = []
    limits: list[bytes | None] = []
    for kind, key in events:
        if kind is EventKind.LIMIT:
            limits.append(key)
        elif key is None:
            raise ValueError(f"{kind.name.lower()} event without a version key")
        else:
            timeline.append((key, kind))
    timeline.sort()

    pieces: list[Interval] = []
    vulnerable = False
    i = 0
    while i < len(timeline):
        point = timeline[i][0]
        j = i
        while j < len(timeline) and timeline[j][0] == point:
            j += 1
        at_point = after = vulnerable
        for _, kind in timeline[i:j]:
            if kind is EventKind.INTRODUCED:
                at_point = after = True
            else:
                # ``fixed`` at v applies at v itself; ``last_affected`` only above it.
                after = False
                if kind is EventKind.FIXED:
                    at_point = False
        nxt = timeline[j][0] if j < len(timeline) else None
        if at_point:
            pieces.append((point, successor(point)))
        if after and (nxt is None or successor(point) < nxt):
            pieces.append((successor(point), nxt))
        vulnerable = after
        i = j
    merged = _merge(pieces)
    if limits and None not in limits:
        cap = max(k for k in limits if k is not None)
        merged = [(lo, hi if hi is not None and hi < cap else cap) for lo, hi in merged if lo < cap]
    return merged


def _merge(pieces: Sequence[Interval]) -> list[Interval]:
    # Pieces arrive sorted by ``lo``; touching ones (hi == next lo) join into one interval.
    out: list[Interval] = []
    for lo, hi in pieces:
        if out and out[-1][1] is not None and out[-1][1] >= lo:
            prev_lo, prev_hi = out[-1]
            out[-1] = (prev_lo, None if hi is None else max(prev_hi, hi))  # type: ignore[type-var]
        else:
            out.append((lo, hi))
    return out


def contains(intervals: Sequence[Interval], key: bytes) -> bool:
    """Whether ``key`` lies in any of ``intervals`` (a linear scan; for tests and tools)."""
    return any(lo <= key and (hi is None or key < hi) for lo, hi in intervals)
