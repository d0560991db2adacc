"""``--format`` and ``-o`` on ``scan`` and ``match`` as a user runs them: the SARIF and
CycloneDX documents are valid (official SARIF schema; cyclonedx-python-lib's strict
validator) and say what the NDJSON records of the same run say. ``crawl`` is in
``tests/crawler/registry/test_formats.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from tests.formats import valid_cyclonedx, valid_sarif

REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def regsweep(*args: str, stdin: bytes = b"") -> bytes:
    proc = subprocess.run([REGSWEEP, *args], input=stdin, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def ndjson(data: bytes) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in data.splitlines()]


def test_scan_sarif_has_one_result_per_finding_of_the_ndjson(example: tuple[Path, Path]) -> None:
    layout, db = example
    records = ndjson(regsweep("scan", "--db", str(db), f"oci:{layout}"))
    doc = valid_sarif(regsweep("scan", "--db", str(db), "--format", "sarif", f"oci:{layout}"))
    [run] = doc["runs"]
    findings = sorted(
        (
            r["image"]["platform"],
            r["advisory"]["id"] if r["kind"] == "vulnerability" else r["check"]["id"],
        )
        for r in records
        if r["kind"] in ("vulnerability", "misconfiguration")
    )
    assert (
        findings
        and sorted((r["properties"]["platform"], r["ruleId"]) for r in run["results"]) == findings
    )
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) == len({f[1] for f in findings})
    assert run["invocations"][0]["executionSuccessful"] is True
    assert len(run["properties"]["images"]) == 2


def test_scan_cyclonedx_describes_every_package_of_every_image(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without ``--packages`` too: a BOM lists every package; ``-o`` writes the file."""
    layout, db = example
    records = ndjson(regsweep("scan", "--db", str(db), "--packages", f"oci:{layout}"))
    out = tmp_path / "bom.json"
    assert (
        regsweep("scan", "--db", str(db), "--format", "cyclonedx", "-o", str(out), f"oci:{layout}")
        == b""
    )
    doc = valid_cyclonedx(out.read_bytes())
    images = {c["bom-ref"]: c for c in doc["components"]}
    assert len(images) == 2 and all(c["type"] == "container" for c in images.values())
    packages = sorted(
        (p["name"], p["version"])
        for c in images.values()
        for p in c["components"]
        if p["type"] == "library"
    )
    assert packages == sorted(
        (r["package"]["name"], r["package"]["version"]) for r in records if r["kind"] == "package"
    )
    refs = {p["bom-ref"] for c in images.values() for p in c["components"]}
    affected = [(v["id"], a["ref"]) for v in doc["vulnerabilities"] for a in v["affects"]]
    assert all(ref in refs for _, ref in affected)
    assert len(affected) == sum(1 for r in records if r["kind"] == "vulnerability")


def test_match_writes_every_format_from_package_records(example: tuple[Path, Path]) -> None:
    """``regsweep match`` takes ``--format`` like the others: the same matches in each."""
    layout, db = example
    inventory = regsweep("scan", "--db", str(db), "--packages", f"oci:{layout}")
    matched = ndjson(regsweep("match", "--db", str(db), stdin=inventory))
    ids = sorted(r["advisory"]["id"] for r in matched if r["kind"] == "vulnerability")
    assert ids
    sarif = valid_sarif(regsweep("match", "--db", str(db), "--format", "sarif", stdin=inventory))
    assert sorted(r["ruleId"] for r in sarif["runs"][0]["results"]) == ids
    bom = valid_cyclonedx(
        regsweep("match", "--db", str(db), "--format", "cyclonedx", stdin=inventory)
    )
    assert sorted(v["id"] for v in bom["vulnerabilities"] for _ in v["affects"]) == ids
    table = regsweep("match", "--db", str(db), "--format", "table", stdin=inventory).decode()
    assert all(i in table for i in ids)


def test_a_broken_image_is_named_in_every_format(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """A layer that does not match its digest: an ``error`` in NDJSON, a tool notification
    in SARIF, a ``regsweep:error`` property of the BOM; the other image is reported."""
    layout, db = example
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-a", str(layout), str(broken)], check=True)
    index = msgspec.json.decode((broken / "index.json").read_bytes())
    top = index["manifests"][0]["digest"].split(":")[1]
    platforms = msgspec.json.decode((broken / "blobs/sha256" / top).read_bytes())
    first = platforms["manifests"][0]["digest"].split(":")[1]
    manifest = msgspec.json.decode((broken / "blobs/sha256" / first).read_bytes())
    layer = broken / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[-20] ^= 0xFF
    layer.write_bytes(bytes(data))
    sarif = valid_sarif(regsweep("scan", "--db", str(db), "--format", "sarif", f"oci:{broken}"))
    [note] = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and note["properties"]["stage"] == "layer"
    assert len(sarif["runs"][0]["properties"]["images"]) == 1
    bom = valid_cyclonedx(
        regsweep("scan", "--db", str(db), "--format", "cyclonedx", f"oci:{broken}")
    )
    assert [p["name"] for p in bom["properties"]] == ["regsweep:error"]
    assert len(bom["components"]) == 1


def test_every_command_says_a_missing_index_the_same_way(tmp_path: Path) -> None:
    """A missing index is a usage error (exit 2, one line) for scan, crawl and match alike."""
    db = str(tmp_path / "nope.lmdb")
    for args in (
        ["match", "--db", db],
        ["scan", "--db", db, f"oci:{tmp_path}"],
        ["crawl", "--db", db, "http://127.0.0.1:9"],
    ):
        proc = subprocess.run([REGSWEEP, *args], capture_output=True, input=b"", check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.decode().count("\n") == 1 and b"regsweep: error:" in proc.stderr


def test_match_never_truncates_the_output_for_a_bad_input(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """A missing input, or the output named as the input: exit 2 and the file untouched."""
    _, db = example
    out = tmp_path / "out.json"
    out.write_bytes(b"keep me\n")
    for args in (["-i", str(tmp_path / "missing.ndjson")], ["-i", str(out)]):
        proc = subprocess.run(
            [REGSWEEP, "match", "--db", str(db), "--format", "sarif", "-o", str(out), *args],
            capture_output=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 2 and b"regsweep: error:" in proc.stderr
        assert out.read_bytes() == b"keep me\n"
