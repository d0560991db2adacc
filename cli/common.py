"""Pieces the commands share: their options (defined once here), output, usage errors, the
event loop."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from regsweep.crawler.outfile import OutputError, PartialFile, direct, special
from regsweep.matcher.index.store import default_path
from regsweep.matcher.output import Format, Sink, open_sink
from regsweep.matcher.records import (
    SEVERITY_RANK,
    DbInfo,
    ImageRecord,
    LayerCounts,
    Severity,
    SummaryRecord,
)
from regsweep.matcher.triage import (
    DEFAULT_IGNORE_FILE,
    Triage,
    TriageError,
    load_ignore_file,
    load_vex,
    suppressed_counts,
)

if TYPE_CHECKING:
    from regsweep.crawler.crawl import RegistryOptions
    from regsweep.matcher.index.store import AdvisoryIndex
    from regsweep.matcher.judge import Judgement

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


def _stack(options: list[Callable[[F], F]], f: F) -> F:
    for option in reversed(options):
        f = option(f)
    return f


#: Severities ``--fail-on`` accepts.
SEVERITIES = [s.value for s in Severity if s is not Severity.UNKNOWN]


def output_options(f: F) -> F:
    """``--format`` and ``-o``, the same on every command that writes records."""
    return _stack(
        [
            click.option(
                "--format",
                "fmt",
                type=click.Choice([x.value for x in Format]),
                default=Format.NDJSON.value,
                show_default=True,
                help="NDJSON records (the contract), a table for people, one SARIF 2.1.0 log "
                "or one CycloneDX 1.6 BOM for the whole run.",
            ),
            click.option(
                "-o",
                "--output",
                type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
                default="-",
                help="Where the output goes (default stdout).",
            ),
        ],
        f,
    )


def finding_options(f: F) -> F:
    """``--packages``, ``--trusted-base``, ``--fail-on`` and the triage options, shared by
    ``scan`` and ``crawl``."""
    return _stack(
        [
            click.option(
                "--packages", "with_packages", is_flag=True, help="Also write package records."
            ),
            click.option(
                "--trusted-base",
                multiple=True,
                metavar="REGISTRY|DIGEST",
                help="Trusted base images (repeatable); the base-image check is off without any.",
            ),
            click.option(
                "--fail-on",
                type=click.Choice(SEVERITIES, case_sensitive=False),
                help="Exit 1 when a finding at or above this severity exists.",
            ),
            triage_options,
        ],
        f,
    )


def triage_options(f: F) -> F:
    """``--severity``, ``--ignore-unfixed``, ``--ignore-file``, ``--vex`` and
    ``--show-suppressed`` (see ``matcher.triage``): on ``scan``, ``crawl`` and ``match``."""
    return _stack(
        [
            click.option(
                "--severity",
                "severities",
                metavar="LIST",
                help="Only findings of these severities, comma-separated (e.g. CRITICAL,HIGH; "
                "UNKNOWN is one); the others are counted in the summary as suppressed.",
            ),
            click.option(
                "--ignore-unfixed",
                is_flag=True,
                help="Only vulnerabilities that have a fixed version.",
            ),
            click.option(
                "--ignore-file",
                type=click.Path(path_type=Path, dir_okay=False),
                help=f"Ignore rules (YAML); default ./{DEFAULT_IGNORE_FILE} when present.",
            ),
            click.option(
                "--vex",
                "vex_files",
                multiple=True,
                type=click.Path(path_type=Path, dir_okay=False, exists=True),
                help="An OpenVEX or CycloneDX VEX document (repeatable): not_affected "
                "statements with a justification suppress what they cover.",
            ),
            click.option(
                "--show-suppressed",
                is_flag=True,
                help="Also write findings suppressed by VEX, ignore rules or an OS package's "
                "ownership (status not_affected, with why).",
            ),
        ],
        f,
    )


def make_triage(
    *,
    severities: str | None,
    ignore_unfixed: bool,
    ignore_file: Path | None,
    vex_files: tuple[Path, ...],
    show_suppressed: bool,
) -> Triage:
    """The ``Triage`` of the finding options (exit 2 naming a bad file or severity)."""
    wanted = None
    if severities is not None:
        try:
            wanted = [Severity(w.strip().upper()) for w in severities.split(",") if w.strip()]
        except ValueError:
            usage_error(
                f"--severity {severities!r}: severities are {', '.join(s.value for s in Severity)}"
            )
    if ignore_file is None and Path(DEFAULT_IGNORE_FILE).is_file():
        ignore_file = Path(DEFAULT_IGNORE_FILE)
    try:
        rules = load_ignore_file(ignore_file) if ignore_file is not None else []
        statements = [st for path in vex_files for st in load_vex(path)]
    except TriageError as exc:
        usage_error(str(exc))
    return Triage(
        severities=wanted, ignore_unfixed=ignore_unfixed, rules=rules, vex=statements,
        show=show_suppressed, rules_source=None if ignore_file is None else str(ignore_file),
    )  # fmt: skip


def state_option(help_text: str) -> Callable[[F], F]:
    """``--state``: where the crawl state store is."""
    from regsweep.crawler.state import default_path as state_path

    return click.option(
        "--state",
        "state_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=state_path,
        show_default="$REGSWEEP_STATE or ~/.cache/regsweep/state.lmdb",
        help=help_text,
    )


def fails(worst: int, fail_on: str | None, unreadable: int = 0) -> bool:
    """Whether ``--fail-on`` fails the run: the worst severity seen (``SEVERITY_RANK``)
    meets it, or an image could not be read or judged (never taken for a clean one)."""
    if fail_on is None:
        return False
    return unreadable > 0 or worst >= SEVERITY_RANK[Severity(fail_on.upper())]


@contextmanager
def output_sink(output: Path, fmt: str) -> Iterator[Sink]:
    """A sink of ``fmt`` writing to ``output`` (``-`` is stdout); begun, and ended on the
    way out unless an error is on its way.

    A file is written as ``FILE.partial`` and renamed onto ``FILE`` once the sink has ended
    (``outfile.PartialFile``): a previous result is replaced only by a complete one, a run
    that fails leaves its half in the partial file, and two runs into one file refuse to
    share it. Standard output, a device or a FIFO is written through. A failed write (disk
    full) exits 2 naming the file.
    """
    if str(output) == "-" or special(output):
        # Standard output, a device or a FIFO: written through, nothing to replace.
        try:
            stream = direct(None if str(output) == "-" else output)
        except OutputError as exc:
            usage_error(str(exc))
        try:
            sink = open_sink(fmt, stream)
            sink.begin()
            yield sink
            sink.end()
        except OutputError as exc:
            usage_error(str(exc))
        finally:
            with contextlib.suppress(OutputError):
                stream.close()
        return
    try:
        file = PartialFile(output)
    except OutputError as exc:
        usage_error(str(exc))
    try:
        file.fh.truncate(0)  # a killed run's half: nothing in it is resumed
        sink = open_sink(fmt, file.fh)
        sink.begin()
        yield sink
        sink.end()
        file.commit()
    except OutputError as exc:
        file.close()
        usage_error(f"{exc}; {output} is as it was before this run")
    finally:
        file.close()


def summary_record(
    started: datetime,
    counts: dict[str, int],
    index: AdvisoryIndex,
    *,
    repositories: int = 0,
    tags: int = 0,
    runs: int = 1,
) -> SummaryRecord:
    """The last record of a run, from its tallies (a resumed crawl's: over all its runs)."""
    meta = index.meta
    return SummaryRecord(
        started_at=started,
        finished_at=now(),
        repositories=repositories,
        tags=tags,
        images=counts.get("images", 0),
        layers=LayerCounts(
            fetched=counts.get("layers_fetched", 0), cached=counts.get("layers_cached", 0)
        ),
        bytes=counts.get("bytes", 0),
        packages=counts.get("packages", 0),
        vulnerabilities=counts.get("vulnerabilities", 0),
        misconfigurations=counts.get("misconfigurations", 0),
        errors=counts.get("errors", 0),
        runs=runs,
        suppressed=suppressed_counts(counts),
        db=DbInfo(
            built_at=meta.built_at,
            sources={k: v.records for k, v in (meta.ingest.sources if meta.ingest else {}).items()},
        ),
    )


def log_judged(judgement: Judgement) -> None:
    """One ``image_scanned`` log line per image record of a judgement (the library does not
    log per image: an application embedding it decides what to log)."""
    import structlog

    log = structlog.get_logger()
    for r in judgement.records:
        if isinstance(r, ImageRecord):
            log.info(
                "image_scanned",
                ref=r.image.ref,
                digest=r.image.digest,
                packages=r.packages,
                vulnerabilities=r.vulnerabilities,
                misconfigurations=r.misconfigurations,
            )


def now() -> datetime:
    """The time, to the second, as records carry it."""
    return datetime.now(UTC).replace(microsecond=0)


def registry_options(
    *,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    concurrency: int = 8,
) -> RegistryOptions:
    """The registry options from the command line (reads the password from stdin)."""
    from regsweep.crawler.auth import Credentials
    from regsweep.crawler.crawl import RegistryOptions

    if (username is None) != (not password_stdin):
        usage_error("--username and --password-stdin go together")
    credentials = None
    if username is not None:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            usage_error("--password-stdin: no password on standard input")
        credentials = Credentials(username=username, password=password)
    return RegistryOptions(
        insecure=insecure, ca_file=ca_file, credentials=credentials, concurrency=concurrency
    )


def registry_access(f: F) -> F:
    """The options that reach a registry, shared by ``scan`` and ``crawl``."""
    options = [
        click.option(
            "--insecure", is_flag=True, help="Plain HTTP (or unverified TLS) for a bare HOST."
        ),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="CA bundle to verify the registry's (and its token server's) TLS certificate.",
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
