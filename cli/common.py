"""Pieces the commands share: the ``--db`` option, usage errors, the event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
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


class ImageProgress:
    """A live count of images done, on stderr, only when stderr is a terminal: the NDJSON
    stream on stdout and the logs of a non-interactive run never see it."""

    def __init__(self, what: str = "images scanned") -> None:
        self._what = what
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ImageProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Show the counter (a no-op unless stderr is a terminal)."""
        if sys.stderr.isatty() and self._progress is None:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.completed} " + self._what),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._what, total=None)

    def advance(self) -> None:
        """One more image done (scanned, or failed and reported)."""
        if self._progress is not None:
            self._progress.advance(self._task)

    def stop(self) -> None:
        """Remove the counter from the terminal."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


F = TypeVar("F", bound=Callable[..., Any])


def registry_access(f: F) -> F:
    """The options that reach a registry, shared by ``scan`` and ``crawl``."""
    options = [
        click.option(
            "--insecure", is_flag=True, help="Plain HTTP (or unverified TLS) for a bare HOST."
        ),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="CA bundle to verify the registry's TLS certificate.",
        ),
        click.option("--username", help="Registry user (with --password-stdin)."),
        click.option(
            "--password-stdin", is_flag=True, help="Read the registry password from stdin."
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
