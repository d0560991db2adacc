"""The NDJSON output contract, version 1 (``../shared/OUTPUT.md``), as msgspec Structs.

Every record is tagged by ``kind`` and carries ``schema_version``; records about an image
carry the ``image`` object with its manifest digest. Field names are a public interface
read by DuckDB, BigQuery, jq and SIEMs: fields may be added (with defaults, at the end) but
never renamed or removed within a schema version. ``schema/output-v1.schema.json`` is
generated from these Structs (``regsweep schema``) and a test keeps it in step.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

import msgspec

SCHEMA_VERSION = 1


class Severity(enum.StrEnum):
    """Qualitative severity, highest first."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    NONE = "NONE"
    UNKNOWN = "UNKNOWN"


#: Rank for ``--fail-on`` and sorting: higher is worse; UNKNOWN ranks with nothing.
SEVERITY_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.NONE: 1,
    Severity.UNKNOWN: 0,
}


class Status(enum.StrEnum):
    """A vendor's verdict on a package and advisory, normalised across feeds."""

    FIXED = "fixed"
    UNFIXED = "unfixed"
    WILL_NOT_FIX = "will_not_fix"
    NOT_AFFECTED = "not_affected"
    UNKNOWN = "unknown"


class ImageRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Which image a record is about; ``digest`` is the platform manifest's digest."""

    ref: str
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    index_digest: str | None = None
    platform: str | None = None


