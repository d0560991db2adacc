"""``regsweep scan``: images (OCI layouts, docker archives, registries) → NDJSON findings.

For every platform image of every REF: stream the layers once, inventory the packages,
match them against the advisory index, run the configuration checks, and write ``image``,
``vulnerability``, ``misconfiguration`` (and with ``--packages``, ``package``) records; an
image whose layers could not all be read gets ``error`` records and no ``image`` record, so
it is never mistaken for a clean one. A ``summary`` record comes last.

A registry reference (``HOST[:PORT]/REPO[:TAG|@DIGEST]``, also ``docker://…`` and
``http://…``) is fetched through ``crawler.crawl`` with the crawl state store, so its
layers are streamed (never stored on disk) and a layer seen before is not downloaded again.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import click
import structlog

from regsweep.cli.common import DB_OPTION, ImageProgress, registry_access, usage_error
from regsweep.cli.match import _Writer
from regsweep.crawler import state
from regsweep.crawler.auth import Credentials
from regsweep.crawler.crawl import RegistryRef, looks_like_registry_ref, parse_registry_ref
from regsweep.crawler.oci import SourceError
from regsweep.crawler.scan import ImageFacts, analyze_image, default_analyzers, error_code
from regsweep.crawler.sources import SourceRef, open_source, parse_platform, parse_ref
from regsweep.matcher.checks import ConfigError, config_summary, run_checks
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import (
    SEVERITY_RANK,
    Advisory,
    DbInfo,
    ErrorRecord,
    ImageRecord,
    LayerCounts,
    MisconfigurationRecord,
    PackageRecord,
    Severity,
    SummaryRecord,
)

log = structlog.get_logger()
SEVERITIES = [s.value for s in Severity if s is not Severity.UNKNOWN]


#: The counters of ``_Tally`` that add up across images.
_SUMMED = (
    "images",
    "layers",
    "bytes",
    "packages",
    "vulnerabilities",
    "misconfigurations",
    "errors",
)


class _Tally:
    """Run-wide counters for the summary, and the worst severity seen for ``--fail-on``."""

    def __init__(self, progress: ImageProgress | None = None) -> None:
        self.images = self.layers = self.bytes = self.packages = 0
        self.vulnerabilities = self.misconfigurations = self.errors = 0
        self.worst = 0
        self.progress = progress or ImageProgress()

    def add(self, other: _Tally) -> None:
        """Fold another tally (one image's, one tag's) into this one."""
        for k in _SUMMED:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.worst = max(self.worst, other.worst)


def _scan_guarded(
    facts: ImageFacts,
    matcher: Matcher,
    writer: _Writer,
    tally: _Tally,
    *,
    packages: bool,
    trusted_bases: tuple[str, ...],
    table_rows: list[tuple[str, str, str, str, str, str]] | None,
) -> None:
    """``_scan_image``, but a bug in matching or the checks for one image becomes an
    ``error`` record for it (none of its other records are written) and the scan goes on."""
    buf = BytesIO()
    own = _Writer(buf)
    part = _Tally(tally.progress)
    rows: list[tuple[str, str, str, str, str, str]] | None = None if table_rows is None else []
    try:
        _scan_image(
            facts, matcher, own, part, packages=packages, trusted_bases=trusted_bases,
            table_rows=rows,
        )  # fmt: skip
        own.flush()
    except Exception as exc:  # noqa: BLE001 - one image's bug must not end the scan
        log.exception("scan_internal_error", ref=facts.image.ref)
        writer.write(
            ErrorRecord(
                image=facts.image, ref=facts.image.ref, stage="match",
                error=error_code(exc), message=str(exc),
            )
        )  # fmt: skip
        tally.errors += 1
        return
    writer.write_raw(buf.getvalue(), own.count)
    tally.add(part)
    if table_rows is not None and rows:
        table_rows += rows


def _scan_image(
    facts: ImageFacts,
    matcher: Matcher,
    writer: _Writer,
    tally: _Tally,
    *,
    packages: bool,
    trusted_bases: tuple[str, ...],
    table_rows: list[tuple[str, str, str, str, str, str]] | None,
) -> None:
    image = facts.image
    tally.progress.advance()
    for p in facts.problems:
        writer.write(
            ErrorRecord(
                image=image,
                ref=image.ref,
                stage=p.stage,
                error=p.error,
                message=p.message,
                retryable=p.retryable,
            )
        )
        tally.errors += 1
    if not facts.complete:
        return
    found, match_errors = matcher.match(facts.packages)
    for err in match_errors:
        pkg = facts.packages[err.package]
        writer.write(
            ErrorRecord(
                image=image,
                ref=image.ref,
                stage="match",
                error=err.error,
                message=f"{pkg.name} {pkg.version}: {err.message}",
            )
        )
        tally.errors += 1
    try:
        misconfigs, os_info = run_checks(
            facts.config, facts.os, facts.packages, image, trusted_bases=trusted_bases
        )
    except ConfigError as exc:
        writer.write(
            ErrorRecord(
                image=image, ref=image.ref, stage="config", error=error_code(exc), message=str(exc)
            )
        )
        tally.errors += 1
        misconfigs, os_info = [], facts.os
    n_vulns = 0
    for pkg, advisories in zip(facts.packages, found, strict=True):
        if packages:
            writer.write(PackageRecord(image=image, package=pkg))
        if advisories:
            writer.write_vulnerabilities(image, pkg, advisories)
            n_vulns += len(advisories)
            for adv in advisories:
                tally.worst = max(tally.worst, SEVERITY_RANK[adv.severity])
                if table_rows is not None:
                    table_rows.append(_vuln_row(image.ref, pkg.name, pkg.version, adv))
    for m in misconfigs:
        writer.write(m)
        tally.worst = max(tally.worst, SEVERITY_RANK[m.check.severity])
        if table_rows is not None:
            table_rows.append(_misconfig_row(image.ref, m))
    writer.write(
        ImageRecord(
            image=image,
            os=os_info,
            config=config_summary(facts.config),
            layers=facts.layers,
            size=facts.size,
            packages=len(facts.packages),
            vulnerabilities=n_vulns,
            misconfigurations=len(misconfigs),
            scanned_at=datetime.now(UTC).replace(microsecond=0),
        )
    )
    tally.images += 1
    tally.layers += facts.layers
    tally.bytes += facts.size
    tally.packages += len(facts.packages)
    tally.vulnerabilities += n_vulns
    tally.misconfigurations += len(misconfigs)
    log.info(
        "image_scanned",
        ref=image.ref,
        digest=image.digest,
        packages=len(facts.packages),
        vulnerabilities=n_vulns,
        misconfigurations=len(misconfigs),
    )


def _vuln_row(
    ref: str, name: str, version: str, adv: Advisory
) -> tuple[str, str, str, str, str, str]:
    return (ref, f"{name} {version}", adv.id, adv.severity.value, ", ".join(adv.fixed), adv.status)


def _misconfig_row(ref: str, m: MisconfigurationRecord) -> tuple[str, str, str, str, str, str]:
    return (
        ref,
        m.check.title,
        m.check.id,
        m.check.severity.value,
        m.evidence or "",
        m.check.category,
    )


@click.command(name="scan")
@DB_OPTION
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Only this platform of an index.")
@click.option("--packages", "with_packages", is_flag=True, help="Also write package records.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    help="Exit 1 when a finding at or above this severity exists.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "table"]),
    default="ndjson",
    show_default=True,
    help="NDJSON records, or a table for people.",
)
@click.option(
    "--trusted-base",
    multiple=True,
    metavar="REGISTRY|DIGEST",
    help="Trusted base images (repeatable); the base-image check is off without any.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default="-",
    help="Where the NDJSON goes (default stdout).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=state.default_path,
    show_default="$REGSWEEP_STATE or ~/.cache/regsweep/state.lmdb",
    help="The crawl state store (registry references only).",
)
@registry_access
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
def scan_command(
    db: Path,
    platform: str | None,
    with_packages: bool,
    fail_on: str | None,
    fmt: str,
    trusted_base: tuple[str, ...],
    output: Path,
    state_path: Path,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    refs: tuple[str, ...],
) -> None:
    """Scan images: REF is oci:DIR[:TAG|@DIGEST], docker-archive:FILE, or a registry image
    [docker://|http://|https://]HOST[:PORT]/REPO[:TAG|@DIGEST]."""
    # Imported here: cli.crawl builds on this module's record writing.
    from regsweep.cli.crawl import RegistryOptions, read_credentials, scan_registry_refs

    try:
        parsed: list[SourceRef | RegistryRef] = [
            parse_registry_ref(r) if looks_like_registry_ref(r) else parse_ref(r) for r in refs
        ]
        wanted_platform = parse_platform(platform) if platform else None
    except SourceError as exc:
        usage_error(str(exc))
    remote = [r for r in parsed if isinstance(r, RegistryRef)]
    credentials: Credentials | None = read_credentials(username, password_stdin)
    try:
        index = AdvisoryIndex(db)
    except AdvisoryIndexError as exc:
        usage_error(str(exc))
    fetched = iter(
        scan_registry_refs(
            remote,
            RegistryOptions(insecure=insecure, ca_file=ca_file, credentials=credentials),
            state_path=state_path,
            platform=wanted_platform,
        )
        if remote
        else []
    )
    started = datetime.now(UTC).replace(microsecond=0)
    out = sys.stdout.buffer if str(output) == "-" else output.open("wb")
    table_rows: list[tuple[str, str, str, str, str, str]] | None = [] if fmt == "table" else None
    # In table mode the records still flow through the writer (one code path for the counts)
    # but go nowhere: people get the table at the end instead.
    sink = open(os.devnull, "wb") if fmt == "table" else out  # noqa: SIM115
    writer = _Writer(sink)
    tally = _Tally()
    analyzers = default_analyzers()
    with index, tally.progress:
        matcher = Matcher(index)
        for ref in parsed:
            if isinstance(ref, RegistryRef):
                result = next(fetched)
                for f in result.failures:
                    writer.write(
                        ErrorRecord(
                            image=f.image, ref=f.ref, stage=f.stage, error=f.error,
                            message=f.message, retryable=f.retryable,
                        )
                    )  # fmt: skip
                    tally.errors += 1
                for note in result.notes:
                    log.info("source_note", ref=ref.text, note=note)
                for facts in result.images:
                    _scan_guarded(
                        facts, matcher, writer, tally, packages=with_packages,
                        trusted_bases=trusted_base, table_rows=table_rows,
                    )  # fmt: skip
                continue
            try:
                resolution = open_source(ref, platform=wanted_platform)
            except SourceError as exc:
                writer.write(
                    ErrorRecord(
                        ref=ref.text, stage="manifest", error=error_code(exc), message=str(exc)
                    )
                )
                tally.errors += 1
                continue
            with resolution:
                for failure in resolution.failures:
                    writer.write(
                        ErrorRecord(
                            image=failure.ref,
                            ref=failure.ref.ref,
                            stage="manifest",
                            error=error_code(failure.error),
                            message=str(failure.error),
                        )
                    )
                    tally.errors += 1
                for note in resolution.notes:
                    log.info("source_note", ref=ref.text, note=note)
                for image in resolution.images:
                    facts = analyze_image(image, analyzers)
                    _scan_guarded(
                        facts,
                        matcher,
                        writer,
                        tally,
                        packages=with_packages,
                        trusted_bases=trusted_base,
                        table_rows=table_rows,
                    )
        meta = index.meta
    writer.write(
        SummaryRecord(
            started_at=started,
            finished_at=datetime.now(UTC).replace(microsecond=0),
            images=tally.images,
            layers=LayerCounts(fetched=tally.layers),
            bytes=tally.bytes,
            packages=tally.packages,
            vulnerabilities=tally.vulnerabilities,
            misconfigurations=tally.misconfigurations,
            errors=tally.errors,
            db=DbInfo(
                built_at=meta.built_at,
                sources={
                    k: v.records for k, v in (meta.ingest.sources if meta.ingest else {}).items()
                },
            ),
        )
    )
    writer.flush()
    if table_rows is not None:
        _print_table(table_rows, tally)
    if sink is not out:
        sink.close()
    if out is not sys.stdout.buffer:
        out.close()
    if fail_on is not None and tally.worst >= SEVERITY_RANK[Severity(fail_on.upper())]:
        sys.exit(1)


def _print_table(rows: list[tuple[str, str, str, str, str, str]], tally: _Tally) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{tally.images} images, {tally.vulnerabilities} vulnerabilities, "
        f"{tally.misconfigurations} misconfigurations, {tally.errors} errors"
    )
    for col in ("image", "package / check", "id", "severity", "fixed / evidence", "status"):
        table.add_column(col)
    order = {s.value: SEVERITY_RANK[s] for s in Severity}
    for row in sorted(rows, key=lambda r: (r[0], -order.get(r[3], 0), r[2])):
        table.add_row(*row)
    Console().print(table)
