"""``regsweep crawl --format sarif|cyclonedx``: one valid document for the whole registry,
saying what the NDJSON crawl says: findings, packages and failures alike.

The registry is its own: Debian's docker-registry holding the example image (Debian and
Alpine, real package databases, vulnerable versions, risky configuration) under three
names copied with skopeo, its largest layer blob then corrupted on the registry's disk.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawler.registry.conftest import RegistryServer, _start, _stop
from tests.crawler.registry.test_crawl import run
from tests.example import example_image
from tests.formats import valid_cyclonedx, valid_sarif


def _skopeo_copy(src: str, dest: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--all", "--dest-tls-verify=false", "--quiet", src, dest],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def example_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    root = tmp_path_factory.mktemp("formats-registry")
    layout = example_image(root / "image")
    server = _start(root / "run", root / "storage", "formats")
    try:
        host = server.url.removeprefix("http://")
        for name in ("team/app:1.0", "team/app:latest", "other/app:1.0"):
            _skopeo_copy(f"oci:{layout}:latest", f"docker://{host}/{name}")
        # Corrupt the largest layer where the registry stores it (one blob, shared by every
        # repository): the registry serves it as it is; each image built on it must be an
        # error, the other platform's images must still be reported.
        big = max((layout / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
        stored = root / "storage/docker/registry/v2/blobs/sha256" / big.name[:2] / big.name / "data"
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
        yield server
    finally:
        _stop(server)


def _kinds(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == kind]


def test_crawl_writes_one_sarif_log_and_one_bom_for_the_registry(
    db: Path, example_registry: RegistryServer, tmp_path: Path
) -> None:
    url, state = example_registry.url, str(tmp_path / "state.lmdb")
    code, records, err = run(db, "crawl", url, "--state", state, "--packages")
    assert code == 0, err
    findings = sorted(
        r["advisory"]["id"] if r["kind"] == "vulnerability" else r["check"]["id"]
        for r in records
        if r["kind"] in ("vulnerability", "misconfiguration")
    )
    errors, images = _kinds(records, "error"), _kinds(records, "image")
    assert findings and errors and images
    # Images that could not be read fail --fail-on, even at a threshold no finding meets.
    severities = {
        r["advisory"]["severity"] if r["kind"] == "vulnerability" else r["check"]["severity"]
        for r in records
        if r["kind"] in ("vulnerability", "misconfiguration")
    }
    assert "CRITICAL" not in severities
    code, _, err = run(db, "crawl", url, "--state", state, "--fail-on", "critical")
    assert code == 1, err

    out = tmp_path / "crawl.sarif"
    code, _, err = run(db, "crawl", url, "--state", state, "--format", "sarif", "-o", str(out))
    assert code == 0, err
    [sarif_run] = valid_sarif(out.read_bytes())["runs"]
    assert sorted(r["ruleId"] for r in sarif_run["results"]) == findings
    notes = sarif_run["invocations"][0]["toolExecutionNotifications"]
    assert sorted(n["descriptor"]["id"] for n in notes) == sorted(e["error"] for e in errors)
    assert len(sarif_run["properties"]["images"]) == len(images)
    assert sarif_run["invocations"][0]["executionSuccessful"] is True

    out = tmp_path / "crawl.cdx.json"
    code, _, err = run(db, "crawl", url, "--state", state, "--format", "cyclonedx", "-o", str(out))
    assert code == 0, err
    bom = valid_cyclonedx(out.read_bytes())
    assert len(bom["components"]) == len(images)
    assert [p["name"] for p in bom["properties"]] == ["regsweep:error"] * len(errors)
    packages = sorted(
        (p["name"], p["version"])
        for c in bom["components"]
        for p in c.get("components", [])
        if p["type"] == "library"
    )
    assert packages == sorted(
        (r["package"]["name"], r["package"]["version"]) for r in _kinds(records, "package")
    )
    affected = [a["ref"] for v in bom["vulnerabilities"] for a in v["affects"]]
    assert len(affected) == len(_kinds(records, "vulnerability"))
