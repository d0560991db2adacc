"""Suite-wide configuration: Hypothesis profiles and the optional ``../shared`` folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests import paths

settings.register_profile(
    "default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = paths.REPO
#: ``../shared`` beside the repo: real data that enriches tests when present (never required).
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip the test when this machine does not have it."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return path
