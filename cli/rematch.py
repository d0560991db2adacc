"""``regsweep rematch``: every image the state store holds, judged again against the index.

No registry traffic: the tags, their images and the images' facts (packages, OS, the
configuration in the store's form) come from the state store a crawl filled
(``crawler.crawl.stored_refs``); each is judged as a crawl judges it, with the current
index and the finding options, and written through the output sink of ``--format``. The
records are those a fresh crawl with this index would write (tested), in the store's tag
order, and a ``summary`` last. A tag whose images are not all in the store is an ``error``
record saying to crawl it again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regsweep.cli.common import (
    DB_OPTION,
    fails,
    finding_options,
    log_judged,
    make_triage,
    now,
    output_options,
    output_sink,
    state_option,
    summary_record,
    usage_error,
)
from regsweep.crawler import state
from regsweep.crawler.crawl import stored_refs
from regsweep.crawler.oci import SourceError, parse_platform
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.judge import Policy, Tally, judge_all
from regsweep.matcher.match import Matcher


@click.command(name="rematch")
@DB_OPTION
@click.option(
    "--platform",
    default="all",
    show_default=True,
    metavar="OS/ARCH[/VARIANT]|all",
    help="The platform filter the crawl used.",
)
@output_options
@state_option("The crawl state store to judge again.")
@finding_options
def rematch_command(
    db: Path,
    platform: str,
    fmt: str,
    output: Path,
    state_path: Path,
    with_packages: bool,
    trusted_base: tuple[str, ...],
    fail_on: str | None,
    severities: str | None,
    ignore_unfixed: bool,
    ignore_file: Path | None,
    vex_files: tuple[Path, ...],
    show_suppressed: bool,
) -> None:
    """Judge every image of the state store again, against the current index."""
    try:
        wanted = None if platform == "all" else parse_platform(platform)
    except SourceError as exc:
        usage_error(str(exc))
    if not state_path.exists():
        usage_error(f"{state_path}: no state store (run regsweep crawl first)")
    triage = make_triage(
        severities=severities, ignore_unfixed=ignore_unfixed, ignore_file=ignore_file,
        vex_files=vex_files, show_suppressed=show_suppressed,
    )  # fmt: skip
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as exc:
        usage_error(str(exc))
    try:
        store = state.StateStore(state_path, scrub=SCRUB)
    except state.StateError as exc:
        usage_error(str(exc))
    started = now()
    tally = Tally()
    tags = 0
    with index, store, output_sink(output, fmt) as sink:
        matcher = Matcher(index)
        policy = Policy(
            packages=with_packages or sink.wants_packages, trusted_bases=trusted_base,
            triage=triage,
        )  # fmt: skip
        for result in stored_refs(store, platform=wanted):
            tags += 1
            judgement = judge_all(result.failures, result.images, matcher, policy)
            log_judged(judgement)
            sink.write_many(judgement.records)
            sink.flush()
            tally.add(judgement.tally)
        sink.write(summary_record(started, tally.counts(), index, tags=tags))
    if fails(tally.worst, fail_on, tally.unreadable):
        sys.exit(1)
