"""``regsweep scan``: images (OCI layouts, docker archives, registries) → NDJSON findings.

For every platform image of every REF: stream the layers once, inventory the packages,
match them against the advisory index, run the configuration checks, and write ``image``,
``vulnerability``, ``misconfiguration`` (and with ``--packages``, ``package``) records; an
image whose layers could not all be read gets ``error`` records and no ``image`` record, so
it is never mistaken for a clean one. A ``summary`` record comes last.

A registry reference (``HOST[:PORT]/REPO[:TAG|@DIGEST]``, also ``docker://…`` and
``http://…``) is fetched through ``crawler.crawl.scan_refs`` with the crawl state store, so its
layers are streamed (never stored on disk) and a layer seen before is not downloaded again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
import structlog

from regsweep.cli.common import (
    DB_OPTION,
    ImageProgress,
    fails,
    finding_options,
    log_judged,
    make_triage,
    now,
    output_options,
    output_sink,
    registry_access,
    registry_options,
    run_async,
    state_option,
    summary_record,
    usage_error,
)
from regsweep.crawler import state
from regsweep.crawler.analyze import analyze_image, analyze_rootfs, default_analyzers
from regsweep.crawler.crawl import scan_refs
from regsweep.crawler.images import RefResult
from regsweep.crawler.oci import Platform, SourceError, parse_platform
from regsweep.crawler.refs import RegistryRef, SourceKind, SourceRef, parse_image_ref
from regsweep.crawler.sources import open_source
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.facts import Problem, problem_of
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.judge import Judgement, Policy, Tally, judge, judge_all
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import ImageRef

log = structlog.get_logger()


@click.command(name="scan")
@DB_OPTION
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Only this platform of an index.")
@finding_options
@output_options
@state_option("The crawl state store (registry references only).")
@registry_access
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
def scan_command(
    db: Path,
    platform: str | None,
    with_packages: bool,
    trusted_base: tuple[str, ...],
    fail_on: str | None,
    severities: str | None,
    ignore_unfixed: bool,
    ignore_file: Path | None,
    vex_files: tuple[Path, ...],
    show_suppressed: bool,
    fmt: str,
    output: Path,
    state_path: Path,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    refs: tuple[str, ...],
) -> None:
    """Scan images: REF is oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST],
    docker-archive:FILE, dir:ROOTFS, sbom:FILE (CycloneDX or SPDX JSON), or a registry image
    [docker://|http://|https://]HOST[:PORT]/REPO[:TAG|@DIGEST]."""
    try:
        parsed = [parse_image_ref(r) for r in refs]
        wanted_platform = parse_platform(platform) if platform else None
    except SourceError as exc:
        usage_error(str(exc))
    triage = make_triage(
        severities=severities, ignore_unfixed=ignore_unfixed, ignore_file=ignore_file,
        vex_files=vex_files, show_suppressed=show_suppressed,
    )  # fmt: skip
    remote = [r for r in parsed if isinstance(r, RegistryRef)]
    options = registry_options(
        insecure=insecure, ca_file=ca_file, username=username, password_stdin=password_stdin
    )
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as exc:
        usage_error(str(exc))
    results: list[RefResult] = []
    if remote:
        try:
            store = state.StateStore(state_path, scrub=SCRUB)
        except state.StateError as exc:
            usage_error(str(exc))
        with store:
            results = run_async(scan_refs(remote, options, store=store, platform=wanted_platform))
    fetched = iter(results)
    started = now()
    tally = Tally()
    # The progress line leaves the terminal before a table is printed there.
    with index, output_sink(output, fmt) as sink, ImageProgress() as progress:
        matcher = Matcher(index)
        policy = Policy(
            packages=with_packages or sink.wants_packages, trusted_bases=trusted_base,
            triage=triage,
        )  # fmt: skip

        def emit(judgement: Judgement, images: int) -> None:
            for _ in range(images):
                progress.advance()
            sink.write_many(judgement.records)
            sink.flush()
            tally.add(judgement.tally)
            log_judged(judgement)

        for ref in parsed:
            if isinstance(ref, RegistryRef):
                result = next(fetched)
                for note in result.notes:
                    log.info("source_note", ref=ref.text, note=note)
                emit(judge_all(result.failures, result.images, matcher, policy), len(result.images))
                continue
            _scan_local(ref, wanted_platform, matcher, policy, emit)
        sink.write(
            summary_record(
                started,
                {**tally.counts(), "layers_fetched": tally.layers, "bytes": tally.bytes},
                index,
            )
        )
    if fails(tally.worst, fail_on, tally.unreadable):
        sys.exit(1)


def _scan_local(
    ref: SourceRef,
    platform: Platform | None,
    matcher: Matcher,
    policy: Policy,
    emit: Callable[[Judgement, int], None],
) -> None:
    """One local source (an OCI layout or a docker archive): its images, one at a time."""
    if ref.kind is SourceKind.DIR:
        if not Path(ref.path).is_dir():
            problem = Problem(
                stage="manifest", error="not_found", message=f"{ref.text}: not a directory",
                ref=ref.text,
            )  # fmt: skip
            emit(Judgement().problems([problem]), 0)
            return
        rootfs = ImageRef(ref=ref.text)
        emit(judge(analyze_rootfs(rootfs, ref.path, default_analyzers()), matcher, policy), 1)
        return
    try:
        resolution = open_source(ref, platform=platform)
    except SourceError as exc:
        problem = problem_of(exc, stage="manifest", retryable=False, ref=ref.text)
        emit(Judgement().problems([problem]), 0)
        return
    with resolution:
        emit(Judgement().problems(resolution.failures), 0)
        for note in resolution.notes:
            log.info("source_note", ref=ref.text, note=note)
        analyzers = default_analyzers()
        for image in resolution.images:
            emit(judge(analyze_image(image, analyzers), matcher, policy), 1)
        for facts in resolution.analyzed:
            emit(judge(facts, matcher, policy), 1)
