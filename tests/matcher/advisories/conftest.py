"""Fixtures for the advisory-ingest tests."""

from __future__ import annotations

import pytest

from regsweep.matcher.advisories import Advisory
from tests.matcher.advisories.helpers import by_id, load_all


@pytest.fixture(scope="session")
def synthetic() -> dict[str, Advisory]:
    """The synthetic OSV records (event combinations, severities, names) by id."""
    advisories, _ = load_all("synthetic")
    return by_id(advisories)
