"""The vendor's own rating of an advisory, where the feed carries one, before any CVSS:
Red Hat's impact (and AlmaLinux's and Rocky Linux's, rebuilds of the same errata), which
their OSV records carry only as the summary's first word. (GHSA's ``database_specific``,
Ubuntu's priority and Debian's urgency are in ``test_osv.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from regsweep.matcher import advisories
from regsweep.matcher.advisories import Severity, SeveritySource
from tests import paths

SAMPLES = paths.DATA / "osv-redhat"


def _by_id() -> dict[str, advisories.Advisory]:
    records, stats = advisories.load(SAMPLES)
    out = {a.id: a for a in records}
    assert stats.skipped == {}
    return out


def test_red_hat_impact_is_the_vendors_rating_over_its_cvss() -> None:
    """RHSA: ``Important`` is HIGH, though its own CVSS vector scores 5.9 (MEDIUM)."""
    rhsa = _by_id()["RHSA-2026:0101"]
    assert (rhsa.severity, rhsa.severity_source, rhsa.severity_vendor) == (
        Severity.HIGH,
        SeveritySource.VENDOR,
        "Important",
    )
    assert rhsa.cvss[0].score == 5.9


def test_rebuilds_carry_the_impact_too_and_a_summary_without_one_falls_back() -> None:
    got = _by_id()
    alsa, rlsa = got["ALSA-2026:0102"], got["RLSA-2026:0103"]
    assert (alsa.severity, alsa.severity_source) == (Severity.CRITICAL, SeveritySource.VENDOR)
    assert (rlsa.severity, rlsa.severity_source) == (Severity.LOW, SeveritySource.CVSS_V3)


def test_only_these_vendors_summaries_are_read_as_ratings(tmp_path: Path) -> None:
    """A GHSA whose summary happens to start "Critical: …" (and that has no rating of its
    own) is rated by its CVSS: the impact word is the Red Hat family's convention only."""
    ghsa = paths.DATA / "advisories" / "osv" / "ghsa" / "GHSA-75v8-2h7p-7m2m.json"
    record: dict[str, Any] = msgspec.json.decode(ghsa.read_bytes())
    del record["database_specific"]["severity"]
    record["summary"] = "Critical: " + record["summary"]
    (tmp_path / "GHSA-75v8-2h7p-7m2m.json").write_bytes(msgspec.json.encode(record))
    records, _ = advisories.load(tmp_path)
    [adv] = list(records)
    assert (adv.severity, adv.severity_source) == (Severity.LOW, SeveritySource.CVSS_V3)
