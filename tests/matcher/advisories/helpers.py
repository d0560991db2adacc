"""Helpers shared by the advisory-ingest tests."""

from __future__ import annotations

from pathlib import Path

from regsweep.matcher.advisories import Advisory, IngestStats, load
from tests import paths

#: ``tests/data/advisories``: real samples, synthetic and broken records (see its README).
DATA = paths.DATA / "advisories"

Loaded = tuple[list[Advisory], IngestStats]


def load_all(*paths: str | Path, include_withdrawn: bool = False) -> Loaded:
    """Load ``paths`` (relative to the fixture tree unless absolute) to the end."""
    resolved = [p if Path(p).is_absolute() else DATA / p for p in paths]
    records, stats = load(resolved, include_withdrawn=include_withdrawn)
    return list(records), stats


def by_id(advisories: list[Advisory]) -> dict[str, Advisory]:
    """Index advisories by id; fails on a duplicate so that a test never picks one at random."""
    out: dict[str, Advisory] = {}
    for adv in advisories:
        assert adv.id not in out, f"duplicate id {adv.id}"
        out[adv.id] = adv
    return out


def events(adv: Advisory, affected: int = 0, rng: int = 0) -> list[tuple[str, str]]:
    """``[(kind, version), …]`` of one range, for compact assertions."""
    return [(e.kind.value, e.version) for e in adv.affected[affected].ranges[rng].events]
