"""Severity for every finding, end to end: ``db build`` of the bundled advisory samples with
and without the CVE samples (``tests/data/cve``), then ``db info``, each a real subprocess.

The example image's Debian finding DSA-5044-1 carries no severity of its own (Debian's DSA
records rate nothing) and names CVE-2022-22751, which the NVD sample rates CRITICAL; its
npm finding GHSA-75v8-2h7p-7m2m is rated LOW by GitHub and names CVE-2025-46653, which the
NVD sample rates CRITICAL; its Alpine secdb findings name CVEs that the NVD and CVE List
samples rate (or reject).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import msgspec

from tests import paths
from tests.example import REGSWEEP

ADV = paths.DATA / "advisories"
CVE = paths.DATA / "cve"
#: The example image's configuration findings, set aside so that only vulnerabilities
#: decide ``--fail-on`` here (RS-IMG-002 alone is CRITICAL).
CHECKS = ("RS-IMG-001", "RS-IMG-002", "RS-IMG-010", "RS-IMG-020", "RS-IMG-030")


def build(db: Path, *sources: Path) -> Path:
    subprocess.run(
        [REGSWEEP, "db", "build", "--db", str(db), *map(str, sources)],
        check=True,
        capture_output=True,
    )
    return db


def info(db: Path) -> dict[str, Any]:
    out = subprocess.run(
        [REGSWEEP, "db", "info", "--db", str(db), "--json"],
        check=True,
        capture_output=True,
    ).stdout
    doc: dict[str, Any] = msgspec.json.decode(out)
    return doc


def test_db_info_says_how_many_advisories_still_lack_a_severity(tmp_path: Path) -> None:
    """Of the Debian samples (DSA-5044-1, DSA-524, DLA-1420-1, none rated), the CVE
    samples rate DSA-5044-1 only; the Alpine secdb records of the five rated CVEs are
    rated too. The text says the same."""
    sources = (ADV / "osv", ADV / "secdb")
    before = info(build(tmp_path / "before.lmdb", *sources))
    db = build(tmp_path / "after.lmdb", *sources, CVE)
    after = info(db)
    assert before["cves"] == 0 and before["severity"]["rated_by_cve"] == 0
    assert after["cves"] == 8
    assert after["severity"]["cve_ratings"] == {"cisa-adp": 2, "cna": 2, "nvd": 4}
    b, a = before["severity"], after["severity"]
    assert a["unrated"] == b["unrated"] == b["still_unrated"]
    assert a["still_unrated"] == a["unrated"] - a["rated_by_cve"]
    debian = [s["still_unrated_by_source"]["osv:Debian"] for s in (b, a)]
    assert debian == [3, 2]
    unrated_alpine = [s["still_unrated_by_source"]["secdb:Alpine"] for s in (b, a)]
    # Every other advisory the CVEs rate is an Alpine secdb record (one per CVE, release
    # and package: busybox's CVE-2019-5747 is in two releases' files).
    assert unrated_alpine[0] - unrated_alpine[1] == a["rated_by_cve"] - 1 >= 5
    text = subprocess.run(
        [REGSWEEP, "db", "info", "--db", str(db)], check=True, capture_output=True, text=True
    ).stdout
    assert f"{a['still_unrated']} still lack a severity" in text
    assert "8 CVEs rated (cisa-adp 2, cna 2, nvd 4)" in text
