"""Validators of the document formats, as the tests use them: SARIF against the official
2.1.0 schema (draft-04, copied in ``tests/data/schemas``), CycloneDX 1.6 with
cyclonedx-python-lib's strict JSON validator."""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests import paths

SARIF_SCHEMA = msgspec.json.decode(
    (paths.DATA / "schemas" / "sarif-schema-2.1.0.json").read_bytes()
)


def valid_sarif(data: bytes) -> dict[str, Any]:
    """``data`` decoded, after checking it against the SARIF 2.1.0 schema."""
    doc: dict[str, Any] = msgspec.json.decode(data)
    validator = jsonschema.Draft4Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    assert [e.message for e in validator.iter_errors(doc)] == []
    return doc


def valid_cyclonedx(data: bytes) -> dict[str, Any]:
    """``data`` decoded, after cyclonedx-python-lib's strict CycloneDX 1.6 validation."""
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode()) is None
    doc: dict[str, Any] = msgspec.json.decode(data)
    return doc
