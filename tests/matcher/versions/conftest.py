"""Fixtures for the version-scheme tests: every test runs against both implementations."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from regsweep.matcher.versions.interface import SchemeModule

IMPLEMENTATIONS = ("compiled", "pure")


def load(scheme: str, impl: str) -> SchemeModule:
    """Import ``regsweep.matcher.versions.<impl>.<scheme>`` directly (no env switch)."""
    mod: SchemeModule = importlib.import_module(f"regsweep.matcher.versions.{impl}.{scheme}")  # type: ignore[assignment]
    return mod


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> str:
    """``"compiled"`` or ``"pure"``: the suite is run once under each (as py-lmdb does)."""
    return str(request.param)


@pytest.fixture
def scheme_loader(impl: str) -> Callable[[str], SchemeModule]:
    """``scheme_loader("dpkg")`` → the dpkg module of the implementation under test."""
    return lambda scheme: load(scheme, impl)


_OPS = {"<": -1, "=": 0, ">": 1, "==": 0}
_VECTOR = re.compile(r"^(\S+)\s+(<|=|==|>)\s+(\S+)\s*$")


def read_vectors(path: Path) -> Iterator[tuple[str, int, str, int]]:
    """Yield ``(a, expected, b, line_number)`` from an ``A OP B`` vector file (``#`` comments).

    Lines whose operator is not ``<``, ``=`` or ``>`` are the caller's business (apk has
    more operators): they are skipped here.
    """
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _VECTOR.match(line)
        if m:
            yield m.group(1), _OPS[m.group(2)], m.group(3), n
