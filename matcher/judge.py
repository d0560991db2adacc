"""The judge step: an image's facts, a matcher and a policy → records and a tally.

``judge(facts, matcher, policy)`` is what ``scan`` and ``crawl`` do with every platform
image, whichever source it came from: the image's problems become ``error`` records; an
image whose layers could not all be read stops there (it must never look clean);
otherwise its packages are matched, the configuration checks run, and the records follow
in a fixed order: ``error`` (matching, config), then per package its ``package`` record
(with ``Policy.packages``) and its ``vulnerability`` records, the ``misconfiguration``
records, and the ``image`` record last. A bug while judging one image becomes one ``error``
record for it (stage ``match``) and nothing else of it: the run goes on.

``matcher.stream.match_stream`` is the same judgement for ``package`` records read as NDJSON
(``regsweep match``): no image facts, only matching.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import msgspec
import structlog

from regsweep.matcher.checks import ConfigError, config_summary, decode_config, run_checks
from regsweep.matcher.checks.scrub import read_scrubbed
from regsweep.matcher.facts import ImageFacts, Problem, error_code
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import (
    SEVERITY_RANK,
    Advisory,
    ConfigSummary,
    ErrorRecord,
    ImageRecord,
    MisconfigurationRecord,
    Package,
    PackageRecord,
    Record,
    Status,
    Suppression,
    VulnerabilityRecord,
)
from regsweep.matcher.triage import SHOWN, Triage

log = structlog.get_logger("regsweep.matcher.judge")


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """What the user asked the judgement to include."""

    #: Write a ``package`` record per package (``--packages``).
    packages: bool = False
    #: Trusted base images (``--trusted-base``); the base-image check is off without any.
    trusted_bases: tuple[str, ...] = ()
    #: What the user set aside (``--severity``, ``--ignore-unfixed``, ignore file, VEX).
    triage: Triage = Triage()


#: The counters of a ``Tally`` that add up.
_SUMMED = (
    "images",
    "layers",
    "bytes",
    "packages",
    "vulnerabilities",
    "misconfigurations",
    "errors",
)


class Tally:
    """What records add up to (for the summary), the worst severity seen (``--fail-on``:
    ``SEVERITY_RANK``, 0 for none), and how many images (or references) could not be read
    or judged: ``--fail-on`` fails on those too, so an unreadable image is never taken for
    a clean one."""

    __slots__ = (*_SUMMED, "suppressed", "unreadable", "worst")

    def __init__(self) -> None:
        self.images = self.layers = self.bytes = self.packages = 0
        self.vulnerabilities = self.misconfigurations = self.errors = 0
        self.unreadable = 0
        self.worst = 0
        #: Findings set aside, by ``Suppression.kind`` (or ``severity``/``unfixed``).
        self.suppressed: dict[str, int] = {}

    def add(self, other: Tally) -> None:
        """Fold another tally (one image's, one tag's) into this one."""
        for k in _SUMMED:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.unreadable += other.unreadable
        self.worst = max(self.worst, other.worst)
        for kind, n in other.suppressed.items():
            self.suppressed[kind] = self.suppressed.get(kind, 0) + n

    def suppress(self, kind: str) -> None:
        """Count one finding set aside."""
        self.suppressed[kind] = self.suppressed.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """The per-block tallies a resumable output keeps (``max_severity`` is a maximum)."""
        return {
            "images": self.images,
            "packages": self.packages,
            "vulnerabilities": self.vulnerabilities,
            "misconfigurations": self.misconfigurations,
            "errors": self.errors,
            "unreadable": self.unreadable,
            "max_severity": self.worst,
            **{f"suppressed_{k}": n for k, n in self.suppressed.items()},
        }


class Judgement:
    """Records in the order they are written, and what they add up to."""

    __slots__ = ("records", "tally")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.tally = Tally()

    def error(self, record: ErrorRecord) -> None:
        """Add an ``error`` record (and count it)."""
        self.records.append(record)
        self.tally.errors += 1

    def problems(self, problems: Iterable[Problem]) -> Judgement:
        """Add the ``error`` records of problems that name what they are about: images or
        references that could not be read at all."""
        for p in problems:
            self.error(p.record())
            self.tally.unreadable += 1
        return self

    def extend(self, other: Judgement) -> None:
        """Append another judgement's records and tally."""
        self.records += other.records
        self.tally.add(other.tally)


def judge(facts: ImageFacts, matcher: Matcher, policy: Policy) -> Judgement:
    """One platform image's records (see the module doc)."""
    try:
        return _judge(facts, matcher, policy)
    except Exception as exc:  # noqa: BLE001 - one image's bug must not end the run
        log.exception("judge_internal_error", ref=facts.image.ref)
        out = Judgement()
        out.error(
            ErrorRecord(
                image=facts.image, ref=facts.image.ref, stage="match",
                error=error_code(exc), message=str(exc),
            )
        )  # fmt: skip
        out.tally.unreadable += 1
        return out


