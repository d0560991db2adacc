"""The NDJSON output contract: the kept JSON Schema, round trips, and the record shapes."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import msgspec
import pytest

from regsweep.matcher import records
from regsweep.matcher.records import (
    KINDS,
    Advisory,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    Package,
    Record,
    SummaryRecord,
    VulnerabilityRecord,
)
from tests import paths

SCHEMA_FILE = paths.REPO / "schema" / "output-v1.schema.json"


def test_kept_json_schema_matches_the_structs() -> None:
    """schema/output-v1.schema.json is what the Structs generate (REGSWEEP_UPDATE_GOLDENS=1
    rewrites it); a field change that forgets the schema fails here."""
    generated = msgspec.json.format(msgspec.json.encode(records.json_schema()), indent=2) + b"\n"
    if os.environ.get("REGSWEEP_UPDATE_GOLDENS"):
        SCHEMA_FILE.write_bytes(generated)
    assert SCHEMA_FILE.read_bytes() == generated


def test_every_kind_is_in_the_union_and_tagged() -> None:
    """Each contract kind decodes to its own Struct through the tagged union."""
    image = ImageRef(ref="oci:/x:latest", digest="sha256:" + "0" * 64)
    now = datetime(2026, 11, 28, tzinfo=UTC)
    samples = [
        ImageRecord(image=image, scanned_at=now),
        records.PackageRecord(image=image, package=Package(name="zlib1g", version="1", type="deb")),
        VulnerabilityRecord(
            image=image,
            package=Package(name="zlib1g", version="1", type="deb"),
            advisory=Advisory(id="DSA-1"),
        ),
        records.MisconfigurationRecord(
            image=image,
            check=records.Check(id="RS-IMG-001", title="t", severity="HIGH", category="user"),
        ),
        ErrorRecord(ref="oci:/x", stage="layer", error="digest_mismatch", message="m"),
        SummaryRecord(started_at=now, finished_at=now),
        records.ResolvedRecord(
            image=image,
            package=Package(name="zlib1g", version="1", type="deb"),
            advisory=Advisory(id="DSA-1"),
            reason=records.ResolveReason.WITHDRAWN,
            resolved_at=now,
        ),
    ]
    decoder = msgspec.json.Decoder(Record)
    seen = []
    for rec in samples:
        line = msgspec.json.encode(rec)
        obj = msgspec.json.decode(line)
        assert obj["schema_version"] == 1
        seen.append(obj["kind"])
        assert decoder.decode(line) == rec
    assert tuple(seen) == KINDS


def test_contract_field_names_are_stable() -> None:
    """The field names OUTPUT.md promises are present under exactly those names."""
    fields = {f.name for f in msgspec.structs.fields(Package)}
    assert fields >= {
        "name", "version", "type", "ecosystem", "source_name", "source_version",
        "purl", "layer", "path", "owner",
    }  # fmt: skip
    adv = {f.name for f in msgspec.structs.fields(Advisory)}
    assert adv >= {
        "id", "aliases", "related", "summary", "severity", "severity_source", "cvss",
        "fixed", "status", "vendor_status", "source", "modified",
    }  # fmt: skip
    err = {f.name for f in msgspec.structs.fields(ErrorRecord)}
    assert err >= {"image", "ref", "stage", "error", "message", "retryable"}
    resolved = {f.name for f in msgspec.structs.fields(records.ResolvedRecord)}
    assert resolved >= {"image", "package", "advisory", "reason", "resolved_at"}
    assert {r.value for r in records.ResolveReason} == {
        "fixed_in_index", "withdrawn", "package_gone", "image_gone",
    }  # fmt: skip


def test_timestamps_are_rfc3339_utc() -> None:
    """Datetimes are written as RFC 3339 in UTC (``Z``)."""
    now = datetime(2026, 11, 28, 18, 30, tzinfo=UTC)
    line = msgspec.json.decode(msgspec.json.encode(SummaryRecord(started_at=now, finished_at=now)))
    assert line["started_at"] == "2026-11-28T18:30:00Z"


def test_unknown_kind_is_rejected() -> None:
    """A line with a kind outside the contract does not decode silently."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.Decoder(Record).decode(b'{"kind":"nope","schema_version":1}')
