"""Alpine secdb fixed versions from the feed to a finding, through the ``regsweep`` commands.

``regsweep db build`` reads real secdb data, ``regsweep match`` matches installed apk
packages against it, ``regsweep db info`` shows what was left out: the apk scheme's two
kinds of unusual fixed version meet every step (an apk-tools 2.10 version that must be
ordered, a misspelt one that must be named, never only counted).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import msgspec
import pytest
import yaml

from regsweep.matcher.advisories import SkipReason, load
from regsweep.matcher.advisories.secdb import vulnerability_ids
from tests import paths
from tests.example import REGSWEEP

SAMPLE = paths.DATA / "apk-secdb"


def _regsweep(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([REGSWEEP, *args], input=stdin, capture_output=True, check=True)


def _package_line(name: str, version: str, ecosystem: str = "Alpine:v3.11") -> bytes:
    pkg = {"name": name, "version": version, "type": "apk", "ecosystem": ecosystem}
    return msgspec.json.encode({"kind": "package", "schema_version": 1, "package": pkg})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The index of the sample, and what ``db build`` wrote on stderr."""
    db = tmp_path_factory.mktemp("apk-secdb") / "adv.lmdb"
    out = _regsweep("db", "build", "--db", str(db), str(SAMPLE))
    return db, out.stderr.decode()


@pytest.mark.parametrize(
    ("installed", "vulnerable"),
    [
        ("6.6.1-r0", True),  # the case: no finding while 6.6.2p1-r0 was refused
        ("6.6.1p1-r5", True),  # the same package in apk-tools 2.10's own spelling
        ("6.6.2-r0", True),
        ("6.6.2p1-r0", False),  # the fix itself
        ("6.6.2p1-r1", False),
        ("6.6.4p1-r0", False),
        ("6.6.4_p1-r0", False),
    ],
)
def test_opensmtpd_gets_the_cve_2020_7247_finding_below_6_6_2p1(
    built: tuple[Path, str], installed: str, vulnerable: bool
) -> None:
    """OpenSMTPD below Alpine 3.11's ``6.6.2p1-r0`` is vulnerable to CVE-2020-7247 (remote
    root code execution); the fix and later builds are not."""
    db, _ = built
    out = _regsweep("match", "--db", str(db), stdin=_package_line("opensmtpd", installed) + b"\n")
    found = [msgspec.json.decode(line)["advisory"]["id"] for line in out.stdout.splitlines()]
    assert found == (["Alpine:v3.11/opensmtpd/CVE-2020-7247"] if vulnerable else [])


def test_a_fixed_version_no_scheme_orders_is_named_at_build_and_in_db_info(
    built: tuple[Path, str],
) -> None:
    """python2's ``2.7.16-33``: the build warns naming each advisory and the package, and
    ``db info`` lists them again; python2's other advisories still match."""
    db, build_stderr = built
    info = _regsweep("db", "info", "--db", str(db)).stdout.decode()
    for text in (build_stderr, info):
        assert "warning: 2 versions not indexed" in text
        for cve in ("CVE-2019-16056", "CVE-2019-16935"):
            assert f"Alpine:v3.11/python2/{cve} (python2 fixed '2.7.16-33', " in text
    as_json = msgspec.json.decode(_regsweep("db", "info", "--db", str(db), "--json").stdout)
    assert [r["advisory"] for r in as_json["ingest"]["refused_versions"]] == [
        "Alpine:v3.11/python2/CVE-2019-16056",
        "Alpine:v3.11/python2/CVE-2019-16935",
    ]
    out = _regsweep("match", "--db", str(db), stdin=_package_line("python2", "2.7.16-r0"))
    found = sorted(msgspec.json.decode(line)["advisory"]["id"] for line in out.stdout.splitlines())
    assert found == ["Alpine:v3.11/python2/CVE-2019-9636", "Alpine:v3.11/python2/CVE-2019-9948"]


# The grammar the apk scheme accepts, written independently of both tokenisers (as in
# tests/matcher/versions/test_apk.py): the oracle for which versions must be refused.
_APK = re.compile(
    r"[0-9]+(\.[0-9]+)*([a-z][0-9]*)?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*"
    r"(~[0-9a-f]+)?(-r[0-9]+)?"
)


def test_every_alpine_secdb_fix_is_indexed_or_named(shared_data: Path) -> None:
    """Over all of ../shared's alpine-secdb releases: the refused list is exactly the
    (advisory, version) pairs whose version the grammar rejects, the skips are the ids left
    with no fix, and OpenSMTPD's fix is indexed."""
    root = shared_data / "advisories" / "alpine-secdb"
    expected = set()
    for f in sorted(root.glob("v*/*.yaml")):
        doc = yaml.safe_load(f.read_text())
        release = doc["distroversion"]
        for p in doc.get("packages") or []:
            for version, ids in (p["pkg"].get("secfixes") or {}).items():
                if not _APK.fullmatch(str(version)):
                    name = p["pkg"]["name"]
                    # Ids as the loader keys them (its own tests cover that part).
                    primary = [vulnerability_ids(str(line))[0] for line in ids]
                    expected |= {
                        (f"Alpine:{release}/{name}/{i[0]}", str(version)) for i in primary if i
                    }
    loaded, stats = load(sorted(root.glob("v*")))
    records = list(loaded)
    refused = {(r.advisory, r.version) for r in stats.refused_versions}
    assert refused == expected
    assert len(stats.refused_versions) == len(expected) > 30
    assert {v for _, v in refused} >= {"2.7.16-33", "4.8.0.-r1", "0.8.21.r2"}
    # What was read holds only versions the scheme orders; an advisory is missing exactly
    # when all of its fixes were refused, and each of those is one bad_version skip.
    got = {a.id: a for a in records}
    for adv in records:
        assert all(_APK.fullmatch(v) for v in adv.affected[0].fixed_versions()), adv.id
    gone = {adv for adv, _ in refused} - set(got)
    assert stats.skipped[SkipReason.BAD_VERSION] == len(gone) > 0
    fix = got["Alpine:v3.11/opensmtpd/CVE-2020-7247"]
    assert fix.affected[0].fixed_versions() == ["6.6.2p1-r0"]