def _judge(facts: ImageFacts, matcher: Matcher, policy: Policy) -> Judgement:
    out = Judgement()
    tally = out.tally
    records = out.records
    image = facts.image
    for p in facts.problems:
        out.error(p.record(image))
    if not facts.complete:
        tally.unreadable += 1
        return out
    found, match_errors = matcher.match(facts.packages)
    for err in match_errors:
        out.error(err.record(image, facts.packages[err.package]))
    # Decoded once, for the checks and the image record's summary alike.
    config: ImageConfig | None = None
    summary: ConfigSummary | None = None
    try:
        if not facts.config:
            # No config at all (an SBOM, a root filesystem): only the checks on packages
            # and the OS run.
            secrets = None
        elif facts.config_scrubbed:
            # The state store's form: the secrets' findings and the summary were made from
            # the whole config before it was stored without them.
            config, scrubbed = read_scrubbed(facts.config)
            secrets, summary = scrubbed.secrets, scrubbed.summary
        else:
            config = decode_config(facts.config)
            secrets, summary = None, config_summary(config)
        misconfigs, os_info = run_checks(
            config,
            facts.os,
            facts.packages,
            image,
            trusted_bases=policy.trusted_bases,
            secrets_found=secrets,
            file_secrets=facts.secrets,
        )
    except ConfigError as exc:
        out.error(
            ErrorRecord(
                image=image, ref=image.ref, stage="config", error=error_code(exc), message=str(exc)
            )
        )
        # Its configuration could not be judged: not a clean image either.
        tally.unreadable += 1
        misconfigs, os_info = [], facts.os
    triage = policy.triage
    show = triage.show
    upstream = _upstream(facts.packages, matcher)
    n_vulns = n_misconfigs = 0
    worst = 0
    for i, (pkg, advisories) in enumerate(zip(facts.packages, found, strict=True)):
        if policy.packages:
            records.append(PackageRecord(image=image, package=pkg))
        for adv in advisories:
            record = VulnerabilityRecord(image=image, package=pkg, advisory=adv)
            why = triage.vulnerability(image, pkg, adv)
            if why is None:
                records.append(record)
                n_vulns += 1
                worst = max(worst, SEVERITY_RANK[adv.severity])
            else:
                _set_aside(out, record, why, show)
        for adv in upstream.get(i, ()):
            why = Suppression(
                kind="os_package",
                reason=f"installed by the OS package {pkg.owner}: its distribution's "
                "advisories apply (a backported fix keeps the upstream version)",
            )
            _set_aside(out, VulnerabilityRecord(image=image, package=pkg, advisory=adv), why, show)
    for m in misconfigs:
        why = triage.misconfiguration(m)
        if why is None:
            records.append(m)
            n_misconfigs += 1
            worst = max(worst, SEVERITY_RANK[m.check.severity])
        else:
            _set_aside(out, m, why, show)
    records.append(
        ImageRecord(
            image=image,
            os=os_info,
            config=summary,
            layers=facts.layers,
            size=facts.size,
            packages=len(facts.packages),
            vulnerabilities=n_vulns,
            misconfigurations=n_misconfigs,
            scanned_at=datetime.now(UTC).replace(microsecond=0),
        )
    )
    tally.images += 1
    tally.layers += facts.layers
    tally.bytes += facts.size
    tally.packages += len(facts.packages)
    tally.vulnerabilities += n_vulns
    tally.misconfigurations += n_misconfigs
    tally.worst = max(tally.worst, worst)
    return out


def _upstream(packages: Sequence[Package], matcher: Matcher) -> dict[int, tuple[Advisory, ...]]:
    """The upstream advisories of the language packages the OS package manager installed
    (which the matcher leaves to the distribution's advisories), by package index: they
    are set aside as ``os_package``, visible with ``--show-suppressed``."""
    owned = [i for i, p in enumerate(packages) if p.owner is not None]
    if not owned:
        return {}
    as_upstream = [msgspec.structs.replace(packages[i], owner=None) for i in owned]
    found, _ = matcher.match(as_upstream)  # an upstream lookup that fails sets nothing aside
    return {i: advs for i, advs in zip(owned, found, strict=True) if advs}


def _set_aside(
    out: Judgement,
    record: VulnerabilityRecord | MisconfigurationRecord,
    why: Suppression,
    show: bool,
) -> None:
    # Counted always; written (as not affected, saying why) only when asked for.
    out.tally.suppress(why.kind)
    if not show or why.kind not in SHOWN:
        return
    if isinstance(record, VulnerabilityRecord):
        adv = msgspec.structs.replace(record.advisory, status=Status.NOT_AFFECTED)
        out.records.append(msgspec.structs.replace(record, advisory=adv, suppressed=why))
    else:
        out.records.append(msgspec.structs.replace(record, suppressed=why))


def judge_all(
    problems: Sequence[Problem], images: Iterable[ImageFacts], matcher: Matcher, policy: Policy
) -> Judgement:
    """A reference's records: its own problems first, then each image's judgement."""
    out = Judgement().problems(problems)
    for facts in images:
        out.extend(judge(facts, matcher, policy))
    return out
