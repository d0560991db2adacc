"""``make run``'s job: the bundled feeds indexed, the bundled inventory matched, real answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parent.parent


def test_make_run_demo_reports_the_expected_advisories() -> None:
    """firefox-esr 91.4 on Debian 11 is hit by DSA-5044-1 while the Debian 10 build at the
    fixed version is not; Alpine busybox and ansible are hit by their secfixes; the PyPI
    package listed in its advisory's versions is hit; every line is a valid record."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "run-demo.sh"), str(Path(sys.executable).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    assert records and {r["kind"] for r in records} == {"vulnerability"}
    found = {
        (r["package"]["ecosystem"], r["package"]["name"], r["advisory"]["id"]) for r in records
    }
    assert ("Debian:11", "firefox-esr", "DSA-5044-1") in found
    assert not any(eco == "Debian:10" for eco, _, _ in found)
    assert any(eco == "Alpine:v3.11" and name == "busybox" for eco, name, _ in found)
    assert any(eco == "Alpine:v3.11" and name == "ansible" for eco, name, _ in found)
    assert any(eco == "PyPI" and name == "apache-skywalking" for eco, name, _ in found)
