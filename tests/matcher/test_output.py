"""Output sinks on hand-made records: what each format must say, and stay valid doing it.

SARIF is validated against the official 2.1.0 schema (``tests/data/schemas``), CycloneDX
by cyclonedx-python-lib's strict 1.6 validator; the end-to-end runs are in
``tests/cli/test_formats.py``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from regsweep.matcher.output import Format, open_sink
from regsweep.matcher.records import (
    Advisory,
    Check,
    Cvss,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    MisconfigurationRecord,
    OsInfo,
    Package,
    PackageRecord,
    Record,
    Severity,
    Status,
    SummaryRecord,
    Suppression,
    VulnerabilityRecord,
)
from tests.formats import valid_cyclonedx, valid_sarif

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

IMAGE = ImageRef(
    ref="registry.example:5000/team/app:1.0",
    registry="registry.example:5000",
    repository="team/app",
    tag="1.0",
    digest="sha256:" + "ab" * 32,
    platform="linux/amd64",
)
# Names a hostile image may carry: quotes, newlines, non-ASCII, JSON and URI metacharacters.
ODD = Package(
    name='lib"quoted\nname\u00e9',
    version="1:2.0~rc1+dfsg-1",
    type="deb",
    ecosystem="Debian:12",
    purl="pkg:deb/debian/lib%22quoted@1:2.0~rc1+dfsg-1",
    path="var/lib/dpkg/status",
)
SSL = Package(name="openssl", version="3.0.11-1~deb12u1", type="deb", ecosystem="Debian:12")
CRIT = Advisory(
    id="CVE-2024-0001",
    aliases=("DSA-5555-1",),
    summary="buffer overflow\nwith a newline and <html>",
    severity=Severity.CRITICAL,
    severity_source="nvd",
    cvss=(
        Cvss(type="CVSS_V3", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score=9.8),
        Cvss(type="CVSS_V2", vector="AV:N/AC:L/Au:N/C:C/I:C/A:C", score=10.0),
    ),
    fixed=("3.0.13-1~deb12u1",),
    status=Status.FIXED,
    source="osv:Debian",
    modified=T0,
)
UNFIXED = Advisory(id="CVE-2024-0002", severity=Severity.LOW, status=Status.UNFIXED)
ROOT = Check(id="RS-IMG-001", title="runs as root", severity=Severity.HIGH, category="user")


def _image_records() -> list[Record]:
    return [
        PackageRecord(image=IMAGE, package=SSL),
        VulnerabilityRecord(image=IMAGE, package=SSL, advisory=CRIT),
        VulnerabilityRecord(image=IMAGE, package=SSL, advisory=UNFIXED),
        PackageRecord(image=IMAGE, package=ODD),
        VulnerabilityRecord(image=IMAGE, package=ODD, advisory=CRIT),
        MisconfigurationRecord(
            image=IMAGE, check=ROOT, evidence="User unset", remediation="USER 1000"
        ),
        ImageRecord(
            image=IMAGE,
            os=OsInfo(family="debian", name="Debian GNU/Linux", version="12"),
            layers=3,
            size=1000,
            packages=2,
            vulnerabilities=3,
            misconfigurations=1,
            scanned_at=T0,
        ),
    ]


BROKEN = ErrorRecord(
    image=msgspec.structs.replace(IMAGE, platform="linux/arm64", digest="sha256:" + "cd" * 32),
    ref=IMAGE.ref,
    stage="layer",
    error="digest_mismatch",
    message='layer sha256:…: "bad" bytes',
)
SUMMARY = SummaryRecord(started_at=T0, finished_at=T0, images=1, vulnerabilities=3, errors=1)


def _run(fmt: Format, records: list[Record], *, complete: bool = True) -> bytes:
    out = io.BytesIO()
    sink = open_sink(fmt, out)
    sink.begin()
    sink.write_many(records)
    sink.end(complete)
    return out.getvalue()


def _sarif(records: list[Record], *, complete: bool = True) -> dict[str, Any]:
    return valid_sarif(_run(Format.SARIF, records, complete=complete))


def _cyclonedx(records: list[Record], *, complete: bool = True) -> dict[str, Any]:
    return valid_cyclonedx(_run(Format.CYCLONEDX, records, complete=complete))


def test_ndjson_writes_each_record_as_msgspec_encodes_it() -> None:
    """The contract, byte for byte, whatever path a record takes through the sink."""
    records = [*_image_records(), BROKEN, SUMMARY]
    expected = b"".join(msgspec.json.encode(r) + b"\n" for r in records)
    assert _run(Format.NDJSON, records) == expected


VEXED = Suppression(
    kind="vex", justification="vulnerable_code_not_in_execute_path", reason="never loaded",
    source="app.openvex.json",
)  # fmt: skip
IGNORED = Suppression(kind="ignore", reason="accepted risk", source=".regsweepignore.yaml")


def _suppressed_records() -> list[Record]:
    """``--show-suppressed`` output: an advisory set aside for one package and standing for
    another, a check ignored."""
    set_aside = msgspec.structs.replace(CRIT, status=Status.NOT_AFFECTED)
    return [
        VulnerabilityRecord(image=IMAGE, package=SSL, advisory=set_aside, suppressed=VEXED),
        VulnerabilityRecord(image=IMAGE, package=ODD, advisory=CRIT),
        MisconfigurationRecord(image=IMAGE, check=ROOT, evidence="User unset", suppressed=IGNORED),
        ImageRecord(image=IMAGE, packages=2, vulnerabilities=1, scanned_at=T0),
    ]


def test_suppressed_findings_in_every_format() -> None:
    """NDJSON byte for byte; SARIF's ``suppressions``; CycloneDX's ``analysis`` on an entry
    of its own, the advisory still affecting the other package; both documents valid."""
    records = _suppressed_records()
    assert _run(Format.NDJSON, records) == b"".join(msgspec.json.encode(r) + b"\n" for r in records)
    [run] = _sarif(records)["runs"]
    by_rule = {(r["ruleId"], "suppressions" in r): r for r in run["results"]}
    assert set(by_rule) == {("CVE-2024-0001", True), ("CVE-2024-0001", False), ("RS-IMG-001", True)}
    [vex] = by_rule["CVE-2024-0001", True]["suppressions"]
    assert vex["kind"] == "external" and "never loaded" in vex["justification"]
    entries = _cyclonedx(records)["vulnerabilities"]
    assert len(entries) == 2
    [analysed] = [e for e in entries if "analysis" in e]
    assert analysed["analysis"]["state"] == "not_affected"
    assert analysed["analysis"]["justification"] == "code_not_reachable"
    assert _run(Format.TABLE, records).count(b"suppressed: ") == 2


def test_sarif_has_a_rule_per_advisory_and_check_and_a_result_per_finding() -> None:
    doc = _sarif([*_image_records(), BROKEN, SUMMARY])
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["CVE-2024-0001", "CVE-2024-0002", "RS-IMG-001"]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("CVE-2024-0001", "error"),
        ("CVE-2024-0002", "note"),
        ("CVE-2024-0001", "error"),
        ("RS-IMG-001", "error"),
    ]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        [loc] = r["locations"]
        assert loc["logicalLocations"][0] == {"name": IMAGE.ref, "kind": "image"}
        assert ":" not in loc["physicalLocation"]["artifactLocation"]["uri"]
    crit = rules[0]
    assert crit["properties"]["security-severity"] == "9.5"
    assert "3.0.13-1~deb12u1" in crit["help"]["text"]
    odd = results[2]
    assert odd["locations"][0]["logicalLocations"][1]["name"] == ODD.name
    assert odd["properties"]["fixedVersions"] == ["3.0.13-1~deb12u1"]
    # Another package hit by the same advisory: another alert, not a duplicate.
    assert odd["partialFingerprints"] != results[0]["partialFingerprints"]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["descriptor"]["id"] == "digest_mismatch" and note["level"] == "error"
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["properties"]["summary"]["vulnerabilities"] == 3
    assert [i["platform"] for i in run["properties"]["images"]] == ["linux/amd64"]


def test_an_interrupted_run_says_so_in_every_document() -> None:
    """A crawl stopped by a signal: each document closes properly and says it is not the
    whole inventory (a BOM that looked whole would replace a project's components)."""
    part = _image_records()[:2]
    assert _sarif(part)["runs"][0]["invocations"][0]["executionSuccessful"] is True
    assert _sarif(part, complete=False)["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert "properties" not in _cyclonedx(part)
    [flag] = _cyclonedx(part, complete=False)["properties"]
    assert flag["name"] == "regsweep:incomplete"
    assert "INCOMPLETE" in _run(Format.TABLE, part, complete=False).decode()
    assert "INCOMPLETE" not in _run(Format.TABLE, part).decode()


@pytest.mark.parametrize("fmt", [Format.SARIF, Format.CYCLONEDX, Format.NDJSON])
def test_an_empty_run_is_a_valid_empty_document(fmt: Format) -> None:
    if fmt is Format.SARIF:
        assert _sarif([])["runs"][0]["results"] == []
    elif fmt is Format.CYCLONEDX:
        doc = _cyclonedx([])
        assert doc["components"] == [] and doc["vulnerabilities"] == []
    else:
        assert _run(fmt, []) == b""


def test_cyclonedx_nests_packages_in_their_image_and_points_vulnerabilities_at_them() -> None:
    doc = _cyclonedx([*_image_records(), BROKEN, SUMMARY])
    [image] = doc["components"]
    assert image["type"] == "container" and image["name"] == "team/app"
    assert image["purl"].startswith("pkg:oci/app@sha256%3A")
    assert {"name": "regsweep:image:platform", "value": "linux/amd64"} in image["properties"]
    assert any(p["value"].startswith("RS-IMG-001 HIGH") for p in image["properties"])
    os_, *packages = image["components"]
    assert os_ == {
        "type": "operating-system",
        "bom-ref": f"{image['bom-ref']}/os",
        "name": "debian",
        "version": "12",
        "description": "Debian GNU/Linux",
    }
    assert [(p["name"], p["version"]) for p in packages] == [
        (SSL.name, SSL.version),
        (ODD.name, ODD.version),
    ]
    refs = {p["name"]: p["bom-ref"] for p in packages}
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    crit = vulns["CVE-2024-0001"]
    assert [a["ref"] for a in crit["affects"]] == [refs[SSL.name], refs[ODD.name]]
    assert crit["affects"][0]["versions"] == [
        {"version": SSL.version, "status": "affected"},
        {"version": "3.0.13-1~deb12u1", "status": "unaffected"},
    ]
    assert [(r.get("method"), r.get("score")) for r in crit["ratings"]] == [
        ("CVSSv31", 9.8),
        ("CVSSv2", 10.0),
        ("other", None),
    ]
    assert crit["ratings"][-1]["severity"] == "critical"
    assert "recommendation" not in vulns["CVE-2024-0002"]
    [error] = doc["properties"]
    assert error["name"] == "regsweep:error" and "digest_mismatch" in error["value"]


def test_cyclonedx_gives_each_image_its_own_bom_refs() -> None:
    """Two tags of one digest (and one image named twice) stay distinct components."""
    other = msgspec.structs.replace(
        IMAGE, ref="registry.example:5000/team/app:latest", tag="latest"
    )
    records = _image_records()
    again = [msgspec.structs.replace(r, image=other) for r in records]  # type: ignore[type-var]
    doc = _cyclonedx([*records, *again, *records])
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs)) == 3


