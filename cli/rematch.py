"""``regsweep rematch``: every image the state store holds, judged again against the index.

No registry traffic: the tags, their images and the images' facts (packages, OS, the
configuration in the store's form) come from the state store a crawl filled
(``crawler.crawl.stored_refs``); each is judged as a crawl judges it, with the current
index and the finding options, and written through the output sink of ``--format``. The
records are those a fresh crawl with this index would write (tested), in the store's tag
order, and a ``summary`` last. A tag whose images are not all in the store is an ``error``
record saying to crawl it again.

Findings over time (``matcher.changes``): each image's findings are stored in the state
store (as ``crawl`` stores them) once the output is complete, so the next ``rematch
--changes`` knows what this run reported. With ``--changes`` only what changed since the
stored findings is written: the ``vulnerability`` records that are new, a ``resolved``
record for each finding that no longer holds (``fixed_in_index``, ``withdrawn``,
``package_gone``), the ``error`` records as usual and the ``summary`` (its
``vulnerabilities`` and ``resolved`` count the records written). An image that could not be
judged resolves none of its findings. ``--fail-on`` still looks at every current finding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

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
from regsweep.matcher.changes import (
    ImageFindings,
    changes,
    fingerprint,
    group_by_image,
    image_key,
)
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.judge import Policy, Tally, judge_all
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import ErrorRecord, Record, ResolvedRecord, VulnerabilityRecord


@click.command(name="rematch")
@DB_OPTION
@click.option(
    "--platform",
    default="all",
    show_default=True,
    metavar="OS/ARCH[/VARIANT]|all",
    help="The platform filter the crawl used.",
)
@click.option(
    "--changes",
    "only_changes",
    is_flag=True,
    help="Only what changed since the findings the last crawl or rematch stored: new "
    "vulnerability records, a resolved record per finding that no longer holds, errors.",
)
@output_options
@state_option("The crawl state store to judge again.")
@finding_options
def rematch_command(
    db: Path,
    platform: str,
    only_changes: bool,
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
    tags = new = resolved = 0
    # The findings to store, by image key: stored once the output is complete (a run that
    # fails part way stores none, and the next one reports the same changes again).
    current: dict[str, ImageFindings] = {}
    with index, store:
        with output_sink(output, fmt) as sink:
            matcher = Matcher(index)
            policy = Policy(
                packages=with_packages or sink.wants_packages, trusted_bases=trusted_base,
                triage=triage,
            )  # fmt: skip
            for result in stored_refs(store, platform=wanted):
                tags += 1
                judgement = judge_all(result.failures, result.images, matcher, policy)
                log_judged(judgement)
                tally.add(judgement.tally)
                groups = group_by_image(judgement.records)
                facts = {image_key(f.image): f for f in result.images}
                with store.reading() as r:
                    # Images whose findings are as stored are decoded no further.
                    previous = {
                        key: r.get_findings(key)
                        for key, group in groups.items()
                        if r.findings_fingerprint(key) != fingerprint(group)
                    }
                new_records: set[int] = set()
                retired: list[ResolvedRecord] = []
                for key, group in groups.items():
                    if key not in previous:
                        continue
                    image = facts.get(key)
                    change = changes(
                        previous[key], group, known=index.has_advisory, at=started,
                        packages=None if image is None else image.packages,
                    )  # fmt: skip
                    if change.current is not None:
                        current[key] = change.current
                    new_records.update(map(id, change.new))
                    retired += change.resolved
                if only_changes:
                    out: list[Record] = [
                        rec for rec in judgement.records
                        if isinstance(rec, ErrorRecord)
                        or (isinstance(rec, VulnerabilityRecord) and id(rec) in new_records)
                    ]  # fmt: skip
                    out += retired
                    new += len(new_records)
                    resolved += len(retired)
                    sink.write_many(out)
                else:
                    sink.write_many(judgement.records)
                sink.flush()
            counts = tally.counts()
            if only_changes:
                # The summary counts what the stream holds: the new findings, not all.
                counts.update(vulnerabilities=new, misconfigurations=0)
            summary = summary_record(started, counts, index, tags=tags)
            sink.write(msgspec.structs.replace(summary, resolved=resolved))
        store.put_findings(current)
    if fails(tally.worst, fail_on, tally.unreadable):
        sys.exit(1)
