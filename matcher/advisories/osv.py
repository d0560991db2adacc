"""OSV records (JSON or YAML) → ``Advisory``, keeping full OSV range semantics.

Kept: every ``affected`` entry (several per package are normal: GHSA writes one per
interval), every ECOSYSTEM and SEMVER range with its events in feed order
(``introduced``/``fixed``/``last_affected``/``limit``, several intervals per range),
``versions`` lists, ``aliases``/``related``/``upstream``, CVSS vectors with computed base
scores. Dropped, with a ``Note`` count: GIT ranges (a commit range cannot match an installed
package; osv.dev already expands them into ``versions``), ranges with no events, entries in
ecosystems regsweep does not know. Skipped, with a ``SkipReason``: withdrawn records, records
without an id, with no usable ``affected`` entry, or with an event or range that cannot be
read without guessing.

A range bound (``introduced``, ``fixed``, ``last_affected``, ``limit``) that the package's
version scheme cannot order (an Alpine ``2.7.16-33``, which not even apk-tools orders) is
refused here, as the secdb reader refuses it, rather than left to the index, which could
only count it: each one is listed in ``IngestStats.refused_versions`` with the record, the
package and the place, and the range it bounds is dropped whole (half a range would invert
its meaning). An ``affected`` entry left with no range and no ``versions`` list is dropped,
and a record left with no entry is skipped as ``BAD_VERSION``: it is never indexed as an
advisory that affects nothing, which would read as "not affected" where the feed says the
package is vulnerable below a fix regsweep cannot place.

Records are decoded into small "view" Structs holding only the fields used, so the large
free-text and reference fields are skipped by msgspec's C decoder rather than built as
Python objects.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from regsweep.matcher import versions as schemes
from regsweep.matcher.advisories import cvss as cvsslib
from regsweep.matcher.advisories.ecosystems import (
    Ecosystem,
    EcosystemInfo,
    normalize_name,
    normalize_version,
    parse_ecosystem,
)
from regsweep.matcher.advisories.model import (
    Advisory,
    Affected,
    Cvss,
    CvssType,
    Event,
    EventKind,
    Range,
    RangeType,
    Severity,
    SeveritySource,
    Status,
)
from regsweep.matcher.advisories.stats import IngestStats, Note, RecordError, SkipReason

__all__ = ["OsvRecord", "convert", "parse_time", "read_json", "read_object", "severity_word"]


# --- view Structs: the OSV fields regsweep uses, everything else skipped while decoding ------


class _Package(msgspec.Struct, gc=False):
    ecosystem: str = ""
    name: str = ""
    purl: str | None = None


class _Event(msgspec.Struct, gc=False):
    # One object per event with exactly one of these keys (OSV "oneOf"); anything else is a
    # bad event, detected after decoding so that it gets its own skip reason.
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None


class _Range(msgspec.Struct, gc=False):
    type: str = ""
    events: list[_Event] = []


class _Severity(msgspec.Struct, gc=False):
    type: str = ""
    score: str = ""


class _Specific(msgspec.Struct, gc=False):
    # ``database_specific``/``ecosystem_specific`` are free-form: only a severity word
    # (GHSA, DHI, Red Hat) or a Debian urgency is used, and either may be of any type.
    severity: Any = None
    urgency: Any = None


class _Affected(msgspec.Struct):
    package: _Package | None = None
    ranges: list[_Range] | None = None
    versions: list[str] | None = None
    severity: list[_Severity] | None = None
    ecosystem_specific: _Specific | None = None
    database_specific: _Specific | None = None


class OsvRecord(msgspec.Struct):
    """The subset of an OSV record that ingest reads (a decoding view, not the model)."""

    id: str = ""
    modified: str | None = None
    published: str | None = None
    withdrawn: str | None = None
    aliases: list[str] | None = None
    related: list[str] | None = None
    upstream: list[str] | None = None
    summary: str | None = None
    details: str | None = None
    severity: list[_Severity] | None = None
    affected: list[_Affected] | None = None
    database_specific: _Specific | None = None


_DECODER = msgspec.json.Decoder(OsvRecord)
_SPACE = re.compile(rb"[ \t\r\n\x0b\x0c]*")
_LIST_DECODER = msgspec.json.Decoder(list[OsvRecord])


# --- entry points ---------------------------------------------------------------------------


def read_json(
    data: bytes | bytearray,
    location: str,
    stats: IngestStats,
    *,
    include_withdrawn: bool = False,
) -> list[Advisory]:
    """Read one OSV JSON document: a record, or a list of records (some exports write one).

    Never raises for bad data: what cannot be read is counted in ``stats``.
    """
    # The first byte past the whitespace, without ``lstrip``'s copy of a large document.
    space = _SPACE.match(data)
    first = space.end() if space is not None else 0
    is_list = data[first : first + 1] == b"["
    try:
        records = _LIST_DECODER.decode(data) if is_list else [_DECODER.decode(data)]
    except msgspec.ValidationError as exc:
        stats.skip(SkipReason.INVALID_RECORD, location, str(exc))
        return []
    except msgspec.DecodeError as exc:
        stats.skip(SkipReason.MALFORMED_JSON, location, str(exc))
        return []
    return _convert_all(records, location, stats, include_withdrawn)


def read_object(
    obj: Any, location: str, stats: IngestStats, *, include_withdrawn: bool = False
) -> list[Advisory]:
    """Read an OSV record already parsed into Python objects (from YAML), or a list of them."""
    try:
        if isinstance(obj, list):
            records = msgspec.convert(obj, list[OsvRecord])
        else:
            records = [msgspec.convert(obj, OsvRecord)]
    except msgspec.ValidationError as exc:
        stats.skip(SkipReason.INVALID_RECORD, location, str(exc))
        return []
    return _convert_all(records, location, stats, include_withdrawn)


def _convert_all(
    records: list[OsvRecord], location: str, stats: IngestStats, include_withdrawn: bool
) -> list[Advisory]:
    out: list[Advisory] = []
    for rec in records:
        try:
            out.append(convert(rec, stats, include_withdrawn=include_withdrawn, location=location))
        except RecordError as exc:
            where = f"{location} ({rec.id})" if rec.id else location
            stats.skip(exc.reason, where, exc.detail)
    return out


# --- conversion -----------------------------------------------------------------------------


def convert(
    rec: OsvRecord, stats: IngestStats, *, include_withdrawn: bool = False, location: str = ""
) -> Advisory:
    """Turn one decoded OSV record into an ``Advisory``.

    Raises ``RecordError`` when the record must be skipped; counts notes in ``stats``, and
    lists there each range bound its version scheme cannot order, at ``location`` (the file
    the record came from).
    """
    rec_id = rec.id.strip()
    if not rec_id:
        raise RecordError(SkipReason.MISSING_ID, "record has no id")
    withdrawn = parse_time(rec.withdrawn, stats)
    if rec.withdrawn and not include_withdrawn:
        # The presence of the field is what counts, even if its timestamp is garbled.
        raise RecordError(SkipReason.WITHDRAWN, f"withdrawn {rec.withdrawn}")

    affected: list[Affected] = []
    cvss: dict[tuple[CvssType, str], Cvss] = {}
    unknown: list[str] = []
    refused = 0
    for index, raw in enumerate(rec.affected or ()):
        where = _Where(rec_id, location, index)
        entry = _affected(raw, stats, unknown, cvss, where)
        if entry is not None:
            affected.append(entry)
        refused += where.refused
    if not affected:
        if refused:
            # Not "affects nothing": the feed says vulnerable, below bounds regsweep cannot
            # place (each one listed in ``stats.refused_versions``).
            raise RecordError(
                SkipReason.BAD_VERSION, "no range whose bounds its version scheme can order"
            )
        if unknown:
            names = ", ".join(dict.fromkeys(unknown))
            raise RecordError(SkipReason.UNKNOWN_ECOSYSTEM, f"only unknown ecosystems: {names}")
        raise RecordError(SkipReason.NO_AFFECTED, "no affected package")

    vendor: list[tuple[Severity, str]] = []
    for sev in rec.severity or ():
        _severity_entry(sev, stats, cvss, vendor)
    impact = _impact(affected[0].family, rec.summary)
    if impact is not None:
        vendor.append(impact)

    severity, source, word = _choose_severity(rec, vendor, affected, list(cvss.values()))
    return Advisory(
        id=rec_id,
        source=f"osv:{affected[0].family.value}",
        aliases=_ids(rec.aliases),
        related=_ids(rec.related),
        upstream=_ids(rec.upstream),
        summary=(rec.summary.strip() or None) if rec.summary else None,
        details=rec.details or None,
        published=parse_time(rec.published, stats),
        modified=parse_time(rec.modified, stats),
        withdrawn=withdrawn,
        severity=severity,
        severity_source=source,
        severity_vendor=word,
        cvss=list(cvss.values()),
        affected=affected,
    )


def _ids(ids: list[str] | None) -> list[str]:
    # Order kept, blanks and repeats dropped (Ubuntu repeats its CVSS, some feeds their ids).
    if not ids:
        return []
    return list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))


class _Where:
    # Which record, file and entry a range belongs to, for a refused bound; counts them.
    __slots__ = ("advisory", "entry", "file", "refused")

    def __init__(self, advisory: str, file: str, entry: int) -> None:
        self.advisory = advisory
        self.file = file
        self.entry = entry
        self.refused = 0


def _affected(
    raw: _Affected,
    stats: IngestStats,
    unknown: list[str],
    cvss: dict[tuple[CvssType, str], Cvss],
    where: _Where,
) -> Affected | None:
    pkg = raw.package
    if pkg is None or not pkg.name.strip() or not pkg.ecosystem.strip():
        stats.note(Note.AFFECTED_WITHOUT_PACKAGE)
        return None
    info = parse_ecosystem(pkg.ecosystem)
    if info is None:
        stats.unknown_ecosystem(pkg.ecosystem)
        stats.note(Note.UNKNOWN_ECOSYSTEM_ENTRY)
        unknown.append(pkg.ecosystem)
        return None

    ranges: list[Range] = []
    for r in raw.ranges or ():
        kept = _range(r, stats)
        if kept is not None and _orderable(kept, info, pkg.name, stats, where):
            ranges.append(kept)
    versions = list(dict.fromkeys(v.strip() for v in raw.versions or () if v and v.strip()))
    if not ranges and not versions:
        if where.refused:
            # Every range went for a bound its scheme cannot order: kept, the entry would
            # name the package with no version, which the index reads as nothing at all.
            return None
        stats.note(Note.AFFECTED_WITHOUT_VERSIONS)

    # Per-package severity: OSV 1.5 ``affected[].severity``, else a vendor word.
    vectors: list[Cvss] = []
    words: list[tuple[Severity, str]] = []
    for sev in raw.severity or ():
        _severity_entry(sev, stats, cvss, words, vectors)
    for spec in (raw.database_specific, raw.ecosystem_specific):
        if spec is not None:
            for value in (spec.severity, spec.urgency):
                mapped = severity_word(value)
                if mapped is not None:
                    words.append((mapped, str(value)))
    severity: Severity | None = None
    if words:
        severity = _highest([w[0] for w in words])
    elif vectors:
        severity, _ = _from_cvss(vectors)

    return Affected(
        ecosystem=info.ecosystem,
        family=info.family,
        release=info.release,
        scheme=info.scheme,
        package=normalize_name(info.family, pkg.name),
        ranges=ranges,
        versions=versions,
        status=_status(ranges),
        variant=info.variant,
        package_as_written=pkg.name,
        ecosystem_as_written=pkg.ecosystem,
        purl=pkg.purl or None,
        severity=severity,
    )


def _range(r: _Range, stats: IngestStats) -> Range | None:
    kind = r.type.strip().upper()
    if kind == "GIT":
        stats.note(Note.GIT_RANGE_DROPPED)
        return None
    if kind not in ("ECOSYSTEM", "SEMVER"):
        stats.note(Note.UNKNOWN_RANGE_TYPE)
        return None
    if not r.events:
        stats.note(Note.EMPTY_RANGE_DROPPED)
        return None
    events = [_event(e) for e in r.events]
    if not any(e.kind is EventKind.INTRODUCED for e in events):
        written = [{e.kind.value: e.version} for e in events]
        raise RecordError(SkipReason.BAD_RANGE, f"{kind} range without 'introduced': {written}")
    return Range(type=RangeType(kind), events=events)


def _orderable(
    rng: Range, info: EcosystemInfo, package: str, stats: IngestStats, where: _Where
) -> bool:
    """Whether the package's scheme orders every bound of ``rng``, keyed as the index keys
    them (``store._event_key``: ``introduced: "0"`` and a ``limit`` with ``*`` need no
    key); each bound it does not is listed in ``stats``."""
    mod = schemes.module(info.scheme)
    ok = True
    for e in rng.events:
        if (e.kind is EventKind.INTRODUCED and e.version == "0") or (
            e.kind is EventKind.LIMIT and "*" in e.version
        ):
            continue
        try:
            mod.key(normalize_version(info.family, e.version))
        except schemes.InvalidVersion as exc:
            where.refused += 1
            ok = False
            stats.refuse_version(
                advisory=where.advisory,
                package=package,
                version=e.version,
                location=f"{where.file} (affected[{where.entry}], {info.ecosystem})",
                reason=exc.reason,
                event=e.kind.value,
            )
    return ok


def _event(e: _Event) -> Event:
    # Hot (every event of every record): plain comparisons rather than a generic loop.
    kind: EventKind | None = None
    value: str | None = None
    count = 0
    if e.introduced is not None:
        kind, value, count = EventKind.INTRODUCED, e.introduced, count + 1
    if e.fixed is not None:
        kind, value, count = EventKind.FIXED, e.fixed, count + 1
    if e.last_affected is not None:
        kind, value, count = EventKind.LAST_AFFECTED, e.last_affected, count + 1
    if e.limit is not None:
        kind, value, count = EventKind.LIMIT, e.limit, count + 1
    if count != 1 or kind is None or value is None:
        given = {k: v for k, v in msgspec.structs.asdict(e).items() if v is not None}
        raise RecordError(
            SkipReason.BAD_EVENT,
            f"an event needs exactly one of introduced/fixed/last_affected/limit, got {given}",
        )
    value = value.strip()
    if not value:
        raise RecordError(SkipReason.BAD_EVENT, f"empty version in a {kind.value} event")
    return Event(kind=kind, version=value)


def _status(ranges: list[Range]) -> Status:
    # A summary for the package; which interval an installed version falls in (and so
    # whether *its* interval is closed by a fix) is for the index to say.
    kinds = {e.kind for r in ranges for e in r.events}
    if EventKind.FIXED in kinds:
        return Status.FIXED
    if EventKind.LAST_AFFECTED in kinds or EventKind.LIMIT in kinds:
        # Bounded above, but the vendor named no fixed version.
        return Status.UNKNOWN
    if ranges:
        return Status.UNFIXED
    return Status.UNKNOWN


# --- severity -------------------------------------------------------------------------------

_WORDS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,  # Red Hat, SUSE
    "moderate": Severity.MEDIUM,  # GHSA, Red Hat
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.LOW,  # Ubuntu: "technically a security problem, of no impact"
    "unimportant": Severity.LOW,  # Debian urgency
    "none": Severity.NONE,
}
_RANK = {
    Severity.UNKNOWN: 0,
    Severity.NONE: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
_CVSS_TYPES = {t.value: t for t in CvssType}


def severity_word(value: object) -> Severity | None:
    """Map a vendor's severity word (``MODERATE``, ``negligible``, ``low**``) to ``Severity``.

    ``None`` for anything that is not a rating (``untriaged``, ``not yet assigned``).
    """
    if not isinstance(value, str):
        return None
    return _WORDS.get(value.strip().rstrip("*").strip().lower())


# Red Hat rates an advisory by its "impact", and its OSV records (and AlmaLinux's and Rocky
# Linux's, rebuilds of the same errata) carry it only as the summary's first word:
# "Important: nodejs:22 security update".
_IMPACT_FAMILIES = frozenset({Ecosystem.REDHAT, Ecosystem.ALMA, Ecosystem.ROCKY})
_IMPACT = re.compile(r"\s*(Critical|Important|Moderate|Low):\s")


def _impact(family: Ecosystem, summary: str | None) -> tuple[Severity, str] | None:
    if family not in _IMPACT_FAMILIES or not summary:
        return None
    m = _IMPACT.match(summary)
    if m is None:
        return None
    mapped = severity_word(m.group(1))
    return None if mapped is None else (mapped, m.group(1))


def _highest(values: list[Severity]) -> Severity:
    # Several ratings at one level (one per affected package): report the worst.
    return max(values, key=_RANK.__getitem__)


def _severity_entry(
    sev: _Severity,
    stats: IngestStats,
    cvss: dict[tuple[CvssType, str], Cvss],
    words: list[tuple[Severity, str]],
    collect: list[Cvss] | None = None,
) -> None:
    kind = _CVSS_TYPES.get(sev.type.strip().upper())
    vector = sev.score.strip()
    if kind is None:
        # A qualitative vendor rating (``{"type": "Ubuntu", "score": "medium"}``).
        mapped = severity_word(vector)
        if mapped is not None:
            words.append((mapped, vector))
        return
    if not vector:
        return
    key = (kind, vector)
    entry = cvss.get(key)
    if entry is None:
        try:
            score = cvsslib.base_score(kind, vector)
        except cvsslib.CvssError:
            stats.note(Note.INVALID_CVSS)
            score = None
        entry = cvss[key] = Cvss(type=kind, vector=vector, score=score)
    if collect is not None:
        collect.append(entry)


def _from_cvss(vectors: list[Cvss]) -> tuple[Severity, SeveritySource | None]:
    # v3.x first (what NVD and GHSA rate by), then a v4 that came with a score, then v2.
    for kind, source in (
        (CvssType.V3, SeveritySource.CVSS_V3),
        (CvssType.V4, SeveritySource.CVSS_V4),
        (CvssType.V2, SeveritySource.CVSS_V2),
    ):
        scores = [c.score for c in vectors if c.type is kind and c.score is not None]
        if scores:
            return cvsslib.severity_of(kind, max(scores)), source
    return Severity.UNKNOWN, None


def _choose_severity(
    rec: OsvRecord,
    vendor: list[tuple[Severity, str]],
    affected: list[Affected],
    vectors: list[Cvss],
) -> tuple[Severity, SeveritySource | None, str | None]:
    # Preference: the database's own rating, a vendor's qualitative rating, per-package
    # ratings, and only then a score computed from a CVSS vector.
    if rec.database_specific is not None:
        mapped = severity_word(rec.database_specific.severity)
        if mapped is not None:
            return mapped, SeveritySource.DATABASE_SPECIFIC, str(rec.database_specific.severity)
    if vendor:
        worst = max(vendor, key=lambda w: _RANK[w[0]])
        return worst[0], SeveritySource.VENDOR, worst[1]
    per_package = [a.severity for a in affected if a.severity is not None]
    if per_package:
        return _highest(per_package), SeveritySource.AFFECTED, None
    severity, source = _from_cvss(vectors)
    return severity, source, None


# --- timestamps -----------------------------------------------------------------------------


def parse_time(value: str | None, stats: IngestStats) -> datetime | None:
    """Parse an RFC 3339 timestamp into an aware UTC datetime; ``None`` if absent or bad.

    Go's vulndb writes ``0001-01-01T00:00:00Z`` (Go's zero time) for unknown dates: that is
    "absent", not a date, and would make a feed look 2000 years stale.
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        stats.note(Note.BAD_TIMESTAMP)
        return None
    if parsed.year <= 1:
        stats.note(Note.PLACEHOLDER_TIMESTAMP)
        return None
    if parsed.tzinfo is None:
        # RFC 3339 requires an offset; OSV producers that omit it mean UTC.
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
