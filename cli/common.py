"""Pieces the commands share: the ``--db`` option, usage errors, the event loop."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from regsweep.matcher.index.store import default_path

T = TypeVar("T")

DB_OPTION = click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=default_path,
    show_default="$REGSWEEP_DB or ~/.cache/regsweep/advisories.lmdb",
    help="The advisory index file.",
)


def usage_error(message: str) -> NoReturn:
    """Exit 2 with a one-line message naming the bad input (no traceback, no usage dump)."""
    click.echo(f"regsweep: error: {message}", err=True)
    sys.exit(2)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop (the project's event loop), falling back to asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this is for odd platforms
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)
