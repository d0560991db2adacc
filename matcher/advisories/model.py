"""The normalised advisory model: what every feed is read into, and what the index is built from.

One ``Advisory`` per upstream record (per CVE, package and release for secdb feeds). Ranges
keep full OSV semantics and stay as version *strings* here: they are parsed into scheme keys
once, at index-build time, where a version the scheme rejects becomes a skipped range with a
reason (STYLE: versions are typed values, parsed once). Events keep the order the feed gave;
sorting them by version needs the scheme and happens at index build too.

Field names follow the ``advisory`` object of the output contract (OUTPUT.md) where the two
meet, and ``Severity`` and ``Status`` *are* the contract's enums (``matcher.records``), so
the closed sets are defined once. As there, new fields get defaults and go last, and absent
values are ``None``, never "".

How the readers fill ``Affected.status``:

- ``fixed``: a fixed version exists (an OSV ``fixed`` event, a secdb fixed version);
- ``unfixed``: affected with ranges open above, no fix published;
- ``not_affected``: the vendor ruled the package out (secdb fixed version ``0``, a Wolfi
  false positive); such an entry has no ranges: it is a statement, never a vulnerable interval;
- ``unknown``: bounded only by ``last_affected``/``limit``, or only a ``versions`` list; a
  Wolfi advisory still under (or never to be given) analysis;
- ``will_not_fix``: the vendor will not fix (Wolfi ``fix-not-planned``; Debian
  ``<ignored>``, which no feed read here carries yet).

Which interval an installed version falls in, and so whether *its* interval is closed by a
fix, is for the index to say: ``status`` summarises the entry.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from regsweep.matcher.advisories.ecosystems import Ecosystem
from regsweep.matcher.records import Severity, Status
from regsweep.matcher.versions.interface import Scheme

__all__ = [
    "Advisory",
    "Affected",
    "Cvss",
    "CvssType",
    "Event",
    "EventKind",
    "Range",
    "RangeType",
    "Severity",
    "SeveritySource",
    "Status",
]


class SeveritySource(enum.StrEnum):
    """Where an advisory's ``severity`` came from (the contract's ``severity_source``).

    Listed in the order they are preferred: a vendor's own rating of its own package beats a
    score computed from a generic CVSS vector. An advisory with none of these takes, at match
    time, the rating of the CVEs it names (``cve.py``: ``nvd``, ``cna:<CNA>``, ``cisa-adp``,
    ``adp:<ADP>``), which are no members here: the CNA's name is data.
    """

    #: The record's ``database_specific.severity`` (GHSA, DHI …).
    DATABASE_SPECIFIC = "database_specific"
    #: The vendor's qualitative rating: a non-CVSS ``severity`` entry of the record (Ubuntu's
    #: priority: ``{"type": "Ubuntu"}``), or Red Hat's impact as its summaries begin
    #: (``Important: …``, also AlmaLinux's and Rocky Linux's).
    VENDOR = "vendor"
    #: ``affected[].database_specific`` / ``ecosystem_specific`` severity or urgency.
    AFFECTED = "affected"
    #: The base score of a CVSS vector, computed here (v3.x preferred, then v4 when the
    #: record gave its score, then v2).
    CVSS_V3 = "cvss_v3"
    CVSS_V4 = "cvss_v4"
    CVSS_V2 = "cvss_v2"


class CvssType(enum.StrEnum):
    """CVSS versions, named as OSV names them (v3.0 and v3.1 are both ``CVSS_V3``)."""

    V2 = "CVSS_V2"
    V3 = "CVSS_V3"
    V4 = "CVSS_V4"


class Cvss(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One CVSS vector and its base score.

    ``score`` is computed here for v2 and v3.x; it is ``None`` for v4 (kept, not computed) and
    for a vector that does not parse (kept as given so that nothing is silently dropped).
    """

    type: CvssType
    vector: str
    score: float | None = None


class RangeType(enum.StrEnum):
    """Range types kept in the model. OSV ``GIT`` ranges only contribute their ``versions``."""

    ECOSYSTEM = "ECOSYSTEM"
    SEMVER = "SEMVER"


