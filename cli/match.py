"""``regsweep match``: package records in, vulnerability records out, streaming."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regsweep.cli.common import DB_OPTION, output_options, output_sink, usage_error
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
def match_command(db: Path, input_path: Path, fmt: str, output: Path) -> None:
    """Read package records (NDJSON) and write the vulnerability records that match them."""
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as err:
        usage_error(str(err))  # exit 2, as scan and crawl do for a missing index
    with index, output_sink(output, fmt) as sink:
        matcher = Matcher(index)
        if str(input_path) == "-":
            match_stream(matcher, sys.stdin.buffer, sink)
        else:
            with input_path.open("rb") as fh:
                match_stream(matcher, fh, sink)
