"""``scan sbom:FILE``: the packages of a CycloneDX or SPDX JSON SBOM matched without an
image, as Grype does. The SBOMs are the shapes real tools write: regsweep's own CycloneDX
(read back), and Syft-style CycloneDX and SPDX 2.3 documents (purls with ``distro`` and
``upstream`` qualifiers, an operating-system component or package)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

from tests.example import REGSWEEP

Record = dict[str, object]


def scan(db: Path, *args: str) -> tuple[int, list[Record], str]:
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), *args], capture_output=True, text=True, check=False
    )
    return proc.returncode, [msgspec.json.decode(x) for x in proc.stdout.splitlines()], proc.stderr


def vulns(records: list[Record]) -> set[tuple[object, ...]]:
    return {
        (r["image"]["digest"], r["image"]["platform"], r["package"]["name"],  # type: ignore[index]
         r["package"]["version"], r["advisory"]["id"])  # type: ignore[index]
        for r in records
        if r["kind"] == "vulnerability"
    }  # fmt: skip


def test_regsweeps_own_cyclonedx_reads_back_to_the_same_findings(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each container component is its image again (digest, platform, OS), each package
    with its source package and ecosystem: the same vulnerabilities as the scan that wrote
    the BOM; of the checks only those on packages and the OS run (no config)."""
    layout, db = example
    bom = tmp_path / "bom.json"
    code, direct, err = scan(db, f"oci:{layout}:latest")
    assert code == 0, err
    subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--format", "cyclonedx", "-o", str(bom),
         f"oci:{layout}:latest"],
        check=True, capture_output=True,
    )  # fmt: skip
    code, records, err = scan(db, f"sbom:{bom}")
    assert code == 0, err
    assert vulns(records) and vulns(records) == vulns(direct)
    images = [r for r in records if r["kind"] == "image"]
    assert sorted(r["image"]["platform"] for r in images) == ["linux/amd64", "linux/arm64"]  # type: ignore[index]
    assert {r["os"]["family"] for r in images} == {"debian", "alpine"}  # type: ignore[index]
    checks = {r["check"]["category"] for r in records if r["kind"] == "misconfiguration"}  # type: ignore[index]
    assert checks and checks <= {"eol", "service"}
    assert not [r for r in records if r["kind"] == "error"]


OS = "OPERATING-SYSTEM"


def _spdx() -> dict[str, object]:
    def pkg(spdx_id: str, name: str, version: str, purl: str | None) -> dict[str, object]:
        out: dict[str, object] = {"SPDXID": spdx_id, "name": name, "versionInfo": version,
                                  "downloadLocation": "NOASSERTION"}  # fmt: skip
        if purl:
            out["externalRefs"] = [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": purl}
            ]  # fmt: skip
        return out

    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "documentNamespace": "https://example.com/spdx/app-1",
        "creationInfo": {"created": "2026-12-01T00:00:00Z", "creators": ["Tool: syft-1.18.1"]},
        "packages": [
            {**pkg("SPDXRef-os", "debian", "11", None), "primaryPackagePurpose": OS},
            pkg("SPDXRef-ff", "firefox-esr", "91.4.0esr-1~deb11u1",
                "pkg:deb/debian/firefox-esr@91.4.0esr-1~deb11u1?arch=amd64&distro=debian-11"),
            pkg("SPDXRef-sw", "apache-skywalking", "0.5.0", "pkg:pypi/apache-skywalking@0.5.0"),
            pkg("SPDXRef-fm", "formidable", "2.1.1", "pkg:npm/formidable@2.1.1"),
            pkg("SPDXRef-x", "mystery", "1.0", None),
        ],
    }  # fmt: skip


def test_spdx_json_packages_are_matched(example: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = example
    sbom = tmp_path / "app.spdx.json"
    sbom.write_bytes(msgspec.json.encode(_spdx()))
    code, records, err = scan(db, f"sbom:{sbom}")
    assert code == 0, err
    assert {v[2:] for v in vulns(records)} == {
        ("firefox-esr", "91.4.0esr-1~deb11u1", "DSA-5044-1"),
        ("apache-skywalking", "0.5.0", "PYSEC-2020-342"),
        ("formidable", "2.1.1", "GHSA-75v8-2h7p-7m2m"),
    }
    [image] = [r for r in records if r["kind"] == "image"]
    assert image["os"]["family"] == "debian" and image["packages"] == 3  # type: ignore[index]
    # The package without a purl is said, not dropped in silence.
    [note] = [r for r in records if r["kind"] == "error"]
    assert "1 components without a purl" in note["message"]  # type: ignore[operator]


def test_syft_style_cyclonedx_takes_the_distribution_from_its_os_component(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """A purl without ``distro``: the SBOM's operating-system component names the release;
    the ``upstream`` qualifier names the source package the advisories are about."""
    _, db = example
    bom = tmp_path / "syft.cdx.json"
    bom.write_bytes(
        msgspec.json.encode(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "version": 1,
                "components": [
                    {"type": "operating-system", "name": "debian", "version": "11"},
                    {
                        "type": "library",
                        "name": "firefox-esr-l10n-de",
                        "version": "91.4.0esr-1~deb11u1",
                        "purl": "pkg:deb/debian/firefox-esr-l10n-de@91.4.0esr-1~deb11u1"
                        "?upstream=firefox-esr",
                    },
                ],
            }
        )  # fmt: skip
    )
    code, records, err = scan(db, f"sbom:{bom}")
    assert code == 0, err
    assert {v[2:] for v in vulns(records)} == {
        ("firefox-esr-l10n-de", "91.4.0esr-1~deb11u1", "DSA-5044-1")
    }


def test_a_file_that_is_no_sbom_is_an_error_record(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = example
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": "world"}')
    for ref in (f"sbom:{junk}", f"sbom:{tmp_path / 'absent.json'}"):
        code, records, err = scan(db, ref)
        assert code == 0, err
        [error] = [r for r in records if r["kind"] == "error"]
        assert error["ref"] == ref and error["error"] in ("malformed_manifest", "not_found")


def test_a_hostile_sbom_is_an_error_record_not_a_traceback(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = example
    for i, doc in enumerate(
        (
            {"bomFormat": "CycloneDX", "components": 5},
            {"bomFormat": "CycloneDX", "components": [{"type": "container", "components": 3}]},
            {"spdxVersion": "SPDX-2.3", "packages": [{"name": "x", "externalRefs": 5}]},
        )
    ):
        bad = tmp_path / f"bad{i}.json"
        bad.write_bytes(msgspec.json.encode(doc))
        code, records, err = scan(db, f"sbom:{bad}")
        assert code == 0 and "Traceback" not in err, err
        [error] = [r for r in records if r["kind"] == "error"]
        assert error["error"] == "malformed_manifest"
