"""``regsweep match``: package records in, vulnerability records out, streaming."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regsweep.cli.common import (
    DB_OPTION,
    make_triage,
    output_options,
    output_sink,
    triage_options,
    usage_error,
)
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.match import Matcher
from regsweep.matcher.stream import match_stream


@click.command(name="match")
@DB_OPTION
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default="-",
    help="NDJSON with package records (default: stdin).",
)
@output_options
@triage_options
def match_command(
    db: Path,
    input_path: Path,
    fmt: str,
    output: Path,
    severities: str | None,
    ignore_unfixed: bool,
    ignore_file: Path | None,
    vex_files: tuple[Path, ...],
    show_suppressed: bool,
) -> None:
    """Read package records (NDJSON) and write the vulnerability records that match them."""
    triage = make_triage(
        severities=severities, ignore_unfixed=ignore_unfixed, ignore_file=ignore_file,
        vex_files=vex_files, show_suppressed=show_suppressed,
    )  # fmt: skip
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as err:
        usage_error(str(err))  # exit 2, as scan and crawl do for a missing index
    # The input is opened first: a missing one must not have truncated the output already.
    try:
        lines = sys.stdin.buffer if str(input_path) == "-" else input_path.open("rb")
    except OSError as err:
        index.close()
        usage_error(f"cannot read {input_path}: {err.strerror}")
    reads_file = lines is not sys.stdin.buffer
    if str(output) != "-" and reads_file and output.exists() and output.samefile(input_path):
        index.close()
        usage_error(f"{output} is both the input and the output")
    with index, lines, output_sink(output, fmt) as sink:
        match_stream(Matcher(index), lines, sink, triage=None if triage.idle else triage)
