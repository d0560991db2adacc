"""Advisory ingest: read vulnerability feeds into normalised, immutable msgspec Structs.

Usage::

    from regsweep.matcher import advisories

    records, stats = advisories.load(["osv/debian-all.zip", "alpine-secdb/v3.20"])
    for adv in records:          # streamed: one record in memory at a time
        ...
    print(stats.report())        # complete once ``records`` is exhausted

Formats are detected per file (OSV JSON or YAML, loose, in a directory tree or in a zip such
as osv.dev's per-ecosystem ``all.zip``; Alpine/Wolfi/Chainguard secdb YAML or JSON; Wolfi's
advisory YAML documents, which supersede Wolfi's secdb within one load). A bad
record is skipped with a reason and counted in ``stats``; a load never aborts for one.

The model (``model.py``) is what the advisory index is built from, and what the
``vulnerability`` output record's ``advisory`` object is made of.
"""

from __future__ import annotations

from regsweep.matcher.advisories.ecosystems import (
    Ecosystem,
    EcosystemInfo,
    normalize_name,
    parse_ecosystem,
    scheme_of,
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
from regsweep.matcher.advisories.sources import Format, load
from regsweep.matcher.advisories.stats import (
    IngestStats,
    Note,
    SkipExample,
    SkipReason,
    SourceStats,
    VersionRefusal,
)

__all__ = [
    "Advisory",
    "Affected",
    "Cvss",
    "CvssType",
    "Ecosystem",
    "EcosystemInfo",
    "Event",
    "EventKind",
    "Format",
    "IngestStats",
    "Note",
    "Range",
    "RangeType",
    "Severity",
    "SeveritySource",
    "SkipExample",
    "SkipReason",
    "SourceStats",
    "Status",
    "VersionRefusal",
    "load",
    "normalize_name",
    "parse_ecosystem",
    "scheme_of",
]
