"""``regsweep db``: build, inspect and update the advisory index."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from regsweep.cli.common import DB_OPTION, run_async, usage_error
from regsweep.matcher import advisories
from regsweep.matcher.advisories import cve
from regsweep.matcher.index import catalog, store, update
from regsweep.matcher.index.errors import AdvisoryIndexError


@click.group(name="db")
def db_group() -> None:
    """Build, inspect and update the advisory index (one LMDB file)."""


def _build(db: Path, sources: list[Path]) -> store.IndexMeta:
    cves = cve.CveSeverities()
    records, stats = advisories.load(sources, cves=cves)
    meta = store.build(db, records, stats, cves)
    click.echo(stats.report(), err=True)
    click.echo(_severity_report(meta), err=True)
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
    feeds = update.feeds_report(db)
    if as_json:
        doc: dict[str, Any] = msgspec.to_builtins(meta)
        if feeds is not None:
            doc["feeds"] = msgspec.to_builtins(feeds)
        click.echo(msgspec.json.encode(doc).decode())
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
    click.echo(_severity_report(meta))
    if feeds is not None:
        click.echo(f"feeds:      built by db update from {update.feed_dir(db)}")
        width = max(len(f.name) for f in feeds)
        for f in feeds:
            click.echo(f"  {f.name:<{width}}  {_feed_line(f)}")


def _severity_report(meta: store.IndexMeta) -> str:
    """How many CVEs the index rates, and how many advisories still lack a severity."""
    sev = meta.severity
    if sev is None:
        return "severity:   not counted (an index built before CVE ratings: rebuild it)"
    raters = ", ".join(f"{k} {n}" for k, n in sev.cve_ratings.items()) or "none"
    read = sum(sev.cve_records.values())
    lines = [
        f"severity:   {meta.cves} CVEs rated ({raters}) from {read} CVE records "
        f"({sev.rejected} rejected); {sev.unrated} advisories rate "
        f"nothing themselves, {sev.rated_by_cve} of them take a CVE's rating, "
        f"{sev.still_unrated} still lack a severity"
    ]
    lines += [f"  {src}: {n} without a severity" for src, n in sev.still_unrated_by_source.items()]
    return "\n".join(lines)


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.isoformat().replace("+00:00", "Z")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _feed_line(f: update.FeedReport) -> str:
    if f.in_index:
        line = f"{_mb(f.size)}, fetched {_when(f.fetched_at)}, checked {_when(f.checked_at)}"
    else:
        line = "NOT IN THE INDEX: no usable copy (none fetched, or none that matches its pin)"
    if f.error is not None:
        line += f"; last update FAILED at {_when(f.failed_at)}: {f.error}"
        if f.in_index:
            line += " (the index holds the copy above)"
    return line


class _DownloadBars:
    """One progress bar per feed on stderr while the feeds download, only when stderr is a
    terminal: a non-interactive run (CI, cron, a pipe) prints only the per-feed lines."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _DownloadBars:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def begin(self, name: str, total: int | None, done: int) -> None:
        """A bar for ``name``, ``done`` of ``total`` bytes already there (a resumed one)."""
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(name, total=total, completed=done)

    def advance(self, name: str, n: int) -> None:
        """``n`` more bytes of ``name``."""
        task = self._tasks.get(name)
        if task is not None:
            self._progress.advance(task, n)

    def end(self, name: str) -> None:
        """``name`` is done (its bar stays, full or not, until every feed is; the lines that
        say how each ended are printed after the bars are gone)."""


def _targets(
    urls: tuple[str, ...], mirror: str | None, ecosystems: tuple[str, ...]
) -> list[update.Target]:
    if urls:
        if mirror is not None or ecosystems:
            usage_error("--from names its own feeds: it does not go with --mirror or --ecosystem")
        # By cache file (one per URL): two downloads of one URL would write the same
        # partial file at once.
        targets: dict[str, update.Target] = {}
        for url in urls:
            try:
                target = update.target_of_url(url)
            except update.FeedError as err:
                usage_error(str(err))
            seen = targets.setdefault(target.cache_name, target)
            if seen.pin != target.pin:
                usage_error(f"{target.url} is given twice with different sha256 pins")
        return list(targets.values())
    try:
        return [update.target_of_feed(f, mirror) for f in catalog.select(ecosystems)]
    except catalog.CatalogError as err:
        usage_error(str(err))