class Package(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An installed package as found in an image (binary name, installed version)."""

    name: str
    version: str
    type: str
    ecosystem: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    purl: str | None = None
    layer: str | None = None
    path: str | None = None
    owner: str | None = None
    #: rpm modularity label (``name:stream:version:context``) of a package built for a module
    #: stream (RHEL 8+ AppStream): module advisories apply per stream.
    modularity_label: str | None = None
    #: The project itself (an npm ``package-lock.json``'s root entry), not a dependency:
    #: listed as a component, never matched (its ``ecosystem`` is null), as an app's own name
    #: may be a public package's.
    root: bool = False


class Cvss(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A CVSS vector as published, with its base score where it could be computed."""

    type: str
    vector: str
    score: float | None = None


class Advisory(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a vulnerability record says about the advisory that matched."""

    # The arrays are tuples: a matcher keeps one Advisory per advisory and package row for
    # the whole run, and a tuple of strings, unlike a list, drops out of the cyclic
    # collector's sight after its first collection. Both encode as JSON arrays.

    id: str
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    summary: str | None = None
    severity: Severity = Severity.UNKNOWN
    severity_source: str | None = None
    cvss: tuple[Cvss, ...] = ()
    fixed: tuple[str, ...] = ()
    status: Status = Status.UNKNOWN
    vendor_status: str | None = None
    source: str | None = None
    modified: datetime | None = None


class OsInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The image's operating system and whether it is past end of life."""

    family: str
    name: str | None = None
    version: str | None = None
    eol: bool | None = None
    eol_date: str | None = None


class ConfigSummary(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The image config as the output shows it: environment *names* only, never values."""

    user: str | None = None
    exposed_ports: list[str] = []
    env_keys: list[str] = []
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None


class Check(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A configuration check: a stable id, a title, its severity and category."""

    id: str
    title: str
    severity: Severity
    category: str


class LayerCounts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Layers fetched from a registry versus served from the state store."""

    fetched: int = 0
    cached: int = 0


class DbInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The advisory index a run used."""

    built_at: datetime | None = None
    sources: dict[str, int] = {}


class Suppression(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why a finding was set aside (written only with ``--show-suppressed``).

    ``kind`` is ``vex`` (a VEX statement says ``not_affected``), ``ignore`` (an ignore-file
    rule) or ``os_package`` (an upstream advisory for a language package the OS package
    manager installed: the distribution's advisories are the ones that apply to it).
    """

    kind: str
    #: The statement's words: the rule's ``reason``, the VEX impact statement or detail.
    reason: str | None = None
    #: The VEX justification (OpenVEX's vocabulary), when the statement gives one.
    justification: str | None = None
    #: The file the rule or statement came from.
    source: str | None = None


class _Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", gc=False):
    # gc=False (inherited by every record): records are plain data that never refer back to
    # themselves, and a stream holds tens of thousands at once; tracking them made the
    # cyclic GC scan every batch again and again.
    schema_version: int = SCHEMA_VERSION


class ImageRecord(_Record, tag="image", frozen=True, kw_only=True):
    """One per platform image scanned."""

    image: ImageRef
    os: OsInfo | None = None
    config: ConfigSummary | None = None
    layers: int = 0
    size: int = 0
    packages: int = 0
    vulnerabilities: int = 0
    misconfigurations: int = 0
    scanned_at: datetime | None = None


class PackageRecord(_Record, tag="package", frozen=True, kw_only=True):
    """An installed package (only when asked for, e.g. ``--packages``)."""

    image: ImageRef | None = None
    package: Package


class VulnerabilityRecord(_Record, tag="vulnerability", frozen=True, kw_only=True):
    """A package in an image matched by an advisory."""

    image: ImageRef | None = None
    package: Package
    advisory: Advisory
    #: Set only on a finding written by ``--show-suppressed`` (its ``advisory.status`` is
    #: then ``not_affected``).
    suppressed: Suppression | None = None


class MisconfigurationRecord(_Record, tag="misconfiguration", frozen=True, kw_only=True):
    """A configuration check that failed; secrets in ``evidence`` are redacted."""

    image: ImageRef
    check: Check
    evidence: str | None = None
    remediation: str | None = None
    #: Set only on a finding written by ``--show-suppressed``.
    suppressed: Suppression | None = None


class ErrorRecord(_Record, tag="error", frozen=True, kw_only=True):
    """Something that could not be done; it never ends a run by itself."""

    image: ImageRef | None = None
    ref: str | None = None
    stage: str
    error: str
    message: str
    retryable: bool = False


class SummaryRecord(_Record, tag="summary", frozen=True, kw_only=True):
    """The last line of a run."""

    started_at: datetime
    finished_at: datetime
    repositories: int = 0
    tags: int = 0
    images: int = 0
    layers: LayerCounts = LayerCounts()
    bytes: int = 0
    packages: int = 0
    vulnerabilities: int = 0
    misconfigurations: int = 0
    errors: int = 0
    db: DbInfo | None = None
    #: How many runs of the command the crawl took: more than 1 when an interrupted crawl
    #: was resumed (the counts above are the whole crawl's).
    runs: int = 1
    #: Findings set aside, by why: ``vex``, ``ignore``, ``os_package`` (see ``Suppression``),
    #: ``severity`` (outside ``--severity``), ``unfixed`` (``--ignore-unfixed``). Not counted
    #: in ``vulnerabilities`` or ``misconfigurations``.
    suppressed: dict[str, int] = {}
    #: ``resolved`` records written (``rematch --changes``; 0 otherwise).
    resolved: int = 0


class ResolveReason(enum.StrEnum):
    """Why a finding an earlier run reported no longer holds (``ResolvedRecord.reason``)."""

    #: The advisory is still in the index but no longer matches this package version (its
    #: ranges or fixed versions changed).
    FIXED_IN_INDEX = "fixed_in_index"
    #: The advisory id is no longer in the index at all.
    WITHDRAWN = "withdrawn"
    #: The image changed (a new digest for that tag and platform) and the package, at that
    #: version, is not in it.
    PACKAGE_GONE = "package_gone"
    #: The image is gone: its tag was deleted (or is no longer crawled), or its platform
    #: left the tag's index.
    IMAGE_GONE = "image_gone"


class ResolvedRecord(_Record, tag="resolved", frozen=True, kw_only=True):
    """A finding an earlier run reported that no longer holds (written by ``rematch
    --changes``): the ``image``, ``package`` and ``advisory`` of the ``vulnerability``
    record it retires, as that record had them, so a warehouse can keep the current
    findings from the stream alone."""

    image: ImageRef
    package: Package
    advisory: Advisory
    reason: ResolveReason
    resolved_at: datetime


Record = (
    ImageRecord
    | PackageRecord
    | VulnerabilityRecord
    | MisconfigurationRecord
    | ErrorRecord
    | SummaryRecord
    | ResolvedRecord
)

#: Every record kind, as the ``kind`` tag spells it.
KINDS: tuple[str, ...] = (
    "image",
    "package",
    "vulnerability",
    "misconfiguration",
    "error",
    "summary",
    "resolved",
)
RecordKind = Literal[
    "image", "package", "vulnerability", "misconfiguration", "error", "summary", "resolved"
]


def json_schema() -> dict[str, object]:
    """The JSON Schema of one NDJSON line (any record kind), generated from the Structs."""
    schema: dict[str, object] = msgspec.json.schema(Record)
    schema["$id"] = "https://regsweep.dev/schema/output-v1.schema.json"
    schema["title"] = "regsweep NDJSON record, schema version 1"
    return schema
