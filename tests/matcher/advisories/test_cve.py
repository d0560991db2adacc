"""CVE severity records (NVD JSON 2.0, CVE JSON 5) read into one rating per CVE id.

The samples (``tests/data/cve``, see its README) give CVEs several ratings each, in both
formats, so that each rule of ``advisories.cve`` decides one of them: the CVSS version first
(v3.x, v4.0, v2), then the rater (NVD's analysis, the CNA, CISA-ADP), then the CVE record
before NVD's copy of it, then the newer copy.
"""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import msgspec
import pytest

from regsweep.matcher import advisories
from regsweep.matcher.advisories import cve
from regsweep.matcher.advisories.model import CvssType, Severity
from regsweep.matcher.advisories.stats import IngestStats, SkipReason
from tests import paths

CVE_DATA = paths.DATA / "cve"
NVD = CVE_DATA / "nvd"
CVELIST = CVE_DATA / "cvelist"


def load(*sources: Path) -> tuple[cve.CveSeverities, IngestStats]:
    table = cve.CveSeverities()
    records, stats = advisories.load(list(sources), cves=table)
    assert list(records) == []  # CVE records rate CVEs: they are no advisories
    return table, stats


def rated(table: cve.CveSeverities, cve_id: str) -> tuple[Severity, str, CvssType, float | None]:
    r = table.get(cve_id)
    assert r is not None and r.cvss is not None, cve_id
    return r.severity, r.source, r.cvss.type, r.cvss.score


def test_both_formats_are_detected_and_read_whole() -> None:
    """Invariant: every NVD document (a yearly feed, a lone CVE object) and CVE List record
    is read, nothing is skipped, and the CVE List's change log is no record."""
    table, stats = load(CVE_DATA)
    assert stats.formats == {"nvd-json": 2, "cve-json5": 3}
    assert stats.skipped == {} and stats.ignored_files >= 1  # README.md, deltaLog.json
    assert table.records == {"nvd": 8, "cve5": 3}
    assert table.rejected == 2


def test_nvd_analysis_beats_the_cna_within_a_version() -> None:
    """CVE-2022-22751: NVD's Primary v3.1 (9.8) over the CNA's v3.1 (8.8) and NVD's v2."""
    table, _ = load(NVD)
    assert rated(table, "CVE-2022-22751") == (Severity.CRITICAL, "nvd", CvssType.V3, 9.8)


def test_a_v3_score_beats_a_v2_one_whoever_gave_it() -> None:
    """CVE-2019-14846: CISA-ADP's v3.1 (7.5 HIGH) over NVD's own v2 (5.0 MEDIUM), which has
    no Critical band and is the oldest scale."""
    table, _ = load(NVD)
    assert rated(table, "CVE-2019-14846") == (Severity.HIGH, "cisa-adp", CvssType.V3, 7.5)


def test_v4_only_ratings_take_the_records_own_score() -> None:
    """CVE-2019-5747: a CNA's v4.0 (not scored here) rates by the score the record gives,
    banded as v4 bands it; the CNA is named as NVD names it."""
    table, _ = load(NVD)
    assert rated(table, "CVE-2019-5747") == (Severity.HIGH, "cna:cve@mitre.org", CvssType.V4, 8.7)


def test_the_cve_record_beats_nvds_copy_of_the_same_cna_score() -> None:
    """CVE-2019-14858: the CNA's own record names it by its short name (``cna:redhat``);
    NVD's copy of the same score (``cna:secalert@redhat.com``) loses, in either read order."""
    for order in ((NVD, CVELIST), (CVELIST, NVD)):
        table, _ = load(*order)
        assert rated(table, "CVE-2019-14858") == (Severity.MEDIUM, "cna:redhat", CvssType.V3, 6.5)
    table, _ = load(NVD)
    assert table.get("CVE-2019-14858").source == "cna:secalert@redhat.com"  # type: ignore[union-attr]