def _describe(r: update.FeedResult) -> str:
    match r.outcome:
        case update.Outcome.NOT_MODIFIED:
            return f"{r.name}: not modified ({_mb(r.size)})"
        case update.Outcome.DOWNLOADED:
            return f"{r.name}: downloaded {_mb(r.size)}" + ("" if r.changed else ", unchanged")
        case update.Outcome.RESUMED:
            return f"{r.name}: resumed at {_mb(r.resumed_at)}, {_mb(r.size)} in all"
        case update.Outcome.FAILED:
            # What becomes of the index is said once every feed is known (see db_update).
            if r.ruled_out:
                return (
                    f"{r.name}: FAILED: {r.error}; the cached copy does not match the pin: unused"
                )
            if r.path is None:
                return f"{r.name}: FAILED: {r.error}; no earlier copy to use"
            return f"{r.name}: FAILED: {r.error}; using the copy fetched {_when(r.fetched_at)}"


@db_group.command(name="update")
@DB_OPTION
@click.option(
    "--from",
    "urls",
    multiple=True,
    metavar="URL",
    help="Fetch this feed instead of the catalog (repeatable); pin it with URL#sha256=HEX.",
)
@click.option(
    "--mirror",
    metavar="BASE",
    help="Fetch the catalog's feeds from a mirror with the same paths (BASE/Debian/all.zip …).",
)
@click.option(
    "--ecosystem",
    "ecosystems",
    multiple=True,
    metavar="NAME",
    help="Only this catalog feed (repeatable; the names db feeds lists, NVD for every NVD year).",
)
def db_update(
    db: Path, urls: tuple[str, ...], mirror: str | None, ecosystems: tuple[str, ...]
) -> None:
    """Download the advisory feeds and rebuild the index once if any changed.

    Without --from, the built-in catalog (regsweep db feeds): osv.dev's export of every
    ecosystem regsweep matches, and NVD's CVE feeds, which rate the CVEs. Feeds download
    in parallel with conditional GET (a feed that did not change costs no transfer), an
    interrupted download resumes where it stopped, and a download is verified before it
    replaces the cached copy. A feed that fails keeps its previous copy in the index,
    says so, and makes the exit status 1.
    """
    targets = _targets(urls, mirror, ecosystems)
    cache = update.feed_dir(db)
    try:
        with update.update_lock(cache):
            started = time.perf_counter()
            with _DownloadBars() as bars:
                results = run_async(update.fetch_all(targets, cache, bars))
            fetch_s = time.perf_counter() - started
            _report(results, fetch_s)
            usable = [r.path for r in results if r.path is not None]
            if not usable:
                click.echo(f"regsweep: error: {_nothing_to_build(db, targets, results)}", err=True)
                sys.exit(1)
            if update.needs_rebuild(db, targets, results):
                started, cpu = time.perf_counter(), time.process_time()
                _build(db, usable)
                update.write_manifest(db, targets, results)
                click.echo(
                    f"index built in {time.perf_counter() - started:.1f} s "
                    f"({time.process_time() - cpu:.1f} s CPU)",
                    err=True,
                )
            elif any(r.outcome is update.Outcome.FAILED for r in results):
                # Not "up to date": the feeds that failed may well have changed.
                click.echo(f"{db} not rebuilt: it holds every copy this update could use", err=True)
            else:
                click.echo(f"{db} is up to date: no feed changed, no rebuild", err=True)
    except AdvisoryIndexError as err:
        click.echo(f"regsweep: error: {err}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(
            "regsweep: interrupted; the next db update resumes the downloads cut off", err=True
        )
        sys.exit(130)
    failed = [r for r in results if r.outcome is update.Outcome.FAILED]
    if failed:
        kept = [r.name for r in failed if r.path is not None]
        left_out = [r.name for r in failed if r.path is None]
        message = (
            f"{len(failed)} of {len(results)} feeds failed ({', '.join(r.name for r in failed)})"
        )
        if kept:
            message += f"; the index holds the previous copy of {', '.join(kept)}"
        if left_out:
            message += f"; not in the index: {', '.join(left_out)}"
        click.echo(f"regsweep: error: {message}", err=True)
        sys.exit(1)


