"""Load advisories from any mix of inputs, detecting each file's format.

``load(paths)`` walks every path (a file, a directory tree or a zip), decides per file
whether it holds an OSV record (JSON or YAML, one record or a list), a secdb document, a
Wolfi advisory document or CVE records (NVD JSON 2.0, CVE JSON 5), and streams
``Advisory`` values; the CVE records' ratings go to the ``CveSeverities`` table the caller
passes (``cve.py``), which the index build stores beside the advisories. Nothing aborts a load: an
unreadable path, a malformed file, a record with a bad event are each a ``SkipReason`` count
in the ``IngestStats`` returned beside the iterator, with the first few locations kept as
examples. Wolfi's secdb records are held to the end of the load, which drops those that a
Wolfi advisory document covers (``wolfi.Supersession``).

Detection looks at content, not only names: a ``.json`` file is decoded once into its
top-level keys (values left as raw, unparsed slices) to tell OSV (``id``/``affected``)
from secdb (``packages``/``secfixes``), NVD (``vulnerabilities``, or a lone CVE's
``sourceIdentifier``/``vulnStatus``) and CVE JSON 5 (``cveMetadata``/``containers``), then
decoded for real by the matching reader.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import assert_never

import msgspec

from regsweep.matcher.advisories import cve, osv, secdb, wolfi
from regsweep.matcher.advisories._files import Blob, iter_blobs, suffix_of
from regsweep.matcher.advisories._yaml import YAMLError, load_yaml
from regsweep.matcher.advisories.model import Advisory
from regsweep.matcher.advisories.stats import IngestStats, Note, SkipReason

__all__ = ["Format", "detect_json", "load"]

PathArg = str | os.PathLike[str]


class Format(enum.StrEnum):
    """What one input file holds."""

    OSV_JSON = "osv-json"
    OSV_YAML = "osv-yaml"
    SECDB_JSON = "secdb-json"
    SECDB_YAML = "secdb-yaml"
    #: Wolfi's advisory YAML (``schema-version: 2``, event histories; ``wolfi.py``).
    WOLFI_ADVISORY_YAML = "wolfi-advisory-yaml"
    #: NVD's JSON 2.0 CVE records: a feed, an API page or one CVE (``cve.py``).
    NVD_JSON = "nvd-json"
    #: A CVE JSON 5 record, as the CVE List keeps them (``cve.py``).
    CVE_JSON5 = "cve-json5"
    #: Parsed, but neither OSV nor secdb.
    UNKNOWN = "unknown"
    #: Not even parsed (malformed JSON or YAML).
    MALFORMED = "malformed"


_PROBE = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[msgspec.Raw])
_OSV_KEYS = frozenset({"id", "affected", "modified", "schema_version"})
# A lone NVD CVE object has an ``id`` too: these keys, which OSV never writes, tell it apart.
_NVD_CVE_KEYS = frozenset({"sourceIdentifier", "vulnStatus"})


def detect_json(data: bytes | bytearray) -> Format:
    """The format of a JSON document, from its top-level keys only."""
    return _probe_json(data)[0]


def _probe_json(data: bytes | bytearray) -> tuple[Format, str]:
    try:
        top = _PROBE.decode(data)
    except msgspec.DecodeError as exc:
        return Format.MALFORMED, str(exc)
    if isinstance(top, list):
        # A list of OSV records (an export format); secdb never is a list.
        return Format.OSV_JSON, ""
    if "packages" in top or "secfixes" in top:
        return Format.SECDB_JSON, ""
    if "cveMetadata" in top and "containers" in top:
        return Format.CVE_JSON5, ""
    if "vulnerabilities" in top or _NVD_CVE_KEYS & top.keys():
        return Format.NVD_JSON, ""
    if _OSV_KEYS & top.keys():
        return Format.OSV_JSON, ""
    return Format.UNKNOWN, ""


def load(
    paths: PathArg | Iterable[PathArg],
    *,
    include_withdrawn: bool = False,
    cves: cve.CveSeverities | None = None,
) -> tuple[Iterator[Advisory], IngestStats]:
    """Stream the advisories of every path, with the stats of the load.

    ``paths`` is one path or several; each may be a file, a directory (walked recursively,
    in sorted order) or a zip (osv.dev's per-ecosystem ``all.zip``). ``stats`` fills in as
    the iterator is consumed and is complete once it is exhausted. Withdrawn OSV records are
    skipped (and counted) unless ``include_withdrawn`` asks for them, e.g. to delete them
    from an index being updated. The CVE records met on the way rate their CVEs in ``cves``
    (complete, too, once the iterator is); without one they are read and counted only.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = IngestStats()
    table = cve.CveSeverities() if cves is None else cves
    return _stream(list(paths), stats, include_withdrawn, table), stats


def _stream(
    paths: list[PathArg], stats: IngestStats, include_withdrawn: bool, cves: cve.CveSeverities
) -> Iterator[Advisory]:
    # Hashes, not the keys themselves: a full osv.dev export is ~10^6 records, and a
    # (vanishingly rare) collision would only add a spurious note.
    seen: set[int] = set()
    # Wolfi's secdb records wait for the end of the load: a Wolfi advisory document read
    # later may supersede them (see ``wolfi.Supersession``).
    wolfi_secdb = wolfi.Supersession()
    for path in paths:
        for blob in iter_blobs(path, stats):
            for adv in _read_blob(blob, stats, include_withdrawn, cves):
                if not wolfi_secdb.defer(adv, blob.location):
                    _account(adv, stats, seen)
                    yield adv
    for adv in wolfi_secdb.release(stats):
        _account(adv, stats, seen)
        yield adv


def _account(adv: Advisory, stats: IngestStats, seen: set[int]) -> None:
    key = hash((adv.source, adv.id))
    if key in seen:
        # Both are yielded: which copy is right is the index's decision (newest
        # ``modified``), but the duplication should be visible.
        stats.note(Note.DUPLICATE_ID)
    else:
        seen.add(key)
    stats.record(adv.source, len(adv.affected), adv.modified)


def _count(stats: IngestStats, fmt: Format) -> None:
    stats.formats[fmt.value] = stats.formats.get(fmt.value, 0) + 1


def _read_blob(
    blob: Blob, stats: IngestStats, include_withdrawn: bool, cves: cve.CveSeverities
) -> list[Advisory]:
    if suffix_of(blob.name) == ".json":
        fmt, error = _probe_json(blob.data)
        _count(stats, fmt)
        return _read_json(fmt, error, blob, stats, include_withdrawn, cves)
    # .yaml / .yml (the walker yields nothing else)
    try:
        doc = load_yaml(bytes(blob.data))  # a copy only of a huge member (a bytearray)
    except YAMLError as exc:
        _count(stats, Format.MALFORMED)
        stats.skip(SkipReason.MALFORMED_YAML, blob.location, str(exc).replace("\n", " "))
        return []
    if secdb.is_secdb(doc):
        _count(stats, Format.SECDB_YAML)
        return secdb.read_document(doc, blob.location, stats)
    if wolfi.is_document(doc):
        _count(stats, Format.WOLFI_ADVISORY_YAML)
        return wolfi.read_document(doc, blob.location, stats)
    if isinstance(doc, list) or (isinstance(doc, Mapping) and _OSV_KEYS & doc.keys()):
        _count(stats, Format.OSV_YAML)
        return osv.read_object(doc, blob.location, stats, include_withdrawn=include_withdrawn)
    _count(stats, Format.UNKNOWN)
    stats.skip(SkipReason.UNSUPPORTED_FORMAT, blob.location, "YAML in no known advisory format")
    return []


def _read_json(
    fmt: Format,
    error: str,
    blob: Blob,
    stats: IngestStats,
    include_withdrawn: bool,
    cves: cve.CveSeverities,
) -> list[Advisory]:
    match fmt:
        case Format.OSV_JSON:
            return osv.read_json(
                blob.data, blob.location, stats, include_withdrawn=include_withdrawn
            )
        case Format.SECDB_JSON:
            # secdb documents are small (one release's packages): generic decoding is fine.
            return secdb.read_document(msgspec.json.decode(blob.data), blob.location, stats)
        case Format.NVD_JSON:
            # CVE records rate CVEs; they affect no package, so they yield no advisory.
            cve.read_nvd(blob.data, blob.location, stats, cves)
            return []
        case Format.CVE_JSON5:
            cve.read_cve5(blob.data, blob.location, stats, cves)
            return []
        case Format.MALFORMED:
            stats.skip(SkipReason.MALFORMED_JSON, blob.location, error)
            return []
        case Format.UNKNOWN:
            stats.skip(
                SkipReason.UNSUPPORTED_FORMAT,
                blob.location,
                "JSON that is neither OSV, secdb nor a CVE record",
            )
            return []
        case Format.OSV_YAML | Format.SECDB_YAML | Format.WOLFI_ADVISORY_YAML:
            raise AssertionError(f"detect_json returned a YAML format: {fmt}")
        case _:
            assert_never(fmt)