def test_cisa_adp_rates_what_the_cna_did_not() -> None:
    """CVE-2019-14904: no CNA metric, CISA-ADP's Vulnrichment v3.1 (its SSVC entry and the
    CVE Program container rate nothing)."""
    table, _ = load(CVELIST)
    assert rated(table, "CVE-2019-14904") == (Severity.CRITICAL, "cisa-adp", CvssType.V3, 9.8)


def test_rejected_cves_rate_nothing_and_a_lone_nvd_object_is_read() -> None:
    table, _ = load(CVE_DATA)
    assert table.get("CVE-2019-14856") is None
    assert rated(table, "CVE-2019-14905") == (Severity.MEDIUM, "nvd", CvssType.V3, 5.6)


def test_the_kept_ratings_do_not_depend_on_the_read_order() -> None:
    """Invariant: the rule is a total order, so the files' order changes nothing."""
    one, _ = load(NVD, CVELIST)
    other, _ = load(CVELIST, NVD)
    assert list(one.items()) == list(other.items())
    assert len(one) == 8


def test_of_two_copies_of_one_record_the_newer_wins(tmp_path: Path) -> None:
    """The same NVD record twice (say, the yearly feed and a newer copy of the one CVE):
    the later ``lastModified`` decides, whichever is read first."""
    newer: dict[str, Any] = msgspec.json.decode((NVD / "CVE-2019-14905.json").read_bytes())
    newer["lastModified"] = "2026-01-02T00:00:00.000"
    data = newer["metrics"]["cvssMetricV31"][0]["cvssData"]
    data["vectorString"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"
    data["baseScore"] = 9.1
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / "CVE-2019-14905.json").write_bytes(msgspec.json.encode(newer))
    for order in ((NVD, tmp_path / "newer"), (tmp_path / "newer", NVD)):
        table, _ = load(*order)
        assert rated(table, "CVE-2019-14905") == (Severity.CRITICAL, "nvd", CvssType.V3, 9.1)


def test_a_bad_record_costs_only_itself(tmp_path: Path) -> None:
    """A feed with one record of the wrong shape keeps the others (one ``invalid_record``);
    a truncated document is ``malformed_json``; neither raises."""
    feed: dict[str, Any] = msgspec.json.decode((NVD / "nvdcve-2.0-sample.json").read_bytes())
    feed["vulnerabilities"][0]["cve"]["metrics"] = "not an object"
    (tmp_path / "nvdcve-2.0-bad.json").write_bytes(msgspec.json.encode(feed))
    data = (CVELIST / "cves" / "2019" / "14xxx" / "CVE-2019-14904.json").read_bytes()
    (tmp_path / "CVE-2019-14904.json").write_bytes(data[: len(data) // 2])
    table, stats = load(tmp_path)
    assert stats.skipped == {SkipReason.INVALID_RECORD: 1, SkipReason.MALFORMED_JSON: 1}
    assert "CVE-2022-22751" not in table  # the bad one
    assert len(table) == 5 and table.get("CVE-2019-14846") is not None  # 6 rated, one bad


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        # The worst CVE of an advisory that fixes several decides; a score breaks a tie.
        ([("MEDIUM", 5.0), ("CRITICAL", 9.0), ("HIGH", 8.0)], 1),
        ([("HIGH", 7.1), ("HIGH", 8.9)], 1),
        ([("HIGH", 8.0), ("HIGH", 8.0)], 0),
        ([], None),
    ],
)
def test_best_of_several_cves(ratings: list[tuple[str, float]], expected: int | None) -> None:
    made = [
        cve.CveRating(
            severity=Severity(sev),
            source=f"nvd{i}",
            cvss=advisories.Cvss(type=CvssType.V3, vector="CVSS:3.1/x", score=score),
        )
        for i, (sev, score) in enumerate(ratings)
    ]
    got = cve.best(made)
    assert got is (None if expected is None else made[expected])


def test_cve_ids_come_from_every_id_field_once() -> None:
    assert cve.cve_ids(("DSA-1",), ["CVE-1", "GHSA-x"], ["CVE-2", "CVE-1"], ["CVE-3"]) == [
        "CVE-1",
        "CVE-2",
        "CVE-3",
    ]


