"""Triage on the product command: ``--severity``, ``--ignore-unfixed``, an ignore file,
OpenVEX and CycloneDX VEX, ``--show-suppressed``, and the upstream advisories of a Python
module that dpkg installed (set aside as ``os_package``). The example image's findings are
known: firefox-esr DSA-5044-1 (Debian, fixed), apache-skywalking PYSEC-2020-342 (PyPI,
CRITICAL, unfixed), formidable GHSA-75v8-2h7p-7m2m (npm, LOW, unfixed), five Alpine busybox
and ansible advisories, and misconfigurations RS-IMG-001/002/010/020/030."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec
import pytest

from tests import paths
from tests.example import REGSWEEP, example_image
from tests.formats import valid_sarif

Record = dict[str, object]

#: The real PyPA advisory for PyYAML < 5.4 (CVE-2020-14343), as OSV: the example's Debian
#: image has PyYAML 5.3.1 installed by dpkg (python3-yaml), which upstream advisories must
#: not judge (Debian's do), but ``--show-suppressed`` shows.
_PYYAML = {
    "id": "PYSEC-2021-142",
    "aliases": ["CVE-2020-14343", "GHSA-8q59-q68h-6hv4"],
    "modified": "2021-08-27T03:22:18.123456Z",
    "summary": "arbitrary code execution via full_load / FullLoader",
    "affected": [
        {
            "package": {"name": "pyyaml", "ecosystem": "PyPI", "purl": "pkg:pypi/pyyaml"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.4"}]}],
        }
    ],
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("triage")
    extra = root / "extra"
    extra.mkdir()
    (extra / "PYSEC-2021-142.json").write_bytes(msgspec.json.encode(_PYYAML))
    adv = paths.DATA / "advisories"
    db = root / "adv.lmdb"
    subprocess.run(
        [REGSWEEP, "db", "build", "--db", str(db), str(adv / "osv"), str(adv / "secdb"),
         str(extra)],
        check=True, capture_output=True,
    )  # fmt: skip
    return example_image(root / "image"), db


def scan(
    setup: tuple[Path, Path], *args: str, cwd: Path | None = None
) -> tuple[int, list[Record], str]:
    layout, db = setup
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), *args, f"oci:{layout}:latest"],
        capture_output=True, text=True, cwd=cwd, check=False,
    )  # fmt: skip
    return proc.returncode, [msgspec.json.decode(x) for x in proc.stdout.splitlines()], proc.stderr


def finding_id(r: Record) -> str:
    return r["advisory"]["id"] if r["kind"] == "vulnerability" else r["check"]["id"]  # type: ignore[index]


def set_aside(records: list[Record]) -> dict[str, dict[str, str]]:
    """The suppressed findings written (``--show-suppressed``): id → why."""
    return {
        finding_id(r): r["suppressed"]  # type: ignore[misc]
        for r in records
        if r["kind"] in ("vulnerability", "misconfiguration") and r["suppressed"]
    }


def findings(records: list[Record]) -> set[str]:
    """The ids of the findings that stand."""
    out = set()
    for r in records:
        if r.get("suppressed") and r["kind"] != "summary":
            continue
        if r["kind"] == "vulnerability":
            out.add(r["advisory"]["id"])  # type: ignore[index]
        elif r["kind"] == "misconfiguration":
            out.add(r["check"]["id"])  # type: ignore[index]
    return out


def summary(records: list[Record]) -> Record:
    assert records[-1]["kind"] == "summary"
    return records[-1]


ALL_VULNS = {
    "DSA-5044-1", "PYSEC-2020-342", "GHSA-75v8-2h7p-7m2m", "Alpine:v3.11/busybox/CVE-2019-5747",
    "Alpine:v3.11/ansible/CVE-2019-14904", "Alpine:v3.11/ansible/CVE-2019-14905",
    "Alpine:v3.11/ansible/CVE-2019-14846", "Alpine:v3.11/ansible/CVE-2019-14856",
    "Alpine:v3.11/ansible/CVE-2019-14858",
}  # fmt: skip
CHECKS = {"RS-IMG-001", "RS-IMG-002", "RS-IMG-010", "RS-IMG-020", "RS-IMG-030"}


def test_an_os_owned_module_is_judged_by_its_distribution_and_the_rest_is_counted(
    setup: tuple[Path, Path],
) -> None:
    """PyYAML 5.3.1 from dpkg gets no upstream finding, but the summary counts the one set
    aside, and --show-suppressed writes it as not affected, saying why."""
    code, records, err = scan(setup)
    assert code == 0, err
    assert findings(records) == ALL_VULNS | CHECKS
    assert summary(records)["suppressed"] == {"os_package": 1}
    _, shown, _ = scan(setup, "--show-suppressed")
    [pyyaml] = [r for r in shown if r["kind"] == "vulnerability" and r["suppressed"]]
    assert pyyaml["advisory"]["id"] == "PYSEC-2021-142"  # type: ignore[index]
    assert pyyaml["advisory"]["status"] == "not_affected"  # type: ignore[index]
    assert pyyaml["package"]["owner"] == "python3-yaml"  # type: ignore[index]
    why = pyyaml["suppressed"]
    assert why["kind"] == "os_package" and "python3-yaml" in why["reason"]  # type: ignore[index]
    # Shown, never counted as a finding: the image and the summary say what they said.
    assert summary(shown)["vulnerabilities"] == summary(records)["vulnerabilities"]


def test_severity_and_ignore_unfixed_filter_and_count(setup: tuple[Path, Path]) -> None:
    code, records, err = scan(setup, "--severity", "critical,HIGH")
    assert code == 0, err
    assert findings(records) == {"PYSEC-2020-342", "RS-IMG-001", "RS-IMG-002", "RS-IMG-020"}
    # 7 vulnerabilities of other severities (UNKNOWN, LOW) and RS-IMG-010/030 (MEDIUM).
    assert summary(records)["suppressed"] == {"os_package": 1, "severity": 8 + 2}
    _, records, _ = scan(setup, "--ignore-unfixed")
    assert findings(records) == ALL_VULNS - {"PYSEC-2020-342", "GHSA-75v8-2h7p-7m2m"} | CHECKS
    assert summary(records)["suppressed"] == {"os_package": 1, "unfixed": 2}
    _, shown, _ = scan(setup, "--ignore-unfixed", "--show-suppressed")
    # Filters are only counted, even with --show-suppressed.
    assert findings(shown) == findings(records)
    code, _, err = scan(setup, "--severity", "SEVERE")
    assert code == 2 and "--severity" in err


def test_fail_on_ignores_what_was_set_aside(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """The only CRITICAL findings are PYSEC-2020-342 and RS-IMG-002: with both ignored,
    --fail-on critical passes."""
    code, _, _ = scan(setup, "--fail-on", "critical")
    assert code == 1
    rules = tmp_path / "ignore.yaml"
    rules.write_text(
        "ignore:\n"
        "  - id: CVE-2020-13921\n"  # an alias of PYSEC-2020-342
        "    packages: [apache-skywalking]\n"
        "    reason: not reachable from the app\n"
        "  - id: RS-IMG-002\n"
        "    expires: 2999-01-01\n"
    )
    code, records, err = scan(setup, "--fail-on", "critical", "--ignore-file", str(rules))
    assert code == 0, err
    assert "PYSEC-2020-342" not in findings(records) and "RS-IMG-002" not in findings(records)
    assert summary(records)["suppressed"] == {"ignore": 2, "os_package": 1}


def test_ignore_file_globs_expiry_and_the_default_file(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / ".regsweepignore.yaml").write_text(
        "ignore:\n"
        "  - id: DSA-5044-1\n"
        "    images: ['*/elsewhere/*']\n"  # another image: not applied
        "  - id: GHSA-75v8-2h7p-7m2m\n"
        "    packages: ['pkg:npm/formidable@*']\n"
        "  - id: RS-IMG-001\n"
        "    expires: 2020-01-01\n"  # expired: a warning, not applied
        "    reason: old exception\n"
    )
    code, records, err = scan(setup, "--show-suppressed", cwd=tmp_path)
    assert code == 0, err
    assert '"ignore_rule_expired"' in err and "RS-IMG-001" in err
    suppressed = set_aside(records)
    assert set(suppressed) == {"GHSA-75v8-2h7p-7m2m", "PYSEC-2021-142"}
    assert suppressed["GHSA-75v8-2h7p-7m2m"]["source"] == ".regsweepignore.yaml"  # type: ignore[index]
    assert {"DSA-5044-1", "RS-IMG-001"} <= findings(records)
    (tmp_path / ".regsweepignore.yaml").write_text("ignore:\n  - idd: typo\n")
    code, _, err = scan(setup, cwd=tmp_path)
    assert code == 2 and ".regsweepignore.yaml" in err and "`id`" in err


def _openvex(statements: list[dict[str, object]]) -> bytes:
    return msgspec.json.encode(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/1",
            "author": "tests",
            "timestamp": "2026-12-01T00:00:00Z",
            "version": 1,
            "statements": statements,
        }
    )


def test_openvex_not_affected_with_a_justification_suppresses(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    code, records, _ = scan(setup, "--packages")
    images = {r["image"]["platform"]: r["image"] for r in records if r["kind"] == "image"}  # type: ignore[index]
    amd64 = images["linux/amd64"]
    vex = tmp_path / "app.openvex.json"
    vex.write_bytes(
        _openvex(
            [
                {  # the image, by purl with digest, and one package of it
                    "vulnerability": {"name": "CVE-2022-0000", "aliases": ["PYSEC-2020-342"]},
                    "products": [
                        {
                            "@id": f"pkg:oci/example@{amd64['digest'].replace(':', '%3A')}",
                            "subcomponents": [{"@id": "pkg:pypi/apache-skywalking"}],
                        }
                    ],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_in_execute_path",
                },
                {  # a package purl without version: every version
                    "vulnerability": {"name": "GHSA-75v8-2h7p-7m2m"},
                    "products": [{"@id": "pkg:npm/formidable"}],
                    "status": "not_affected",
                    "impact_statement": "uploads are disabled",
                },
                {  # not_affected without a justification: not honoured
                    "vulnerability": {"name": "DSA-5044-1"},
                    "products": [{"@id": "pkg:deb/debian/firefox-esr"}],
                    "status": "not_affected",
                },
                {  # affected: keeps the finding
                    "vulnerability": {"name": "Alpine:v3.11/busybox/CVE-2019-5747"},
                    "products": [{"@id": "pkg:apk/alpine/busybox"}],
                    "status": "affected",
                },
            ]
        )
    )
    code, records, err = scan(setup, "--vex", str(vex), "--show-suppressed")
    assert code == 0, err
    by_vex = {
        r["advisory"]["id"]: r["suppressed"]
        for r in records
        if (r.get("suppressed") or {}).get("kind") == "vex"
    }  # type: ignore[index, union-attr]
    assert set(by_vex) == {"PYSEC-2020-342", "GHSA-75v8-2h7p-7m2m"}
    assert by_vex["PYSEC-2020-342"]["justification"] == "vulnerable_code_not_in_execute_path"  # type: ignore[index]
    assert by_vex["GHSA-75v8-2h7p-7m2m"]["reason"] == "uploads are disabled"  # type: ignore[index]
    assert {"DSA-5044-1", "Alpine:v3.11/busybox/CVE-2019-5747"} <= findings(records)
    assert summary(records)["suppressed"] == {"os_package": 1, "vex": 2}


UNREACHABLE = "code_not_reachable"


def test_cyclonedx_vex_and_sarif_suppressions(setup: tuple[Path, Path], tmp_path: Path) -> None:
    vex = tmp_path / "app.cdx.json"
    vex.write_bytes(
        msgspec.json.encode(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "version": 1,
                "components": [
                    {
                        "type": "library",
                        "bom-ref": "fm",
                        "name": "formidable",
                        "purl": "pkg:npm/formidable@2.1.1",
                    },
                ],  # fmt: skip
                "vulnerabilities": [
                    {
                        "id": "GHSA-75v8-2h7p-7m2m",
                        "analysis": {
                            "state": "not_affected",
                            "justification": "code_not_reachable",
                        },
                        "affects": [{"ref": "fm"}],
                    },
                    {
                        "id": "GHSA-75v8-2h7p-7m2m",
                        "analysis": {
                            "state": "not_affected",
                            "justification": "code_not_reachable",
                        },
                        "affects": [{"ref": "pkg:npm/formidable@9.9.9"}],  # another version
                    },
                ],
            }
        )
    )
    code, records, err = scan(setup, "--vex", str(vex))
    assert code == 0, err
    assert "GHSA-75v8-2h7p-7m2m" not in findings(records)
    assert summary(records)["suppressed"] == {"os_package": 1, "vex": 1}
    layout, db = setup
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--format", "sarif", "--vex", str(vex),
         "--show-suppressed", f"oci:{layout}:latest"],
        capture_output=True, check=True,
    )  # fmt: skip
    [run] = valid_sarif(proc.stdout)["runs"]
    suppressed = {r["ruleId"]: r["suppressions"] for r in run["results"] if r.get("suppressions")}
    assert set(suppressed) == {"GHSA-75v8-2h7p-7m2m", "PYSEC-2021-142"}
    assert suppressed["GHSA-75v8-2h7p-7m2m"][0]["kind"] == "external"
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"bomFormat": "CycloneDX", "vulnerabilities": [{"analysis": {"state": "nope"}}]}'
    )
    code, _, err = scan(setup, "--vex", str(bad))
    assert code == 2 and "bad.json" in err


def test_match_takes_the_same_triage_options(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """``regsweep match`` over the image's package records: --severity, --vex and
    --show-suppressed set findings aside as ``scan`` does."""
    _, db = setup
    _, records, _ = scan(setup, "--packages")
    inventory = tmp_path / "packages.ndjson"
    inventory.write_bytes(
        b"".join(msgspec.json.encode(r) + b"\n" for r in records if r["kind"] == "package")
    )

    def match(*args: str) -> list[Record]:
        proc = subprocess.run(
            [REGSWEEP, "match", "--db", str(db), "-i", str(inventory), *args],
            capture_output=True, check=True,
        )  # fmt: skip
        return [msgspec.json.decode(x) for x in proc.stdout.splitlines()]

    assert findings(match()) == ALL_VULNS
    assert findings(match("--severity", "CRITICAL")) == {"PYSEC-2020-342"}
    vex = tmp_path / "vex.json"
    vex.write_bytes(
        _openvex(
            [{"vulnerability": {"name": "GHSA-75v8-2h7p-7m2m"},
              "products": [{"@id": "pkg:npm/formidable"}], "status": "not_affected",
              "justification": "vulnerable_code_not_present"}]
        )
    )  # fmt: skip
    assert findings(match("--vex", str(vex))) == ALL_VULNS - {"GHSA-75v8-2h7p-7m2m"}
    shown = match("--vex", str(vex), "--show-suppressed")
    assert set(set_aside(shown)) == {"GHSA-75v8-2h7p-7m2m"}


@pytest.mark.parametrize(
    "doc",
    [
        {"@context": "https://openvex.dev/ns/v0.2.0", "statements": 5},
        {"statements": [{"vulnerability": {"name": "X", "aliases": 5}, "status": "x"}]},
        {"statements": [{"vulnerability": "X", "status": "not_affected", "products": 7}]},
        {"statements": [{"vulnerability": "X", "status": "not_affected",
                         "products": [{"@id": "pkg:npm/a", "subcomponents": 3}]}]},
        {"statements": [{"vulnerability": "X", "status": "not_affected", "products": [],
                         "justification": {"no": "string"}}]},
        {"bomFormat": "CycloneDX", "vulnerabilities": [
            {"id": "X", "references": ["x"], "analysis": {"state": "not_affected"}}]},
        {"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "X", "analysis": {"state": []}}]},
        {"bomFormat": "CycloneDX", "metadata": "x", "vulnerabilities": []},
    ],
)  # fmt: skip
def test_a_malformed_vex_document_is_a_usage_error(
    setup: tuple[Path, Path], tmp_path: Path, doc: dict[str, object]
) -> None:
    """A field of the wrong type anywhere in a VEX document: exit 2 naming the file."""
    vex = tmp_path / "bad.vex.json"
    vex.write_bytes(msgspec.json.encode(doc))
    code, _, err = scan(setup, "--vex", str(vex))
    assert code == 2 and "bad.vex.json" in err and "Traceback" not in err, err
