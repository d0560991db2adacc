"""``regsweep crawl --format sarif|cyclonedx``: one valid document for the whole registry,
saying what the NDJSON crawl says."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tests.cli.test_formats import valid_cyclonedx, valid_sarif
from tests.crawler.registry.faults import FaultProxy
from tests.crawler.registry.test_crawl import run


def test_crawl_writes_one_sarif_log_and_one_bom_for_the_registry(
    db: Path, _plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    _plain_proxy.wait_idle()
    state = str(tmp_path / "state.lmdb")
    code, records, err = run(db, "crawl", _plain_proxy.url, "--state", state, "--packages")
    assert code == 0, err
    findings = sorted(
        r["advisory"]["id"] if r["kind"] == "vulnerability" else r["check"]["id"]
        for r in records
        if r["kind"] in ("vulnerability", "misconfiguration")
    )
    errors = sum(1 for r in records if r["kind"] == "error")
    images = sum(1 for r in records if r["kind"] == "image")
    # A few packages, no finding, no failure in the test registry: what the documents must
    # show is its every image and package (findings and failures: tests/cli/test_formats.py).
    assert images

    out = tmp_path / "crawl.sarif"
    code, _, err = run(db, "crawl", _plain_proxy.url, "--state", state, "--format", "sarif",
                       "-o", str(out))  # fmt: skip
    assert code == 0, err
    [sarif_run] = valid_sarif(out.read_bytes())["runs"]
    assert sorted(r["ruleId"] for r in sarif_run["results"]) == findings
    assert len(sarif_run["invocations"][0]["toolExecutionNotifications"]) == errors
    assert len(sarif_run["properties"]["images"]) == images
    assert sarif_run["properties"]["summary"]["tags"] == records[-1]["tags"]

    out = tmp_path / "crawl.cdx.json"
    code, _, err = run(db, "crawl", _plain_proxy.url, "--state", state, "--format", "cyclonedx",
                       "-o", str(out))  # fmt: skip
    assert code == 0, err
    bom = valid_cyclonedx(out.read_bytes())
    assert len(bom["components"]) == images
    assert len(bom.get("properties", [])) == errors
    packages = sum(
        1 for c in bom["components"] for p in c.get("components", []) if p["type"] == "library"
    )
    assert packages == sum(1 for r in records if r["kind"] == "package")
    assert msgspec.json.decode(out.read_bytes())["specVersion"] == "1.6"
