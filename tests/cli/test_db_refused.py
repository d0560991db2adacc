"""A version even apk-tools cannot order is a visible skip on osv.dev's path too: ``regsweep
db build`` names each one (advisory, package, version, file, reason) on stderr, ``db info``
lists them (text and ``--json``), and the advisory is never indexed as affecting nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

from regsweep.matcher.advisories import parse_ecosystem
from regsweep.matcher.index import store
from tests import paths
from tests.example import REGSWEEP

OSV_ALPINE = paths.DATA / "osv-alpine"
REASON = "'-' may only start an '-rN' revision at offset 6"


def regsweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REGSWEEP, *args], capture_output=True, text=True, check=False)


def package_key(ecosystem: str, name: str) -> bytes:
    info = parse_ecosystem(ecosystem)
    assert info is not None
    return store.package_key(info.ecosystem, name)


def test_an_osv_alpine_fix_apk_cannot_order_is_named_at_build_and_in_db_info(
    tmp_path: Path,
) -> None:
    db = tmp_path / "adv.lmdb"
    built = regsweep("db", "build", "--db", str(db), str(OSV_ALPINE))
    assert built.returncode == 0, built.stderr
    lines = {
        adv: (
            f"  {adv} (python2 fixed '2.7.16-33', {OSV_ALPINE / f'{adv}.json'} "
            f"(affected[{entry}], Alpine:v3.11)): {REASON}"
        )
        for adv, entry in (("ALPINE-CVE-2019-16056", 3), ("ALPINE-CVE-2019-16935", 0))
    }
    err = built.stderr.splitlines()
    assert "warning: 2 versions not indexed, their version scheme cannot order them" in (
        built.stderr
    )
    assert all(line in err for line in lines.values()), built.stderr
    # Refused at ingest, named: not left to the index's anonymous count.
    assert "invalid apk version" not in built.stderr

    info = regsweep("db", "info", "--db", str(db))
    assert info.returncode == 0
    assert all(line in info.stdout.splitlines() for line in lines.values()), info.stdout
    doc = msgspec.json.decode(regsweep("db", "info", "--db", str(db), "--json").stdout)
    assert doc["build_skipped"] == {}
    assert doc["ingest"]["skipped"] == {"bad_version": 1}
    assert [
        {k: r[k] for k in ("advisory", "package", "version", "event", "reason")}
        for r in doc["ingest"]["refused_versions"]
    ] == [
        {
            "advisory": adv,
            "package": "python2",
            "version": "2.7.16-33",
            "event": "fixed",
            "reason": REASON,
        }
        for adv in lines
    ]

    with store.AdvisoryIndex(db) as index:
        # The record with nothing left is not in the index at all (not "affects nothing");
        # the other keeps what can be ordered, and python2 on v3.11 has no row of it.
        assert index.lookup_alias("ALPINE-CVE-2019-16935") == []
        assert [a.id for a in index.lookup_alias("ALPINE-CVE-2019-16056")] == [
            "ALPINE-CVE-2019-16056"
        ]
        assert index.meta.advisories == 1
        tables = index.tables(
            [package_key("Alpine:v3.11", "python2"), package_key("Alpine:v3.11", "python3")]
        )
        assert list(tables) == [package_key("Alpine:v3.11", "python3")]
