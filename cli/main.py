"""The ``regsweep`` command: entry point and command groups.

Exit codes follow the scanner convention: 0 success, 1 findings at or above the failure
threshold (later commands), 2 usage errors — which includes a version that does not parse.
"""

from __future__ import annotations

import functools
import importlib
import sys
from operator import itemgetter

import click
import msgspec

from regsweep.cli import logs
from regsweep.cli.common import usage_error
from regsweep.matcher import records, versions
from regsweep.matcher.versions import InvalidVersion, Scheme

SCHEME_CHOICE = click.Choice([s.value for s in Scheme], case_sensitive=False)
_SYMBOL = {-1: "<", 0: "=", 1: ">"}


#: Subcommands imported only when they run: ``crawl`` and ``scan`` pull in aiohttp and the
#: analyzers (about 0.4 s), which ``regsweep match`` in a pipeline should not pay.
LAZY_COMMANDS = {
    "db": "regsweep.cli.db:db_group",
    "match": "regsweep.cli.match:match_command",
    "scan": "regsweep.cli.scan:scan_command",
    "crawl": "regsweep.cli.crawl:crawl_command",
    "rematch": "regsweep.cli.rematch:rematch_command",
    "serve": "regsweep.cli.serve:serve_command",
    "bench": "regsweep.cli.bench:bench_group",
}


#: Commands that never log: they skip configuring structlog (and importing it with rich).
#: A test runs each of them and checks structlog was never imported, so a log call added
#: to their code paths cannot go unconfigured (structlog's default prints to stdout).
SILENT_COMMANDS = frozenset({"match", "versions", "schema"})


class _LazyGroup(click.Group):
    """A group whose ``LAZY_COMMANDS`` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
# package_name: the version is read from the installed metadata only when asked for.
@click.version_option(package_name="regsweep", prog_name="regsweep")
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS),
    default="warning",
    show_default=True,
    help="Structured logs (JSON lines on stderr; readable on a terminal).",
)
def main(log_level: str) -> None:
    """Audit OCI container registries for vulnerable packages and risky configuration."""
    if click.get_current_context().invoked_subcommand not in SILENT_COMMANDS:
        logs.configure(log_level)


@main.group(name="versions")
def versions_group() -> None:
    """Compare, key and sort versions under a package ecosystem's version scheme."""


@versions_group.command(name="compare")
@click.argument("scheme", type=SCHEME_CHOICE)
@click.argument("a")
@click.argument("b")
def versions_compare(scheme: str, a: str, b: str) -> None:
    """Print '<', '=' or '>' as version A is older than, equal to or newer than B."""
    try:
        result = versions.compare(scheme, a, b)
    except InvalidVersion as err:
        usage_error(str(err))
    else:
        click.echo(_SYMBOL[result])


@versions_group.command(name="key")
@click.argument("scheme", type=SCHEME_CHOICE)
@click.argument("version", nargs=-1, required=True)
def versions_key(scheme: str, version: tuple[str, ...]) -> None:
    """Print each VERSION's order-preserving byte key in hex (memcmp order = version order)."""
    for v in version:
        try:
            k = versions.key(scheme, v)
        except InvalidVersion as err:
            usage_error(str(err))
        else:
            click.echo(f"{k.hex()}\t{v}")


@versions_group.command(name="sort")
@click.argument("scheme", type=SCHEME_CHOICE)
@click.argument("version", nargs=-1)
def versions_sort(scheme: str, version: tuple[str, ...]) -> None:
    """Sort VERSIONs (or one version per line on stdin) oldest first, by their keys."""
    items = list(version) or [line.strip() for line in sys.stdin if line.strip()]
    mod = versions.module(scheme)
    try:
        # An authoritative key is the order itself; otherwise only the comparator is exact.
        if mod.AUTHORITATIVE:
            keys = mod.key_many(items)
            ordered = [v for _, v in sorted(zip(keys, items, strict=True), key=itemgetter(0))]
        else:
            ordered = sorted(items, key=functools.cmp_to_key(mod.compare))
    except InvalidVersion as err:
        usage_error(str(err))
    else:
        for v in ordered:
            click.echo(v)


@main.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of the NDJSON output records (schema version 1)."""
    click.echo(msgspec.json.format(msgspec.json.encode(records.json_schema()), indent=2))


if __name__ == "__main__":  # pragma: no cover - ``python -m regsweep.cli.main``
    main()