def _nothing_to_build(
    db: Path, targets: list[update.Target], results: list[update.FeedResult]
) -> str:
    """Why no index is built when no feed has a usable copy, and what ``db`` still holds.

    An index already there is left as it was rather than emptied (an empty index would
    read as "no vulnerabilities"); so when it holds a copy that a pin given now rules out,
    the message names that feed instead of implying the index is without it.
    """
    if not db.exists():
        return "no feed could be fetched and none is cached: no index built"
    said = (
        "no feed could be fetched and none has a usable copy: no index built; "
        f"{db} is left as it was"
    )
    report = {f.name: f for f in update.feeds_report(db) or ()}
    held = [
        t.name
        for t, r in zip(targets, results, strict=True)
        if r.ruled_out
        and (f := report.get(t.name)) is not None
        and f.in_index
        and f.sha256 != t.pin
    ]
    if held:
        said += (
            f", still holding the copy of {', '.join(held)} that the pin given now does not "
            "match: update with the right pin, or remove the index"
        )
    return said


def _report(results: list[update.FeedResult], seconds: float) -> None:
    for r in results:
        click.echo(_describe(r), err=True)
    counts = {o: sum(r.outcome is o for r in results) for o in update.Outcome}
    moved = sum(r.transferred for r in results)
    click.echo(
        f"{len(results)} feeds in {seconds:.1f} s: "
        f"{counts[update.Outcome.DOWNLOADED] + counts[update.Outcome.RESUMED]} downloaded "
        f"({_mb(moved)}), {counts[update.Outcome.NOT_MODIFIED]} not modified, "
        f"{counts[update.Outcome.FAILED]} failed",
        err=True,
    )


@db_group.command(name="feeds")
@click.option(
    "--mirror", metavar="BASE", help="Show the URLs as they are on a mirror with the same paths."
)
@click.option(
    "--ecosystem", "ecosystems", multiple=True, metavar="NAME", help="Only this feed (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON array.")
def db_feeds(mirror: str | None, ecosystems: tuple[str, ...], as_json: bool) -> None:
    """List the built-in feed catalog: what db update fetches when no --from is given."""
    try:
        feeds = catalog.select(ecosystems)
        rows = [(f, f.url if mirror is None else catalog.mirrored(f.url, mirror)) for f in feeds]
    except catalog.CatalogError as err:
        usage_error(str(err))
    if as_json:
        doc = [
            {"name": f.name, "url": url, "ecosystems": [e.value for e in f.families]}
            for f, url in rows
        ]
        click.echo(msgspec.json.encode(doc).decode())
        return
    width = max(len(f.name) for f, _ in rows)
    for f, url in rows:
        click.echo(f"{f.name:<{width}}  {url}")
    if not ecosystems:
        for family, why in catalog.NOT_IN_CATALOG.items():
            click.echo(f"not in the catalog: {family.value}: {why}", err=True)
        _by_name_only(mirror)


def _by_name_only(mirror: str | None) -> None:
    # The catalog feeds db update fetches only when --ecosystem names them, on stderr
    # like the ecosystems left out, so that stdout stays the default list.
    for f in catalog.CVE_FEEDS:
        if f.by_name_only:
            url = f.url if mirror is None else catalog.mirrored(f.url, mirror)
            click.echo(f"only when named: {f.name} {url}: {f.by_name_only}", err=True)
