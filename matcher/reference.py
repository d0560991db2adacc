"""The OSV evaluation algorithm, transcribed: slow, obviously right, used as the reference.

The index answers the same question with compiled interval tables; the differential tests
hold the two equal, and schemes whose keys are not exact re-check their candidates here.
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import SchemeModule


def in_range(mod: SchemeModule, version: str, events: Sequence[tuple[str, str]]) -> bool:
    """OSV ``IncludedInRanges`` for one range of ``(kind, version)`` events.

    Ties between events of one version apply ``introduced`` first (see
    ``intervals.EventKind``). Raises ``InvalidVersion`` when a version does not parse.
    """
    limits = [v for kind, v in events if kind == "limit"]
    if limits and not any("*" in lim or mod.compare(version, lim) < 0 for lim in limits):
        return False
    order = {"introduced": 0, "fixed": 1, "last_affected": 2}
    timeline = [(kind, v) for kind, v in events if kind in order]
    # Sort by version with the scheme's comparator ("0" introduced sorts first), then kind.
    timeline.sort(key=lambda e: order[e[0]])
    timeline = _stable_sort_by_version(mod, timeline)
    vulnerable = False
    for kind, v in timeline:
        if kind == "introduced":
            if v == "0" or mod.compare(version, v) >= 0:
                vulnerable = True
        elif kind == "fixed":
            if mod.compare(version, v) >= 0:
                vulnerable = False
        elif mod.compare(version, v) > 0:  # last_affected
            vulnerable = False
    return vulnerable


def _stable_sort_by_version(
    mod: SchemeModule, events: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    # Insertion sort with the comparator: ranges have a handful of events, and the
    # reference must not lean on the keys it is there to check.
    out: list[tuple[str, str]] = []
    for ev in events:
        i = len(out)
        while i > 0 and _before(mod, ev[1], out[i - 1][1]):
            i -= 1
        out.insert(i, ev)
    return out


def _before(mod: SchemeModule, a: str, b: str) -> bool:
    if a == "0" or b == "0":
        return a == "0" and b != "0"
    return mod.compare(a, b) < 0


def is_affected(
    mod: SchemeModule,
    version: str,
    ranges: Sequence[Sequence[tuple[str, str]]],
    versions: Sequence[str],
) -> bool:
    """OSV ``IsVulnerable`` for one affected entry: in any range, or listed in ``versions``."""
    if any(mod.compare(version, v) == 0 for v in versions):
        return True
    return any(in_range(mod, version, events) for events in ranges)
