"""CVE severity: NVD's JSON 2.0 CVE records and CVE JSON 5 records → one rating per CVE id.

Many feeds rate nothing: Debian's DSA/DLA records and Alpine's secdb name the CVEs they fix
and stop there. The CVE records rate those CVEs, and a finding without a rating of its own
takes theirs (``match.py``: the vendor's rating first, then the advisory's own CVSS, then
the CVE's). Two formats carry them:

- **NVD JSON 2.0**: a yearly feed (``nvdcve-2.0-2024.json``: ``{"vulnerabilities":
  [{"cve": {…}}]}``), an API page of the same shape, or one ``cve`` object alone (the
  NVD-record-per-file mirrors). ``cve.metrics`` holds ``cvssMetricV40``, ``cvssMetricV31``,
  ``cvssMetricV30`` and ``cvssMetricV2`` lists; in each entry ``type`` is ``Primary`` for
  NVD's own analysis and ``Secondary`` for a score NVD republishes: the CNA's (``source``
  is its contact address or organisation UUID) or CISA's ADP (``source`` is CISA-ADP's
  organisation UUID, ``134c704f-…``).
- **CVE JSON 5** (the CVE List, ``cvelistV5``: ``cves/2024/0xxx/CVE-2024-0012.json``):
  ``containers.cna.metrics[]`` and ``containers.adp[].metrics[]`` entries each hold one of
  ``cvssV4_0``, ``cvssV3_1``, ``cvssV3_0``, ``cvssV2_0`` (or ``other``: SSVC, KEV, not a
  rating); the provider is ``providerMetadata.shortName`` (``CISA-ADP`` for CISA's
  "Vulnrichment").

**Which rating a CVE gets**, when its records give several (``rank``): the CVSS version
first, v3.x (what every rater publishes most, and what ``--fail-on`` thresholds are
usually written against), then v4.0, then v2 (no Critical band); within a version, NVD's own
analysis, then the CNA's (the vendor or project that assigned the CVE), then CISA-ADP's,
then another ADP's; for the same rater, the CVE record itself before NVD's copy of it; for
the same record, the higher score (a CNA may score several scenarios), and between two
copies of one record, the more recently modified. One rule, no "highest of all": a score is
only as good as who gave it, and the order says whose is trusted.

``severity_source`` then says who rated it: ``nvd``, ``cna:<CNA>`` (its CVE List short name,
or the source NVD names it by), ``cisa-adp``, ``adp:<ADP>``. The score is the record's
``baseScore`` (computed from the vector only when absent), banded as CVSS bands it.

Rejected CVEs (NVD ``vulnStatus: Rejected``, CVE List ``state: REJECTED``) rate nothing.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from regsweep.matcher.advisories import cvss as cvsslib
from regsweep.matcher.advisories.model import Cvss, CvssType, Severity
from regsweep.matcher.advisories.osv import severity_word
from regsweep.matcher.advisories.stats import IngestStats, Note, SkipReason
from regsweep.matcher.records import SEVERITY_RANK

__all__ = [
    "CISA_ADP_ORG",
    "CveRating",
    "CveSeverities",
    "Rater",
    "SeverityStats",
    "best",
    "cve_ids",
    "read_cve5",
    "read_nvd",
]

#: CISA's ADP organisation id: NVD names CISA-ADP's scores by it.
CISA_ADP_ORG = "134c704f-9b21-4f2e-91b3-4a467353bcc0"


class Rater(enum.IntEnum):
    """Who gave a rating, in the order they are trusted (lower first)."""

    NVD = 0
    CNA = 1
    CISA_ADP = 2
    ADP = 3


class _Origin(enum.IntEnum):
    # For one rater, its own record before a copy of it.
    CVE5 = 0
    NVD = 1


_VERSION_RANK = {CvssType.V3: 0, CvssType.V4: 1, CvssType.V2: 2}


def rank(kind: CvssType, rater: Rater, origin: int) -> int:
    """The precedence of a rating (lower wins): CVSS version, then rater, then origin."""
    return (_VERSION_RANK[kind] * len(Rater) + rater) * len(_Origin) + origin


class CveRating(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """The rating one CVE id is given: its severity, who gave it, and the CVSS it came from.

    Stored in the index (``array_like``: compact); ``source`` is ``severity_source`` as a
    finding shows it.
    """

    severity: Severity
    source: str
    cvss: Cvss | None = None


class SeverityStats(msgspec.Struct, kw_only=True):
    """How much of an index is rated, as ``db info`` shows it."""

    #: CVE records read, per format (``nvd``, ``cve5``; one CVE in both counts twice), and
    #: how many of them were rejected CVEs.
    cve_records: dict[str, int] = {}
    rejected: int = 0
    #: CVE ids rated, by who gave the rating kept (``nvd``, ``cna``, ``cisa-adp``, ``adp``).
    cve_ratings: dict[str, int] = {}
    #: Advisories the feed rated neither as a whole nor per package, nor by a CVSS vector.
    unrated: int = 0
    #: Of those, how many take a CVE's rating (by their id, aliases, upstream or related ids).
    rated_by_cve: int = 0
    #: And those still without a severity: their findings stay ``UNKNOWN``.
    still_unrated: int = 0
    #: The same, per source (``osv:Debian`` …).
    still_unrated_by_source: dict[str, int] = {}


class _Kept(msgspec.Struct, gc=False, array_like=True):
    rank: int
    #: The record's modification time to the second as a number (``2024-11-21T04:27:32.000``
    #: → 20241121042732): ordered as the times are, and smaller than the string.
    modified: int
    rating: CveRating


def _seconds(timestamp: str) -> int:
    # Fractions and zones dropped: records of one format write one zone (NVD none, the CVE
    # List UTC), and only two copies of one record are ever compared.
    digits = "".join(c for c in timestamp[:19] if c.isdigit())
    return int(digits.ljust(14, "0")) if digits else 0


class CveSeverities:
    """The rating of every CVE id read, the preferred one kept (see the module's rule).

    Filled by ``read_nvd``/``read_cve5`` as a load streams the CVE files by; the index
    build writes it whole (``store.build``).
    """

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}
        # Equal ratings are one object: NVD's feeds hold ~300,000 CVEs, and far fewer
        # distinct (severity, rater, vector) triples.
        self._shared: dict[CveRating, CveRating] = {}
        #: CVE records read, per format (``nvd``, ``cve5``), and how many were rejected ones.
        self.records: Counter[str] = Counter()
        self.rejected = 0

    def offer(self, cve_id: str, rank: int, modified: str, rating: CveRating) -> None:
        """Keep ``rating`` for ``cve_id`` if it is preferred to the one kept."""
        old = self._kept.get(cve_id)
        when = _seconds(modified)
        if old is None or rank < old.rank or (rank == old.rank and when > old.modified):
            rating = self._shared.setdefault(rating, rating)
            self._kept[cve_id] = _Kept(rank, when, rating)

    def get(self, cve_id: str) -> CveRating | None:
        """The rating kept for ``cve_id``, if any."""
        kept = self._kept.get(cve_id)
        return None if kept is None else kept.rating

    def __contains__(self, cve_id: object) -> bool:
        return cve_id in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def items(self) -> Iterator[tuple[str, CveRating]]:
        """Every ``(CVE id, rating)``, in id order (the order the index writes them)."""
        for cve_id in sorted(self._kept):
            yield cve_id, self._kept[cve_id].rating

    def by_rater(self) -> dict[str, int]:
        """How many CVEs each kind of rater rates (``cna:X`` counted as ``cna``)."""
        counts = Counter(k.rating.source.partition(":")[0] for k in self._kept.values())
        return dict(sorted(counts.items()))


def cve_ids(*groups: Iterable[str]) -> list[str]:
    """The CVE ids among ``groups`` of ids (an advisory's id, aliases, upstream, related),
    in order, once each."""
    return list(dict.fromkeys(i for g in groups for i in g if i.startswith("CVE-")))


def best(ratings: Iterable[CveRating]) -> CveRating | None:
    """The rating of an advisory that fixes several CVEs: its worst CVE's (the highest
    severity, then the higher score; the first on a tie)."""
    chosen: CveRating | None = None
    for r in ratings:
        if chosen is None or _weight(r) > _weight(chosen):
            chosen = r
    return chosen


def _weight(r: CveRating) -> tuple[int, float]:
    score = r.cvss.score if r.cvss is not None and r.cvss.score is not None else -1.0
    return SEVERITY_RANK[r.severity], score


def _rating(
    kind: CvssType,
    vector: str,
    base_score: Any,
    base_severity: Any,
    source: str,
    stats: IngestStats,
) -> tuple[CveRating, float] | None:
    # One metric entry as a rating and its score (-1 when there is none), or None when it
    # rates nothing readable.
    vector = vector.strip()
    score: float | None = None
    numeric = isinstance(base_score, int | float) and not isinstance(base_score, bool)
    if numeric and 0.0 <= base_score <= 10.0:
        score = float(base_score)
    if score is None and vector and kind is not CvssType.V4:
        try:
            score = cvsslib.base_score(kind, vector)
        except cvsslib.CvssError:
            stats.note(Note.INVALID_CVSS)
    severity = cvsslib.severity_of(kind, score) if score is not None else None
    if severity is None:
        severity = severity_word(base_severity)
    if severity is None:
        return None
    cvss = Cvss(type=kind, vector=vector, score=score) if vector else None
    return CveRating(severity=severity, source=source, cvss=cvss), -1.0 if score is None else score


def _pick(
    found: list[tuple[int, float, CveRating]],
) -> tuple[int, CveRating] | None:
    # A record's preferred rating: the lowest rank, then the higher score, then the first.
    if not found:
        return None
    rank_, _, rating = min(found, key=lambda f: (f[0], -f[1]))
    return rank_, rating


# --- NVD JSON 2.0 ---------------------------------------------------------------------------
# The view Structs' field names are the feeds' own (camelCase): no renaming table to keep.


class _NvdData(msgspec.Struct, gc=False):
    vectorString: str = ""
    baseScore: Any = None
    baseSeverity: Any = None


class _NvdMetric(msgspec.Struct, gc=False):
    source: str = ""
    type: str = ""
    cvssData: _NvdData | None = None
    #: v2 entries rate beside ``cvssData``, not in it.
    baseSeverity: Any = None


class _NvdMetrics(msgspec.Struct, gc=False):
    cvssMetricV40: list[_NvdMetric] = []
    cvssMetricV31: list[_NvdMetric] = []
    cvssMetricV30: list[_NvdMetric] = []
    cvssMetricV2: list[_NvdMetric] = []


class _NvdCve(msgspec.Struct, gc=False):
    id: str = ""
    lastModified: str = ""
    vulnStatus: str = ""
    metrics: _NvdMetrics | None = None


class _NvdItem(msgspec.Struct, gc=False):
    cve: _NvdCve | None = None


class _NvdDocument(msgspec.Struct, gc=False):
    # A feed or API page (``vulnerabilities``), or a single ``cve`` object (its fields).
    vulnerabilities: list[_NvdItem] | None = None
    id: str = ""
    lastModified: str = ""
    vulnStatus: str = ""
    metrics: _NvdMetrics | None = None


class _NvdPage(msgspec.Struct, gc=False):
    # The fallback of a feed with a bad record: each item decoded on its own.
    vulnerabilities: list[msgspec.Raw] = []


_NVD_DOC = msgspec.json.Decoder(_NvdDocument)
_NVD_PAGE = msgspec.json.Decoder(_NvdPage)
_NVD_ITEM = msgspec.json.Decoder(_NvdItem)


def read_nvd(
    data: bytes | bytearray, location: str, stats: IngestStats, table: CveSeverities
) -> None:
    """Read an NVD JSON 2.0 document (a feed, an API page or one CVE) into ``table``.

    Never raises for bad data: a document that does not parse, or a record of the wrong
    shape, is a skip in ``stats`` (a bad record costs only itself).
    """
    try:
        doc = _NVD_DOC.decode(data)
    except msgspec.ValidationError:
        _read_nvd_items(data, location, stats, table)
        return
    except msgspec.DecodeError as exc:
        stats.skip(SkipReason.MALFORMED_JSON, location, str(exc))
        return
    if doc.vulnerabilities is None:
        cve = _NvdCve(
            id=doc.id, lastModified=doc.lastModified, vulnStatus=doc.vulnStatus, metrics=doc.metrics
        )
        _nvd_record(cve, location, stats, table)
        return
    for item in doc.vulnerabilities:
        _nvd_record(item.cve, location, stats, table)


def _read_nvd_items(
    data: bytes | bytearray, location: str, stats: IngestStats, table: CveSeverities
) -> None:
    try:
        page = _NVD_PAGE.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError included: not even a list of items
        stats.skip(SkipReason.INVALID_RECORD, location, str(exc))
        return
    for raw in page.vulnerabilities:
        try:
            item = _NVD_ITEM.decode(raw)
        except msgspec.DecodeError as exc:
            stats.skip(SkipReason.INVALID_RECORD, location, str(exc))
            continue
        _nvd_record(item.cve, location, stats, table)


_NVD_KINDS = (
    ("cvssMetricV31", CvssType.V3),
    ("cvssMetricV30", CvssType.V3),
    ("cvssMetricV40", CvssType.V4),
    ("cvssMetricV2", CvssType.V2),
)


def _nvd_record(
    cve: _NvdCve | None, location: str, stats: IngestStats, table: CveSeverities
) -> None:
    cve_id = cve.id.strip() if cve is not None else ""
    if cve is None or not cve_id.startswith("CVE-"):
        stats.skip(SkipReason.MISSING_ID, location, "NVD record without a CVE id")
        return
    table.records["nvd"] += 1
    if cve.vulnStatus.strip().lower() == "rejected":
        table.rejected += 1
        return
    if cve.metrics is None:
        return
    found: list[tuple[int, float, CveRating]] = []
    for field, kind in _NVD_KINDS:
        for m in getattr(cve.metrics, field):
            if m.cvssData is None:
                continue
            rater, source = _nvd_rater(m)
            got = _rating(
                kind,
                m.cvssData.vectorString,
                m.cvssData.baseScore,
                m.cvssData.baseSeverity or m.baseSeverity,
                source,
                stats,
            )
            if got is not None:
                found.append((rank(kind, rater, _Origin.NVD), got[1], got[0]))
    picked = _pick(found)
    if picked is not None:
        table.offer(cve_id, picked[0], cve.lastModified, picked[1])


def _nvd_rater(m: _NvdMetric) -> tuple[Rater, str]:
    if m.type.strip().lower() == "primary":
        return Rater.NVD, "nvd"
    source = m.source.strip()
    if source == CISA_ADP_ORG:
        return Rater.CISA_ADP, "cisa-adp"
    # Every other Secondary score is the CNA's, named as NVD names it.
    return Rater.CNA, f"cna:{source}" if source else "cna"


# --- CVE JSON 5 -----------------------------------------------------------------------------


class _Cvss5(msgspec.Struct, gc=False):
    vectorString: str = ""
    baseScore: Any = None
    baseSeverity: Any = None


class _Metric5(msgspec.Struct, gc=False):
    cvssV4_0: _Cvss5 | None = None
    cvssV3_1: _Cvss5 | None = None
    cvssV3_0: _Cvss5 | None = None
    cvssV2_0: _Cvss5 | None = None


class _Provider(msgspec.Struct, gc=False):
    shortName: str = ""
    orgId: str = ""


class _Container(msgspec.Struct, gc=False):
    metrics: list[_Metric5] = []
    providerMetadata: _Provider | None = None


class _Containers(msgspec.Struct, gc=False):
    cna: _Container | None = None
    adp: list[_Container] = []


class _Meta5(msgspec.Struct, gc=False):
    cveId: str = ""
    state: str = ""
    assignerShortName: str = ""
    dateUpdated: str = ""


class _Record5(msgspec.Struct, gc=False):
    cveMetadata: _Meta5 | None = None
    containers: _Containers | None = None


_CVE5 = msgspec.json.Decoder(_Record5)
_CVE5_KINDS = (
    ("cvssV3_1", CvssType.V3),
    ("cvssV3_0", CvssType.V3),
    ("cvssV4_0", CvssType.V4),
    ("cvssV2_0", CvssType.V2),
)


def read_cve5(
    data: bytes | bytearray, location: str, stats: IngestStats, table: CveSeverities
) -> None:
    """Read one CVE JSON 5 record (a CVE List file) into ``table``. Never raises for bad
    data: it is a skip in ``stats``."""
    try:
        rec = _CVE5.decode(data)
    except msgspec.ValidationError as exc:
        stats.skip(SkipReason.INVALID_RECORD, location, str(exc))
        return
    except msgspec.DecodeError as exc:
        stats.skip(SkipReason.MALFORMED_JSON, location, str(exc))
        return
    meta = rec.cveMetadata
    cve_id = meta.cveId.strip() if meta is not None else ""
    if meta is None or not cve_id.startswith("CVE-"):
        stats.skip(SkipReason.MISSING_ID, location, "CVE record without cveMetadata.cveId")
        return
    table.records["cve5"] += 1
    if meta.state.strip().upper() == "REJECTED":
        table.rejected += 1
        return
    if rec.containers is None:
        return
    found: list[tuple[int, float, CveRating]] = []
    cna = rec.containers.cna
    if cna is not None:
        name = (cna.providerMetadata.shortName if cna.providerMetadata else "").strip()
        name = name or meta.assignerShortName.strip()
        _container5(cna, Rater.CNA, f"cna:{name}" if name else "cna", found, stats)
    for adp in rec.containers.adp:
        provider = adp.providerMetadata or _Provider()
        if provider.shortName.strip() == "CISA-ADP" or provider.orgId.strip() == CISA_ADP_ORG:
            _container5(adp, Rater.CISA_ADP, "cisa-adp", found, stats)
        else:
            name = provider.shortName.strip()
            _container5(adp, Rater.ADP, f"adp:{name}" if name else "adp", found, stats)
    picked = _pick(found)
    if picked is not None:
        table.offer(cve_id, picked[0], meta.dateUpdated, picked[1])


def _container5(
    container: _Container,
    rater: Rater,
    source: str,
    found: list[tuple[int, float, CveRating]],
    stats: IngestStats,
) -> None:
    for metric in container.metrics:
        for field, kind in _CVE5_KINDS:
            data: _Cvss5 | None = getattr(metric, field)
            if data is None:
                continue
            got = _rating(kind, data.vectorString, data.baseScore, data.baseSeverity, source, stats)
            if got is not None:
                found.append((rank(kind, rater, _Origin.CVE5), got[1], got[0]))
