"""Fixtures of the command tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example import advisory_index, example_image


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The make-run example layout (two platforms) and an index of the bundled samples."""
    root = tmp_path_factory.mktemp("example")
    return example_image(root / "image"), advisory_index(root / "adv.lmdb")
