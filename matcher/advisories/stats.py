"""Ingest accounting: what was read, what was skipped and why, what was adjusted on the way.

Nothing is dropped silently: every record or file that does not become an ``Advisory`` is a
``SkipReason`` count (with the first few locations kept as examples), and every smaller
adjustment made while reading a record (a git range dropped, a CVSS vector that does not
parse) is a ``Note`` count. Notes and unknown ecosystems describe what was *read*: a record
skipped later for another reason has still been counted in them. A range bound (a fixed
version, mostly) that the record's version scheme cannot order is more than a count: each
one is listed by advisory, package and place (``refused_versions``), whichever reader met
it (OSV, secdb, Wolfi), and ``report`` prints them all as warnings, because each is a
vulnerability that will never be found. ``IngestStats`` is a
mutable Struct so that it encodes straight into the run summary (``db.sources``).
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

__all__ = [
    "AdvisoryError",
    "IngestStats",
    "Note",
    "RecordError",
    "SkipExample",
    "SkipReason",
    "SourceStats",
    "VersionRefusal",
]

#: Examples kept per skip reason: enough to find the culprits, bounded for huge feeds.
EXAMPLES_PER_REASON = 5


class SkipReason(enum.StrEnum):
    """Why a file, record or secdb entry did not become an advisory."""

    #: The path does not exist, cannot be read, or is not a readable zip.
    UNREADABLE = "unreadable"
    #: A file in a format the ingest does not read (a JSON document that is neither OSV nor
    #: secdb, a Wolfi advisory document of a schema other than 2, a zip inside a zip).
    UNSUPPORTED_FORMAT = "unsupported_format"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_YAML = "malformed_yaml"
    #: Well-formed JSON/YAML whose fields have the wrong types for an OSV record or a Wolfi
    #: advisory document (no ``package.name``, ``aliases`` not a list …).
    INVALID_RECORD = "invalid_record"
    MISSING_ID = "missing_id"
    #: OSV ``withdrawn`` is set: the record must no longer match anything.
    WITHDRAWN = "withdrawn"
    #: No ``affected`` entries at all, or none that name a package.
    NO_AFFECTED = "no_affected"
    #: Every ``affected`` entry is in an ecosystem regsweep cannot match.
    UNKNOWN_ECOSYSTEM = "unknown_ecosystem"
    #: An event that is not exactly one of introduced/fixed/last_affected/limit with a
    #: non-empty version; a Wolfi advisory with no events, an event without a parseable
    #: timestamp or a type, or a ``fixed`` event without a ``fixed-version``.
    BAD_EVENT = "bad_event"
    #: A range whose events never open an interval (no ``introduced``): its meaning is
    #: ambiguous (a producer may have meant "< fixed"), so the record is not guessed at.
    BAD_RANGE = "bad_range"
    #: A secdb ``secfixes`` entry with no usable version or vulnerability id.
    BAD_SECFIX = "bad_secfix"
    #: A secdb file whose distribution (Alpine release, Wolfi, Chainguard) cannot be told.
    UNKNOWN_DISTRIBUTION = "unknown_distribution"
    #: A Wolfi advisory whose latest event, the one that decides, is of a type the reader
    #: does not know (a newer schema's): guessing its meaning could hide or invent a finding.
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    #: A version the record cannot mean anything without, rejected by its version scheme
    #: (a Wolfi ``fixed-version`` such as ``1.1.0-r1-r0``).
    BAD_VERSION = "bad_version"
    #: A ``secdb:Wolfi`` record whose package and id a Wolfi advisory document read in the
    #: same load also covers: the document, which the secdb is generated from, decides.
    SUPERSEDED = "superseded"


class Note(enum.StrEnum):
    """A non-fatal adjustment made while reading a record."""

    #: A GIT range was dropped (commit ranges cannot match installed packages; the record's
    #: ``versions`` list, which osv.dev fills from them, is kept).
    GIT_RANGE_DROPPED = "git_range_dropped"
    #: A range of an unknown type was dropped.
    UNKNOWN_RANGE_TYPE = "unknown_range_type"
    #: A range with an empty ``events`` list was dropped (seen in DHI data).
    EMPTY_RANGE_DROPPED = "empty_range_dropped"
    #: An ``affected`` entry in an unknown ecosystem was dropped (the record keeps the
    #: others; with none left it is skipped as ``unknown_ecosystem``).
    UNKNOWN_ECOSYSTEM_ENTRY = "unknown_ecosystem_entry"
    #: An ``affected`` entry without a package name was dropped.
    AFFECTED_WITHOUT_PACKAGE = "affected_without_package"
    #: An ``affected`` entry kept with neither ranges nor versions: it names a package but
    #: no version; the index decides what that means.
    AFFECTED_WITHOUT_VERSIONS = "affected_without_versions"
    #: A CVSS vector that did not parse: kept with score null.
    INVALID_CVSS = "invalid_cvss"
    #: A timestamp that did not parse: read as null.
    BAD_TIMESTAMP = "bad_timestamp"
    #: Go's zero time ``0001-01-01T00:00:00Z``, which Go's vulndb writes for "unknown":
    #: read as null.
    PLACEHOLDER_TIMESTAMP = "placeholder_timestamp"
    #: A secdb vulnerability id written irregularly (``CVE_2019-2426``, ``CVE 2018-16859``,
    #: ``CVE-2017-17434-1``) and normalised.
    SECFIX_ID_NORMALISED = "secfix_id_normalised"
    #: A secdb package lists the same id under ``0`` (not affected) and a real fixed
    #: version; the fixed version wins (the conservative reading).
    SECFIX_CONFLICT = "secfix_conflict"
    #: The same ``(source, id)`` was read twice; both copies were yielded.
    DUPLICATE_ID = "duplicate_id"
    #: A Wolfi advisory whose events are not in timestamp order; the newest still decides.
    EVENTS_OUT_OF_ORDER = "events_out_of_order"
    #: A Wolfi event of an unknown type that a later event supersedes: not needed, not read.
    SUPERSEDED_UNKNOWN_EVENT = "superseded_unknown_event"


class AdvisoryError(Exception):
    """Base of the errors of advisory ingest."""


class RecordError(AdvisoryError):
    """One record (or secdb entry) cannot be read: the readers raise it, the load counts it.

    It never escapes ``load``: it becomes a ``SkipReason`` count and an example, and, when
    the record fell for a fixed version its scheme cannot order (``refused``: the version
    and the scheme's objection), an entry of ``IngestStats.refused_versions``. (The OSV
    reader lists its refused bounds itself, as it may refuse several in one record.)
    """

    def __init__(
        self, reason: SkipReason, detail: str, *, refused: tuple[str, str] | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.refused = refused
        super().__init__(f"{reason.value}: {detail}")


class SkipExample(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where a skip happened (``path`` or ``archive.zip!member``) and what was wrong."""

    reason: SkipReason
    location: str
    detail: str