def test_cyclonedx_of_match_input_without_image_records() -> None:
    """``regsweep match`` sees packages and matches but no ``image`` record: the packages
    still become their image's component when the BOM ends."""
    bare = [
        PackageRecord(package=SSL),
        VulnerabilityRecord(package=SSL, advisory=UNFIXED),
    ]
    doc = _cyclonedx(bare)
    [image] = doc["components"]
    assert image["name"] == "unknown" and [c["name"] for c in image["components"]] == ["openssl"]
    assert doc["vulnerabilities"][0]["affects"][0]["ref"] == image["components"][0]["bom-ref"]


def test_table_lists_findings_worst_first() -> None:
    text = _run(Format.TABLE, [*_image_records(), SUMMARY]).decode()
    assert text.index("CVE-2024-0001") < text.index("RS-IMG-001") < text.index("CVE-2024-0002")
    assert "1 images, 3 vulnerabilities" in text


def test_cyclonedx_writes_an_image_once_the_next_ones_records_begin() -> None:
    """``match`` input has no ``image`` records: a BOM must not hold every package of the
    run until it ends."""
    other = msgspec.structs.replace(IMAGE, ref="registry.example:5000/team/db:1", digest=None)
    out = io.BytesIO()
    sink = open_sink(Format.CYCLONEDX, out)
    sink.begin()
    sink.write(PackageRecord(image=IMAGE, package=SSL))
    assert b'"openssl"' not in out.getvalue()
    sink.write(PackageRecord(image=other, package=ODD))
    assert b'"openssl"' in out.getvalue()
    sink.end()
    assert len(valid_cyclonedx(out.getvalue())["components"]) == 2


