"""Severity for every finding, end to end: ``db build`` of the bundled advisory samples with
and without the CVE samples (``tests/data/cve``), then ``scan`` of the example image and
``db info``, each a real subprocess.

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

import lmdb
import msgspec
import pytest

from regsweep.matcher.index import catalog
from tests import paths
from tests.example import REGSWEEP, example_image
from tests.feeds import MirrorServer, write_cve_mirror, write_osv_mirror

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


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_image(tmp_path_factory.mktemp("severity") / "image")


@pytest.fixture(scope="module")
def ignore_checks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "ignore.yaml"
    rules = "".join(f"  - id: {c}\n    reason: not under test here\n" for c in CHECKS)
    path.write_text("ignore:\n" + rules)
    return path


def scan(db: Path, image: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """The exit code, the vulnerability records' advisories by id, and stderr."""
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), *args, f"oci:{image}:latest"],
        capture_output=True,
        text=True,
        check=False,
    )
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    found = {r["advisory"]["id"]: r["advisory"] for r in records if r["kind"] == "vulnerability"}
    return proc.returncode, found, proc.stderr


def test_a_dsa_without_severity_takes_its_worst_cves_nvd_rating_and_fails_the_build(
    tmp_path: Path, image: Path, ignore_checks: Path
) -> None:
    """DSA-5044-1 is UNKNOWN, and ``--fail-on high`` passes the image, until the index has
    the CVE records: then it is CRITICAL from NVD (CVE-2022-22751's 9.8, the worst of the
    CVEs it fixes: CVE-2022-22737 is 7.5), with the score it came from, and the scan fails."""
    args = ("--fail-on", "high", "--ignore-file", str(ignore_checks))
    without = build(tmp_path / "without.lmdb", ADV / "osv" / "debian")
    code, found, err = scan(without, image, *args)
    assert code == 0, err
    dsa = found["DSA-5044-1"]
    assert (dsa["severity"], dsa["severity_source"], dsa["cvss"]) == ("UNKNOWN", None, [])

    with_cves = build(tmp_path / "with.lmdb", ADV / "osv" / "debian", CVE)
    code, found, err = scan(with_cves, image, *args)
    assert code == 1, err
    dsa = found["DSA-5044-1"]
    assert (dsa["severity"], dsa["severity_source"]) == ("CRITICAL", "nvd")
    assert dsa["cvss"] == [
        {"type": "CVSS_V3", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "score": 9.8}
    ]


def test_a_vendor_rating_is_kept_over_the_cves_and_every_rater_is_named(
    tmp_path: Path, image: Path
) -> None:
    """GitHub's LOW stays (its CVE's CRITICAL does not replace a vendor's rating), a
    finding with its own CVSS keeps it, and the secdb findings, which rate nothing, take
    their CVE's rating with ``severity_source`` naming who gave it; a rejected CVE rates
    nothing."""
    db = build(tmp_path / "adv.lmdb", ADV / "osv", ADV / "secdb", CVE)
    _, found, err = scan(db, image)
    got = {i: (a["severity"], a["severity_source"]) for i, a in found.items()}
    assert got["GHSA-75v8-2h7p-7m2m"] == ("LOW", "database_specific"), err
    assert got["PYSEC-2020-342"] == ("CRITICAL", "cvss_v3")
    alpine = "Alpine:v3.11/"
    assert got[alpine + "ansible/CVE-2019-14846"] == ("HIGH", "cisa-adp")  # v3 over NVD's v2
    assert got[alpine + "ansible/CVE-2019-14858"] == ("MEDIUM", "cna:redhat")
    assert got[alpine + "ansible/CVE-2019-14904"] == ("CRITICAL", "cisa-adp")
    assert got[alpine + "ansible/CVE-2019-14905"] == ("MEDIUM", "nvd")
    assert got[alpine + "busybox/CVE-2019-5747"] == ("HIGH", "cna:cve@mitre.org")
    assert got[alpine + "ansible/CVE-2019-14856"] == ("UNKNOWN", None)
    busybox = found[alpine + "busybox/CVE-2019-5747"]["cvss"]
    assert [(c["type"], c["score"]) for c in busybox] == [("CVSS_V4", 8.7)]


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
    # CVE-2019-14856, rejected, is in both formats; CVE-2019-14858 too, rated.
    assert (after["severity"]["cve_records"], after["severity"]["rejected"]) == (
        {"cve5": 3, "nvd": 8},
        2,
    )
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
    assert "8 CVEs rated (cisa-adp 2, cna 2, nvd 4) from 11 CVE records (2 rejected)" in text


def test_an_index_without_cve_ratings_still_matches(tmp_path: Path, image: Path) -> None:
    """An index written before the ``cves`` database existed (here: the database dropped
    from a new one) reads as one without ratings: findings as before, nothing fails."""
    db = build(tmp_path / "adv.lmdb", ADV / "osv" / "debian", CVE)
    env = lmdb.open(str(db), subdir=False, max_dbs=8, lock=False)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"cves", txn=txn), delete=True)
    env.close()
    code, found, err = scan(db, image)
    assert code == 0, err
    assert found["DSA-5044-1"]["severity"] == "UNKNOWN"


def test_db_update_fetches_the_nvd_feeds_by_default(tmp_path: Path, image: Path) -> None:
    """``db update`` with no ``--ecosystem`` fetches every NVD year from the mirror, at
    NVD's paths, and the index it builds rates the DSA: the catalog's CVE feeds are what
    makes a Debian finding rated without any ``db build`` by hand. The CVE List, only
    fetched when named, is not asked for."""
    root = tmp_path / "mirror"
    names = [f.name for f in catalog.CATALOG]
    write_osv_mirror(root, [ADV / "osv"], only=names, empty=names)
    write_cve_mirror(root, [CVE / "nvd"])
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        proc = subprocess.run(
            [REGSWEEP, "db", "update", "--db", str(db), "--mirror", srv.base],
            capture_output=True,
            text=True,
            check=False,
        )
        asked = {r.path for r in srv.requests}
    assert proc.returncode == 0, proc.stderr
    nvd = {f"/feeds/json/cve/2.0/nvdcve-2.0-{f.name[4:]}.json.zip" for f in catalog.GROUPS["NVD"]}
    assert nvd <= asked and not any("cvelistV5" in p for p in asked)
    assert info(db)["cves"] == 7  # the NVD sample's CVEs, one of them rejected
    _, found, err = scan(db, image)
    dsa = found["DSA-5044-1"]
    assert (dsa["severity"], dsa["severity_source"]) == ("CRITICAL", "nvd"), err