class VersionRefusal(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A range bound left out because its scheme cannot order it, and whose it was.

    ``advisory`` is the id of the advisory it belonged to, ``package`` the package as the
    feed writes it, ``location`` the file and entry, ``reason`` the scheme's objection,
    ``event`` the kind of bound (``fixed``; an OSV range's ``introduced``,
    ``last_affected`` or ``limit`` too).
    """

    advisory: str
    package: str
    version: str
    location: str
    reason: str
    event: str = "fixed"


class SourceStats(msgspec.Struct, kw_only=True):
    """Counts for one advisory source (``osv:Debian``, ``secdb:Alpine`` …)."""

    records: int = 0
    affected: int = 0
    #: The newest ``modified`` among its records: how fresh the feed is.
    newest_modified: datetime | None = None


class IngestStats(msgspec.Struct, kw_only=True):
    """Everything a load counted. Complete once the load's iterator is exhausted."""

    #: Files opened (zip members count one each).
    files: int = 0
    #: Files per detected format (``osv-json``, ``secdb-yaml`` …).
    formats: dict[str, int] = {}
    #: Files ignored because their names say they are not data (README, LICENSE …).
    ignored_files: int = 0
    sources: dict[str, SourceStats] = {}
    skipped: dict[SkipReason, int] = {}
    #: OSV ecosystem strings (as written) not in ``Ecosystem``, per affected entry.
    unknown_ecosystems: dict[str, int] = {}
    notes: dict[Note, int] = {}
    examples: list[SkipExample] = []
    #: Every range bound refused by its version scheme, each named (never only counted).
    refused_versions: list[VersionRefusal] = []

    @property
    def records(self) -> int:
        """Advisories yielded, over all sources."""
        return sum(s.records for s in self.sources.values())

    @property
    def skipped_total(self) -> int:
        """Files, records and entries skipped, over all reasons."""
        return sum(self.skipped.values())

    def skip(self, reason: SkipReason, location: str, detail: str) -> None:
        """Count one skip, keeping the first few of each reason as examples."""
        count = self.skipped.get(reason, 0)
        self.skipped[reason] = count + 1
        if count < EXAMPLES_PER_REASON:
            self.examples.append(SkipExample(reason=reason, location=location, detail=detail))

    def refuse_version(
        self,
        *,
        advisory: str,
        package: str,
        version: str,
        location: str,
        reason: str,
        event: str = "fixed",
    ) -> None:
        """List one range bound (``event``: a fixed version unless said otherwise) that the
        advisory's version scheme cannot order.

        The caller drops the range it bounds, and skips the advisory (``BAD_VERSION``) when
        no range is left: matching it against any other bound could only mislead.
        """
        self.refused_versions.append(
            VersionRefusal(
                advisory=advisory,
                package=package,
                version=version,
                location=location,
                reason=reason,
                event=event,
            )
        )

    def note(self, note: Note, n: int = 1) -> None:
        """Count a non-fatal adjustment."""
        self.notes[note] = self.notes.get(note, 0) + n

    def unknown_ecosystem(self, ecosystem: str) -> None:
        """Count one affected entry in an ecosystem regsweep does not know."""
        self.unknown_ecosystems[ecosystem] = self.unknown_ecosystems.get(ecosystem, 0) + 1

    def record(self, source: str, affected: int, modified: datetime | None) -> None:
        """Count one advisory yielded from ``source``."""
        s = self.sources.get(source)
        if s is None:
            s = self.sources[source] = SourceStats()
        s.records += 1
        s.affected += affected
        if modified is not None and (s.newest_modified is None or modified > s.newest_modified):
            s.newest_modified = modified

    def report(self) -> str:
        """A short human-readable account (for stderr; never the NDJSON stream)."""
        lines = [f"{self.records} advisories from {self.files} files"]
        for name in sorted(self.sources):
            s = self.sources[name]
            newest = s.newest_modified.isoformat() if s.newest_modified else "-"
            lines.append(f"  {name}: {s.records} records, {s.affected} affected, newest {newest}")
        if self.skipped:
            lines.append(f"skipped {self.skipped_total}:")
            lines.extend(f"  {r.value}: {n}" for r, n in sorted(self.skipped.items()))
        if self.unknown_ecosystems:
            lines.append("unknown ecosystems:")
            lines.extend(f"  {e}: {n}" for e, n in sorted(self.unknown_ecosystems.items()))
        if self.notes:
            lines.append("notes:")
            lines.extend(f"  {k.value}: {n}" for k, n in sorted(self.notes.items()))
        if self.refused_versions:
            lines.append(
                f"warning: {len(self.refused_versions)} versions not indexed, their version "
                "scheme cannot order them (the ranges they bound are left out):"
            )
            lines.extend(
                f"  {r.advisory} ({r.package} {r.event} {r.version!r}, {r.location}): {r.reason}"
                for r in self.refused_versions
            )
        return "\n".join(lines)