class EventKind(enum.StrEnum):
    """OSV range events.

    ``introduced`` opens an affected interval (``"0"`` means "from the first version");
    ``fixed`` closes it exclusively, ``last_affected`` inclusively; ``limit`` caps the range
    (an upper bound beyond which no event applies, mostly seen on git ranges).
    """

    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One range event: a kind and the version string it applies to, as the feed wrote it."""

    kind: EventKind
    version: str


class Range(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A list of events in one ordering (``type``): OSV's ``affected[].ranges[]``.

    Events are kept in feed order, duplicates and all; a range may hold several
    introduced/fixed pairs (several affected intervals).
    """

    type: RangeType
    events: list[Event]


class Affected(msgspec.Struct, frozen=True, kw_only=True):
    """One package in one ecosystem (and release) that an advisory is about.

    ``ecosystem`` is the canonical string the index is keyed by, with ``package``:
    ``Debian:11``, ``Ubuntu:22.04``, ``Alpine:v3.11``, ``PyPI``, ``Maven`` … ``package`` is
    normalised as ``ecosystems.normalize_name`` does (PEP 503 for PyPI …); the inventory side
    applies the same function before a lookup.

    The package is affected when its version lies in any interval of any range, or equals a
    string in ``versions`` (a union, as OSV defines it).
    """

    ecosystem: str
    family: Ecosystem
    #: The release part of ``ecosystem`` (``"11"``, ``"22.04"``, ``"3.11"``) or ``None``.
    release: str | None
    #: The version ordering the ranges are compared in.
    scheme: Scheme
    package: str
    ranges: list[Range] = []
    #: Explicitly enumerated affected versions (OSV ``versions``; GIT ranges contribute here).
    versions: list[str] = []
    status: Status = Status.UNKNOWN
    #: The vendor's own word for the status where it has one and it differs from ``status``.
    vendor_status: str | None = None
    #: A sub-stream of the release that the data came from: ``"pro"`` for Ubuntu Pro/ESM
    #: fixes, which are still fixes for the base release (an image without Pro is vulnerable
    #: and its fix needs a Pro subscription); the Maven repository URL; ``None`` usually.
    variant: str | None = None
    #: The package name exactly as the feed wrote it.
    package_as_written: str = ""
    #: The ecosystem string exactly as the feed wrote it (``Ubuntu:Pro:18.04:LTS``).
    ecosystem_as_written: str = ""
    purl: str | None = None
    #: A severity the feed gives for this package only (OSV ``affected[].severity``,
    #: ``database_specific.severity``, Debian urgency …), else ``None``.
    severity: Severity | None = None

    def fixed_versions(self) -> list[str]:
        """The ``fixed`` event versions, in feed order (the contract's ``advisory.fixed``)."""
        return [e.version for r in self.ranges for e in r.events if e.kind is EventKind.FIXED]


class Advisory(msgspec.Struct, frozen=True, kw_only=True):
    """One vulnerability record from one feed.

    An id is unique within a feed for most feeds, and the same id can come from two feeds
    (a GHSA record in the GitHub feed and again in Docker's), so ``(source, id)`` is the
    natural key. Docker's DHI feed breaks even that: it repeats a CVE id once per component
    (``redis/CVE-2025-49844.json``, ``valkey/CVE-2025-49844.json``); ingest yields both and
    counts a ``duplicate_id`` note, and the index must merge by ``(source, id)``.

    ``aliases`` are other ids of the same vulnerability (OSV meaning), ``related`` ids of
    related ones (Debian's DSA → CVEs), ``upstream`` the ids a downstream record was derived
    from (OSV 1.7: Ubuntu, Chainguard).
    """

    id: str
    #: The feed, ``<format>:<ecosystem>``: ``osv:Debian``, ``osv:PyPI``, ``secdb:Alpine`` …
    source: str
    aliases: list[str] = []
    related: list[str] = []
    upstream: list[str] = []
    summary: str | None = None
    details: str | None = None
    published: datetime | None = None
    modified: datetime | None = None
    #: Set only on withdrawn records, which ``load`` skips unless asked to keep them.
    withdrawn: datetime | None = None
    severity: Severity = Severity.UNKNOWN
    severity_source: SeveritySource | None = None
    #: The vendor's own word for the severity, when it had one (Ubuntu ``negligible``, GHSA
    #: ``MODERATE``, Red Hat ``Important``), kept because the mapping loses a distinction.
    severity_vendor: str | None = None
    cvss: list[Cvss] = []
    affected: list[Affected] = []
