"""``regsweep db``: build, inspect and update the advisory index."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

from regsweep.cli.common import DB_OPTION, run_async, usage_error
from regsweep.matcher import advisories
from regsweep.matcher.index import store, update
from regsweep.matcher.index.errors import AdvisoryIndexError


@click.group(name="db")
def db_group() -> None:
    """Build, inspect and update the advisory index (one LMDB file)."""


def _build(db: Path, sources: list[Path]) -> store.IndexMeta:
    records, stats = advisories.load(sources)
    meta = store.build(db, records, stats)
    click.echo(stats.report(), err=True)
    if meta.build_skipped:
        click.echo("not indexed:", err=True)
        for reason, n in sorted(meta.build_skipped.items()):
            click.echo(f"  {reason}: {n}", err=True)
    click.echo(
        f"built {db}: {meta.advisories} advisories, {meta.packages} packages, "
        f"{meta.ranges} ranges, {meta.exact_versions} listed versions",
        err=True,
    )
    return meta


@db_group.command(name="build")
@DB_OPTION
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
def db_build(db: Path, sources: tuple[Path, ...]) -> None:
    """Build the index from SOURCES: OSV files, folders or zips; Alpine/Wolfi secdb files;
    Wolfi advisory YAML documents.

    The format of each source is detected. A bad record is skipped, counted and shown; the
    new index replaces the old one atomically when the build succeeds.
    """
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        usage_error(f"no such source: {', '.join(missing)}")
    try:
        _build(db, list(sources))
    except AdvisoryIndexError as err:
        click.echo(f"regsweep: error: {err}", err=True)
        sys.exit(1)


@db_group.command(name="info")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the index meta as JSON.")
def db_info(db: Path, as_json: bool) -> None:
    """Show what the index holds: sources, counts, build time, and what was skipped."""
    try:
        with store.AdvisoryIndex(db) as index:
            meta = index.meta
    except AdvisoryIndexError as err:
        click.echo(f"regsweep: error: {err}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(msgspec.json.encode(meta).decode())
        return
    click.echo(f"index:      {db} (schema v{meta.schema_version}, built {meta.built_at})")
    click.echo(
        f"contents:   {meta.advisories} advisories, {meta.packages} packages, "
        f"{meta.ranges} ranges, {meta.exact_versions} listed versions"
    )
    if meta.ingest is not None:
        click.echo(meta.ingest.report())
    if meta.build_skipped:
        click.echo("not indexed:")
        for reason, n in sorted(meta.build_skipped.items()):
            click.echo(f"  {reason}: {n}")


@db_group.command(name="update")
@DB_OPTION
@click.option(
    "--from",
    "urls",
    multiple=True,
    required=True,
    metavar="URL",
    help="A feed URL (repeatable); pin its content with URL#sha256=HEX.",
)
def db_update(db: Path, urls: tuple[str, ...]) -> None:
    """Download the feeds (conditional GET) and rebuild the index if any changed."""
    for url in urls:
        try:
            base, _ = update.split_pin(url)
        except update.FeedError as err:
            usage_error(str(err))
        if not base.startswith(("http://", "https://")):
            usage_error(f"{url}: only http:// and https:// feeds can be downloaded")
    cache = update.feed_dir(db)
    try:
        results = run_async(update.fetch_all(list(urls), cache))
    except update.FeedError as err:
        click.echo(f"regsweep: error: {err}", err=True)
        sys.exit(1)
    for r in results:
        state = "changed" if r.changed else "unchanged"
        click.echo(f"{r.url}: HTTP {r.status}, {r.size} bytes, {state}", err=True)
    if db.exists() and not any(r.changed for r in results):
        click.echo(f"{db} is up to date", err=True)
        return
    try:
        _build(db, [r.path for r in results])
    except AdvisoryIndexError as err:
        click.echo(f"regsweep: error: {err}", err=True)
        sys.exit(1)
