"""``make run``'s job: the bundled feeds indexed, the example image scanned, real answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec

from tests import paths

REPO = paths.REPO


def test_make_run_scans_the_example_image_with_the_expected_findings() -> None:
    """Both platforms of the example layout are scanned: firefox-esr 91.4 on Debian 11 is hit
    by DSA-5044-1, the PyPI package listed in its advisory's versions and the npm package in
    its GHSA range are hit, the dpkg-owned PyYAML is not matched upstream, Alpine busybox and
    ansible are hit by their secfixes; root user, the redacted AWS key, port 22, EOL and the
    SSH server are reported; the summary comes last and no secret is written whole."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "run-demo.sh"), str(Path(sys.executable).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    assert records[-1]["kind"] == "summary" and records[-1]["images"] == 2
    assert records[-1]["errors"] == 0
    vulns = {
        (r["package"]["ecosystem"], r["package"]["name"], r["advisory"]["id"])
        for r in records
        if r["kind"] == "vulnerability"
    }
    assert ("Debian:11", "firefox-esr", "DSA-5044-1") in vulns
    assert ("PyPI", "apache-skywalking", "PYSEC-2020-342") in vulns
    assert ("npm", "formidable", "GHSA-75v8-2h7p-7m2m") in vulns
    assert not any(name == "PyYAML" for _, name, _ in vulns)
    assert any(eco == "Alpine:v3.11" and name == "busybox" for eco, name, _ in vulns)
    assert any(eco == "Alpine:v3.11" and name == "ansible" for eco, name, _ in vulns)
    checks = {r["check"]["id"] for r in records if r["kind"] == "misconfiguration"}
    assert {"RS-IMG-001", "RS-IMG-002", "RS-IMG-010", "RS-IMG-020", "RS-IMG-030"} <= checks
    assert "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" not in proc.stdout + proc.stderr
    platforms = {r["image"]["platform"] for r in records if r["kind"] == "image"}
    assert platforms == {"linux/amd64", "linux/arm64"}