def test_the_cve_list_is_read_as_githubs_archive_of_it(tmp_path: Path) -> None:
    """``cvelistV5/archive/refs/heads/main.zip`` (what the catalog's ``CVE-List`` feed is):
    one top folder, the records under ``cves/``, and beside them the change logs and the
    ``.github`` workflows (YAML), none of which is read as a record or counted as a skip."""
    archive = tmp_path / "main.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(CVELIST.rglob("*.json")):
            zf.write(path, f"cvelistV5-main/{path.relative_to(CVELIST)}")
        zf.writestr("cvelistV5-main/.github/workflows/update.yml", "on: [push]\njobs: {}\n")
        zf.writestr("cvelistV5-main/README.md", "# CVE List V5\n")
    table, stats = load(archive)
    assert stats.skipped == {} and stats.formats == {"cve-json5": 3}
    assert stats.ignored_files == 3  # the workflow, the README, the change log
    assert rated(table, "CVE-2019-14904")[:2] == (Severity.CRITICAL, "cisa-adp")


def _big_feed(tmp_path: Path) -> tuple[Path, int]:
    """A zipped NVD feed over the large-member threshold, and its unzipped size."""
    # The NVD sample as a zipped feed larger than _files' large-member threshold (32 MiB):
    # its descriptions padded, as a real year's feed is mostly text.
    feed: dict[str, Any] = msgspec.json.decode((NVD / "nvdcve-2.0-sample.json").read_bytes())
    for item in feed["vulnerabilities"]:
        item["cve"]["descriptions"].append({"lang": "es", "value": "x" * (5 << 20)})
    data = msgspec.json.encode(feed)
    assert len(data) > 32 << 20
    archive = tmp_path / "nvdcve-2.0-2022.json.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("nvdcve-2.0-2022.json", data)
    return archive, len(data)


def test_a_large_feed_in_a_zip_is_read_whole_and_a_damaged_one_is_a_skip(tmp_path: Path) -> None:
    """A member too large to inflate twice over (an NVD year) is read a slice at a time
    into one buffer: the same ratings as the small file; its CRC is still checked, so a
    damaged member is an ``unreadable`` skip, never a half-read feed."""
    archive, _ = _big_feed(tmp_path)
    table, stats = load(archive)
    small, _ = load(NVD / "nvdcve-2.0-sample.json")
    assert stats.skipped == {} and list(table.items()) == list(small.items())
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    raw = bytearray(archive.read_bytes())
    # A byte of the deflate stream, past the local header and the name: the data is
    # damaged, the header and directory intact.
    raw[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    table, stats = load(archive)
    assert stats.skipped == {SkipReason.UNREADABLE: 1} and len(table) == 0


def test_a_large_member_is_held_once_while_it_is_read(tmp_path: Path) -> None:
    """Reading an NVD year costs about its own size, not twice it (``ZipFile.read`` holds
    the inflated stream and the result at once): traced, the load peaks under 1.5 times
    the member."""
    archive, size = _big_feed(tmp_path)
    tracemalloc.start()
    try:
        table, _ = load(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 6
    assert peak < 1.5 * size, f"peak {peak / size:.2f} x the member"


def test_the_table_holds_little_per_cve(tmp_path: Path) -> None:
    """NVD's feeds rate ~300,000 CVEs, held through the whole index build: equal ratings
    are one object and times a number, under 250 bytes a CVE here (over 300 before)."""
    feed: dict[str, Any] = msgspec.json.decode((NVD / "nvdcve-2.0-sample.json").read_bytes())
    items = feed["vulnerabilities"]
    feed["vulnerabilities"] = [
        {"cve": {**item["cve"], "id": f"CVE-2024-{n:06d}"}}
        for n in range(20_000)
        for item in items[n % len(items) : n % len(items) + 1]
    ]
    (tmp_path / "nvdcve-2.0-2024.json").write_bytes(msgspec.json.encode(feed))
    del feed, items
    tracemalloc.start()
    try:
        table, _ = load(tmp_path)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) > 15_000  # the rejected sample CVE's copies rate nothing
    assert held / len(table) < 250, f"{held / len(table):.0f} bytes per CVE"
