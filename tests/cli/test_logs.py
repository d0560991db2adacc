"""Logging: JSON lines with context on stderr, nothing on stdout."""

from __future__ import annotations

import io
from collections.abc import Iterator

import msgspec
import pytest
import structlog

from regsweep.cli import logs


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    # configure() is process-wide: leave the next test the defaults it expects.
    yield
    structlog.reset_defaults()


class _Stream(io.StringIO):
    """A text stream with a bytes buffer, like sys.stderr, and no TTY."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = io.BytesIO()

    @property
    def buffer(self) -> io.BytesIO:  # type: ignore[override]
        return self._buf


def test_json_lines_carry_level_timestamp_and_bound_context() -> None:
    """Each event is one JSON object with the contextvars bound for the task."""
    stream = _Stream()
    logs.configure("info", stream=stream, json=True)
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(registry="127.0.0.1:5000", digest="sha256:ab"):
        log.info("image_scanned", packages=12)
    log.debug("hidden")  # below the level: not written
    lines = stream.buffer.getvalue().splitlines()
    assert len(lines) == 1
    event = msgspec.json.decode(lines[0])
    assert event["event"] == "image_scanned" and event["level"] == "info"
    assert event["registry"] == "127.0.0.1:5000" and event["packages"] == 12
    assert event["timestamp"].endswith("Z")


def test_console_rendering_when_not_json() -> None:
    """On a terminal the same event is a readable line, not JSON."""
    stream = _Stream()
    logs.configure("info", stream=stream, json=False)
    structlog.get_logger().warning("slow_registry", host="127.0.0.1")
    text = stream.getvalue()
    assert "slow_registry" in text and "host=127.0.0.1" in text and not text.startswith("{")