def test_table_prints_markup_in_findings_as_text() -> None:
    """Evidence and names come from images: ``[/x]`` is text, not a style to close."""
    odd = Check(id="RS-IMG-005", title="secret [/evil] [bold]x", severity=Severity.HIGH,
                category="secret")  # fmt: skip
    text = _run(Format.TABLE, [MisconfigurationRecord(image=IMAGE, check=odd, evidence="[/a]")])
    assert "[/evil]" in text.decode() and "[/a]" in text.decode()


def test_every_tag_of_an_image_is_its_own_sarif_alert_and_cves_are_named() -> None:
    """Two tags of one digest: two fingerprints (GitHub folds equal ones into one alert);
    a DSA's related CVEs are on its rule."""
    dsa = msgspec.structs.replace(CRIT, id="DSA-5555-1", aliases=(), related=("CVE-2024-0001",))
    other = msgspec.structs.replace(
        IMAGE, ref="registry.example:5000/team/app:latest", tag="latest"
    )
    doc = _sarif([VulnerabilityRecord(image=i, package=SSL, advisory=dsa) for i in (IMAGE, other)])
    [run] = doc["runs"]
    prints = {r["partialFingerprints"]["regsweepFinding/v1"] for r in run["results"]}
    assert len(prints) == 2
    assert run["tool"]["driver"]["rules"][0]["properties"]["related"] == ["CVE-2024-0001"]
    assert all(r["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
               for r in run["results"])  # fmt: skip


def test_cyclonedx_names_a_local_image_by_its_path() -> None:
    """``oci:/srv/images/web:1`` is ``web``, not the transport's name."""
    local = ImageRef(ref="oci:/srv/images/web:1", tag="1", digest="sha256:" + "ef" * 32,
                     platform="linux/arm64/v8")  # fmt: skip
    doc = _cyclonedx([ImageRecord(image=local, scanned_at=T0)])
    [image] = doc["components"]
    assert image["name"] == "web"
    assert image["purl"] == f"pkg:oci/web@sha256%3A{'ef' * 32}?arch=arm64&tag=1"
