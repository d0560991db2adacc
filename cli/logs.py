"""The one place logging is configured: structlog, JSON lines on stderr.

Every log line is one JSON object (``event``, ``level``, ``timestamp`` in RFC 3339 UTC, plus
whatever ``structlog.contextvars.bound_contextvars`` bound for the task at hand: registry,
repo, digest …), encoded by msgspec. On a terminal the same events are rendered for people.
Logs never go to stdout: stdout is the NDJSON record stream.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec

LEVELS = ("debug", "info", "warning", "error")


def _encode(event: Any, **_: Any) -> bytes:
    # structlog hands the serializer extra keyword arguments (json.dumps-style); msgspec needs
    # none. Unknown objects become their str() rather than failing the log line.
    return msgspec.json.encode(event, enc_hook=str)


def configure(
    level: str = "info", *, stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog for the process: JSON on ``stream`` (stderr), or a console
    rendering when ``json`` is False (default: console only when ``stream`` is a TTY)."""
    # Imported here: structlog pulls in rich (~0.2 s), which commands that never log
    # (``regsweep match`` in a pipeline) should not pay for.
    import structlog  # noqa: PLC0415

    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    factory: Any
    if json:
        processors = [*shared, structlog.processors.JSONRenderer(serializer=_encode)]
        factory = structlog.BytesLoggerFactory(file=stream.buffer)
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer(colors=False)]
        factory = structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
