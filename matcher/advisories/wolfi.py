"""Wolfi advisory documents (``<package>.advisories.yaml``, schema 2) → ``Advisory``.

The wolfi-dev/advisories repository keeps one document per origin package::

    schema-version: 2.0.2
    package: {name: curl}
    advisories:
      - id: CGA-xxxx-xxxx-xxxx          # Chainguard's advisory id
        aliases: [CVE-…, GHSA-…]
        events:                          # the investigation, one timestamped event at a time
          - {timestamp: 2024-03-31T02:11:27Z, type: fixed, data: {fixed-version: 8.5.0-r0}}

Only the **latest** event says where the advisory stands (wolfictl's own reading: the events
are a history, and a later one replaces the verdict of an earlier one). Latest means the
newest ``timestamp``; events sharing it are taken in document order, the last one winning. The
published data has 30 advisories whose events are not in timestamp order (a fix stamped an
hour before the detection written above it); the timestamp still decides, as it does for
wolfictl, and each is counted as an ``events_out_of_order`` note. So every event needs a
readable timestamp: without one the latest cannot be told, and the advisory is skipped.

How the latest event becomes one ``Affected`` entry (ecosystem ``Wolfi``, apk order, the
document's package, which is the origin package that installed apks name as their source):

- ``fixed``: the range ``[introduced 0, fixed V)``, status ``fixed``;
- ``false-positive-determination``: no range (a statement, never a match, exactly like a
  secdb fixed version ``0``), status ``not_affected``;
- ``fix-not-planned``: the open range ``[introduced 0, …)``, status ``will_not_fix``;
- ``pending-upstream-fix``, ``true-positive-determination``: the open range, ``unfixed``;
- ``detection``, ``analysis-not-planned``: the open range, ``unknown``.

``pending-upstream-fix`` and ``true-positive-determination`` are confirmed: the package is
affected and no fix is published, which is ``unfixed``. ``detection`` (a scanner matched the
vulnerability, nobody has looked yet) and ``analysis-not-planned`` (nobody will) are neither
confirmed nor ruled out: they match every version, as unconfirmed findings a scanner reports,
with status ``unknown`` so that a consumer can tell them from confirmed ones (3,337 of the
corpus' 20,770 advisories end on a detection). The event type is kept as ``vendor_status``
wherever the status alone loses it.

The advisory keeps its CGA id (what osv.dev and Chainguard's feeds call it), the aliases,
``modified`` = the latest event's timestamp and ``published`` = the earliest one. Its source
is ``wolfi-yaml:Wolfi``.

Bad input never raises: a document that is not schema 2 is ``unsupported_format``; one
without ``package.name`` or with ``advisories`` that is not a list is ``invalid_record``; per
advisory, a missing id is ``missing_id``, an event without a parseable timestamp or type is
``bad_event``, a latest event of a type this reader does not know is ``unknown_event_type``,
and a ``fixed`` event whose version the apk scheme rejects is ``bad_version`` (the advisory
means nothing without it). Only the latest event's data is read: an older event with an
unknown type is superseded, not an error (a ``superseded_unknown_event`` note).

**Wolfi's secdb (``security.json``) says the same things, less well.** It is derived from
the same advisory data, flattened: a fix becomes a secfix, a false positive fixed version
``0``, and nothing else survives. Read side by side they would give a package two findings
per CVE that cannot be merged (the matcher merges rows per advisory, and ``secdb:Wolfi``'s
``Wolfi/curl/CVE-…`` and ``wolfi-yaml:Wolfi``'s ``CGA-…`` are different advisories), and
where they disagree the secdb is the stale one: in the corpus, binutils' CVE-2022-38126 is
a secfix in ``security.json`` and a false positive in the newer advisory document;
coreutils' CVE-2016-2781 is ``0`` there and ``fixed 9.6-r30`` here. So within one load the
documents win: ``Supersession`` holds ``secdb:Wolfi`` records back until the load ends, then
drops each one whose (package, vulnerability id) an advisory document covered — counted as
``superseded`` skips — and yields the rest (packages and CVEs the documents do not cover,
such as ``go`` in the corpus). A load with only one of the two reads it unchanged.

Chainguard's own advisory documents share this schema but not this ecosystem; nothing in a
document says which distribution it belongs to, so every document read here is Wolfi's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from regsweep.matcher import versions
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
    Event,
    EventKind,
    Range,
    RangeType,
    Status,
)
from regsweep.matcher.advisories.stats import IngestStats, Note, RecordError, SkipReason
from regsweep.matcher.versions import InvalidVersion

__all__ = ["SECDB_SOURCE", "SOURCE", "EventType", "Supersession", "is_document", "read_document"]

#: The ``Advisory.source`` of every record read here.
SOURCE = f"wolfi-yaml:{Ecosystem.WOLFI.value}"
#: The source of the secdb records these documents supersede (see ``Supersession``).
SECDB_SOURCE = f"secdb:{Ecosystem.WOLFI.value}"
#: The schema major version read; a newer major may change what events mean.
SCHEMA_MAJOR = "2"


class EventType(enum.StrEnum):
    """The event types of the schema (chainguard-dev/advisory-schema ``v2``)."""

    DETECTION = "detection"
    TRUE_POSITIVE_DETERMINATION = "true-positive-determination"
    FIXED = "fixed"
    FALSE_POSITIVE_DETERMINATION = "false-positive-determination"
    ANALYSIS_NOT_PLANNED = "analysis-not-planned"
    FIX_NOT_PLANNED = "fix-not-planned"
    PENDING_UPSTREAM_FIX = "pending-upstream-fix"


_STATUS = {
    EventType.FIXED: Status.FIXED,
    EventType.FALSE_POSITIVE_DETERMINATION: Status.NOT_AFFECTED,
    EventType.FIX_NOT_PLANNED: Status.WILL_NOT_FIX,
    EventType.PENDING_UPSTREAM_FIX: Status.UNFIXED,
    EventType.TRUE_POSITIVE_DETERMINATION: Status.UNFIXED,
    EventType.DETECTION: Status.UNKNOWN,
    EventType.ANALYSIS_NOT_PLANNED: Status.UNKNOWN,
}
_KNOWN_TYPES = frozenset(EventType)
# Every version from the first: the one range of an affected, unfixed advisory.
_FROM_ZERO = Event(kind=EventKind.INTRODUCED, version="0")


def is_document(doc: object) -> bool:
    """Whether a parsed YAML document is a Wolfi advisory document (of any schema version).

    Its ``schema-version`` (hyphenated: OSV's is ``schema_version``) says so; so do
    ``package`` and ``advisories`` together, which is how schema 1 documents, which have
    no version field, look.
    """
    return isinstance(doc, Mapping) and (
        "schema-version" in doc or ("package" in doc and "advisories" in doc)
    )


def read_document(doc: Mapping[str, Any], location: str, stats: IngestStats) -> list[Advisory]:
    """Read one parsed advisory document; what cannot be read is counted in ``stats``."""
    schema = doc.get("schema-version")
    if not isinstance(schema, str) or schema.strip().split(".")[0] != SCHEMA_MAJOR:
        stats.skip(
            SkipReason.UNSUPPORTED_FORMAT,
            location,
            f"Wolfi advisory schema version {schema!r}: only {SCHEMA_MAJOR}.x is read",
        )
        return []
    package = doc.get("package")
    name = package.get("name") if isinstance(package, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        stats.skip(SkipReason.INVALID_RECORD, location, "no package.name")
        return []
    entries = doc.get("advisories")
    if entries is None:
        return []  # nothing recorded for the package
    if not isinstance(entries, list):
        stats.skip(SkipReason.INVALID_RECORD, location, "'advisories' is not a list")
        return []
    info = parse_ecosystem(Ecosystem.WOLFI.value)
    assert info is not None  # a known family, always
    name = name.strip()
    out: list[Advisory] = []
    for index, raw in enumerate(entries):
        try:
            out.append(_advisory(raw, name, info, stats))
        except RecordError as exc:
            adv_id = raw.get("id") if isinstance(raw, Mapping) else None
            label = adv_id if isinstance(adv_id, str) and adv_id.strip() else f"[{index}]"
            stats.skip(exc.reason, f"{location} ({name} {label})", exc.detail)
            if exc.refused is not None:
                version, objection = exc.refused
                stats.refuse_version(
                    advisory=label.strip(),
                    package=name,
                    version=version,
                    location=location,
                    reason=objection,
                )
    return out


def _advisory(raw: object, name: str, info: EcosystemInfo, stats: IngestStats) -> Advisory:
    if not isinstance(raw, Mapping):
        raise RecordError(SkipReason.INVALID_RECORD, "advisory is not a mapping")
    adv_id = raw.get("id")
    if not isinstance(adv_id, str) or not adv_id.strip():
        raise RecordError(SkipReason.MISSING_ID, "advisory has no id")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise RecordError(SkipReason.INVALID_RECORD, "'aliases' is not a list of ids")
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise RecordError(SkipReason.BAD_EVENT, "no events")

    timeline: list[tuple[datetime, int, str, Any]] = []
    for i, event in enumerate(events, 1):
        if not isinstance(event, Mapping):
            raise RecordError(SkipReason.BAD_EVENT, f"event {i} is not a mapping")
        raw_time = event.get("timestamp")
        if raw_time is None:
            raise RecordError(SkipReason.BAD_EVENT, f"event {i} has no timestamp")
        when = _timestamp(raw_time)
        if when is None:
            raise RecordError(SkipReason.BAD_EVENT, f"event {i}: bad timestamp {raw_time!r}")
        kind = event.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise RecordError(SkipReason.BAD_EVENT, f"event {i} has no type")
        timeline.append((when, i, kind.strip(), event.get("data")))
    # (timestamp, position): the newest wins, and of equal timestamps the later written.
    ordered = sorted(timeline, key=lambda e: (e[0], e[1]))
    if any(a[0] > b[0] for a, b in zip(timeline, timeline[1:], strict=False)):
        stats.note(Note.EVENTS_OUT_OF_ORDER)
    when, position, kind, data = ordered[-1]
    if kind not in _KNOWN_TYPES:
        raise RecordError(
            SkipReason.UNKNOWN_EVENT_TYPE, f"latest event (event {position}) is {kind!r}"
        )
    superseded_unknown = sum(1 for e in ordered[:-1] if e[2] not in _KNOWN_TYPES)
    if superseded_unknown:
        stats.note(Note.SUPERSEDED_UNKNOWN_EVENT, superseded_unknown)

    event_type = EventType(kind)
    status = _STATUS[event_type]
    if event_type is EventType.FIXED:
        ranges = [
            Range(type=RangeType.ECOSYSTEM, events=[_FROM_ZERO, _fixed(data, info, position)])
        ]
    elif status is Status.NOT_AFFECTED:
        ranges = []
    else:
        ranges = [Range(type=RangeType.ECOSYSTEM, events=[_FROM_ZERO])]
    affected = Affected(
        ecosystem=info.ecosystem,
        family=info.family,
        release=info.release,
        scheme=info.scheme,
        package=normalize_name(info.family, name),
        ranges=ranges,
        status=status,
        vendor_status=None if event_type is EventType.FIXED else event_type.value,
        package_as_written=name,
        ecosystem_as_written=info.ecosystem,
    )
    adv_id = adv_id.strip()
    return Advisory(
        id=adv_id,
        source=SOURCE,
        aliases=[a for a in dict.fromkeys(a.strip() for a in aliases) if a and a != adv_id],
        published=ordered[0][0],
        modified=when,
        affected=[affected],
    )


def _fixed(data: object, info: EcosystemInfo, position: int) -> Event:
    version = data.get("fixed-version") if isinstance(data, Mapping) else None
    if not isinstance(version, str) or not version.strip():
        raise RecordError(SkipReason.BAD_EVENT, f"fixed event {position} has no fixed-version")
    version = version.strip()
    try:
        # The index keys it the same way; refusing it here puts it in the ingest report
        # with its place, where the index would only count an unkeyable range.
        versions.module(info.scheme).key(normalize_version(info.family, version))
    except InvalidVersion as exc:
        raise RecordError(
            SkipReason.BAD_VERSION,
            f"fixed-version {version!r} is not an apk version: {exc}",
            refused=(version, exc.reason),
        ) from exc
    return Event(kind=EventKind.FIXED, version=version)


def _timestamp(value: object) -> datetime | None:
    # RFC 3339, as wolfictl writes and requires; the YAML loader hands it over as a string.
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Supersession:
    """Within one load, Wolfi's advisory documents replace Wolfi's secdb where both speak.

    ``defer`` is shown every advisory of the load as it is read: advisory-document records
    pass (and are remembered by package and every id they carry), ``secdb:Wolfi`` records
    are held. ``release``, once the load has read everything, yields the held records that no
    document covered and counts the others as ``superseded`` skips. Only documents' records
    that were read cover anything: an advisory skipped as unreadable (a bad fixed version)
    leaves the secdb's word standing. Held records are the only ones kept in memory, and
    only Wolfi's (tens of thousands for a full ``security.json``).
    """

    __slots__ = ("_covered", "_held")

    def __init__(self) -> None:
        # (package, vulnerability id) → the advisory document's id that covers it.
        self._covered: dict[tuple[str, str], str] = {}
        self._held: list[tuple[Advisory, str]] = []

    def defer(self, adv: Advisory, location: str) -> bool:
        """Whether ``adv`` (read at ``location``) is held back until ``release``."""
        if adv.source == SOURCE:
            for aff in adv.affected:
                self._covered.update(((aff.package, i), adv.id) for i in (adv.id, *adv.aliases))
            return False
        if adv.source == SECDB_SOURCE:
            self._held.append((adv, location))
            return True
        return False

    def release(self, stats: IngestStats) -> Iterator[Advisory]:
        """The held records no advisory document covered; the rest are counted as skips."""
        held, self._held = self._held, []
        for adv, location in held:
            # A secdb record is one package and one id (its first alias; the rest are ids
            # written on the same secfixes line, XSA-… beside a CVE).
            package = adv.affected[0].package if adv.affected else ""
            by = next((c for i in adv.aliases if (c := self._covered.get((package, i)))), None)
            if by is None:
                yield adv
            else:
                stats.skip(
                    SkipReason.SUPERSEDED,
                    f"{location} ({adv.id})",
                    f"{package}'s advisory document covers it as {by}",
                )
