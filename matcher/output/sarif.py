"""SARIF 2.1.0: one log, one run for the whole invocation (see the package doc).

* **Rules**: one per advisory id and one per configuration check, in the order first met
  (``ruleIndex`` points into ``tool.driver.rules``). An advisory's rule carries its summary,
  aliases and a ``security-severity`` (the score GitHub code scanning ranks alerts by)
  from its qualitative severity: CRITICAL 9.5, HIGH 8.0, MEDIUM 5.5, LOW 2.0 (the middle
  of each band of GitHub's mapping), none for NONE and UNKNOWN.
* **Results**: one per vulnerability and per misconfiguration record. ``level`` follows the
  severity (CRITICAL and HIGH ``error``, MEDIUM ``warning``, the rest ``note``). Each is
  located at the image (the artifact: the image reference, percent-encoded into a
  relative URI) and, for a vulnerability, at the package (a logical location, with the
  file the package was found in when known). ``partialFingerprints`` identify a finding
  across runs by image digest, package and rule, so re-uploads do not duplicate alerts.
* **Errors** are ``toolExecutionNotifications`` of the invocation; a run cut short
  (``end(complete=False)``) is not ``executionSuccessful``; the ``summary`` record gives
  the times. The images scanned are listed in the run's ``properties``.

The results stream to the output as they come; rules are kept in memory (one per distinct
advisory), the notifications and image list are spooled to disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import BinaryIO, Final
from urllib.parse import quote

import msgspec

from regsweep.matcher.output._spool import Spool
from regsweep.matcher.output.base import Sink, tool_version
from regsweep.matcher.records import (
    Advisory,
    Check,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    MisconfigurationRecord,
    Record,
    Severity,
    SummaryRecord,
    Suppression,
    VulnerabilityRecord,
)

SCHEMA_URI: Final = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI: Final = "https://github.com/regsweep/regsweep"
_LEVEL: Final = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NONE: "note",
    Severity.UNKNOWN: "note",
}
_SECURITY_SEVERITY: Final = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
}


def _image_uri(image: ImageRef | None) -> str:
    # ``host:5000/repo@sha256:…`` is not a URI reference as it stands (the part before the
    # first colon would read as a scheme): percent-encode all but the slashes.
    return quote(image.ref if image is not None else "unknown-image", safe="/")


def _physical(image: ImageRef | None) -> dict[str, object]:
    # A region as well: GitHub code scanning places a result by its start line, and an
    # image has no lines; line 1 stands for "the image".
    return {"artifactLocation": {"uri": _image_uri(image)}, "region": {"startLine": 1}}


def _fingerprint(*parts: str | None) -> str:
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


def _suppressions(why: Suppression | None) -> dict[str, object]:
    # A finding written by --show-suppressed: SARIF's own way, which code-scanning
    # dashboards honour (shown as dismissed, not as an open alert).
    if why is None:
        return {}
    words = [w for w in (why.justification, why.reason) if w]
    suppression: dict[str, object] = {"kind": "external", "status": "accepted"}
    suppression["justification"] = f"{why.kind}: {'; '.join(words)}" if words else why.kind
    if why.source:
        suppression["properties"] = {"source": why.source}
    return {"suppressions": [suppression]}


def _image_properties(image: ImageRef | None) -> dict[str, str]:
    if image is None:
        return {}
    props = {"image": image.ref}
    if image.digest:
        props["imageDigest"] = image.digest
    if image.platform:
        props["platform"] = image.platform
    return props


class SarifSink(Sink):
    """Streams one SARIF log (see the module doc)."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out)
        self._enc = msgspec.json.Encoder()
        self._rules: dict[str, int] = {}
        self._rule_objects: list[dict[str, object]] = []
        self._results = 0
        self._notes = Spool()
        self._images = Spool()
        self._summary: SummaryRecord | None = None

    def begin(self) -> None:
        self.out.write(
            b'{"version":"2.1.0","$schema":%s,"runs":[{"results":[' % self._enc.encode(SCHEMA_URI)
        )

    def _rule(self, rule_id: str, make: Callable[[], dict[str, object]]) -> int:
        index = self._rules.get(rule_id)
        if index is None:
            index = self._rules[rule_id] = len(self._rule_objects)
            self._rule_objects.append(make())
        return index

    def _result(self, result: dict[str, object]) -> None:
        if self._results:
            self.out.write(b",")
        self.out.write(self._enc.encode(result))
        self._results += 1

    def write(self, record: Record) -> None:
        if isinstance(record, VulnerabilityRecord):
            self._vulnerability(record)
        elif isinstance(record, MisconfigurationRecord):
            self._misconfiguration(record)
        elif isinstance(record, ErrorRecord):
            self._error(record)
        elif isinstance(record, ImageRecord):
            self._images.add(
                {
                    **_image_properties(record.image),
                    "os": record.os,
                    "packages": record.packages,
                    "vulnerabilities": record.vulnerabilities,
                    "misconfigurations": record.misconfigurations,
                }
            )
        elif isinstance(record, SummaryRecord):
            self._summary = record
        # A ``resolved`` record (``rematch --changes``) is left out: a SARIF log lists the
        # results that hold, and a code-scanning dashboard closes an alert by its absence.

    def _vulnerability(self, r: VulnerabilityRecord) -> None:
        adv, pkg, image = r.advisory, r.package, r.image
        index = self._rule(adv.id, lambda: _advisory_rule(adv))
        fixed = f"; fixed in {', '.join(adv.fixed)}" if adv.fixed else ""
        logical: list[dict[str, str]] = []
        if image is not None:
            logical.append({"name": image.ref, "kind": "image"})
        logical.append(
            {
                "name": pkg.name,
                "fullyQualifiedName": pkg.purl or f"{pkg.type}/{pkg.name}@{pkg.version}",
                "kind": "package",
            }
        )
        properties: dict[str, object] = {
            **_image_properties(image),
            "package": pkg.name,
            "installedVersion": pkg.version,
            "packageType": pkg.type,
            "fixedVersions": list(adv.fixed),
            "status": adv.status.value,
        }
        if pkg.purl:
            properties["purl"] = pkg.purl
        if pkg.path:
            properties["packagePath"] = pkg.path
        self._result(
            {
                "ruleId": adv.id,
                "ruleIndex": index,
                "level": _LEVEL[adv.severity],
                "message": {
                    "text": f"{pkg.name} {pkg.version} in {_ref(image)} is affected by "
                    f"{adv.id} ({adv.severity.value}){fixed}."
                },
                "locations": [
                    {
                        "physicalLocation": _physical(image),
                        "logicalLocations": logical,
                    }
                ],
                "partialFingerprints": {
                    # The reference too: every tag of one image is its own alert (GitHub
                    # would fold them into one), and the path: vendored copies of a package.
                    "regsweepFinding/v1": _fingerprint(
                        image.ref if image else None,
                        image.digest if image else None,
                        pkg.type,
                        pkg.name,
                        pkg.version,
                        pkg.path,
                        adv.id,
                    )
                },
                "properties": properties,
                **_suppressions(r.suppressed),
            }
        )

    def _misconfiguration(self, m: MisconfigurationRecord) -> None:
        check = m.check
        index = self._rule(check.id, lambda: _check_rule(check))
        evidence = f": {m.evidence}" if m.evidence else ""
        result: dict[str, object] = {
            "ruleId": check.id,
            "ruleIndex": index,
            "level": _LEVEL[check.severity],
            "message": {"text": f"{check.title} in {m.image.ref}{evidence}."},
            "locations": [
                {
                    "physicalLocation": _physical(m.image),
                    "logicalLocations": [{"name": m.image.ref, "kind": "image"}],
                }
            ],
            "partialFingerprints": {
                "regsweepFinding/v1": _fingerprint(
                    m.image.ref, m.image.digest, check.id, m.evidence
                )
            },
            "properties": _image_properties(m.image),
        }
        if m.remediation:
            # Not a SARIF ``fix``: that needs the artifact changes, and this is advice.
            result["properties"] = {**_image_properties(m.image), "remediation": m.remediation}
        result.update(_suppressions(m.suppressed))
        self._result(result)

    def _error(self, e: ErrorRecord) -> None:
        self._notes.add(
            {
                "level": "error",
                "message": {"text": f"{e.ref or _ref(e.image)}: {e.message}"},
                "descriptor": {"id": e.error},
                "properties": {
                    **_image_properties(e.image),
                    "stage": e.stage,
                    "retryable": e.retryable,
                },
            }
        )

    def end(self, complete: bool = True) -> None:
        enc = self._enc.encode
        driver = {
            "name": "regsweep",
            "version": tool_version(),
            "informationUri": INFORMATION_URI,
            "rules": self._rule_objects,
        }
        invocation: dict[str, object] = {"executionSuccessful": complete}
        s = self._summary
        if s is not None:
            invocation["startTimeUtc"] = s.started_at
            invocation["endTimeUtc"] = s.finished_at
        out = self.out
        out.write(b'],"tool":{"driver":%s},"invocations":[' % enc(driver))
        # The invocation's fields, then its spooled notifications, then the run's
        # properties with the spooled image list.
        out.write(enc(invocation)[:-1] + b',"toolExecutionNotifications":[')
        self._notes.copy_to(out)
        out.write(b']}],"properties":{')
        if s is not None:
            out.write(b'"summary":%s,' % enc(s))
        out.write(b'"images":[')
        self._images.copy_to(out)
        out.write(b"]}}]}\n")
        out.flush()


def _ref(image: ImageRef | None) -> str:
    return image.ref if image is not None else "the input"


def _advisory_rule(adv: Advisory) -> dict[str, object]:
    text = adv.summary or adv.id
    properties: dict[str, object] = {
        "tags": ["security", "vulnerability", adv.severity.value.lower()],
    }
    score = _SECURITY_SEVERITY.get(adv.severity)
    if score is not None:
        properties["security-severity"] = score
    if adv.aliases:
        properties["aliases"] = list(adv.aliases)
    if adv.related:
        # A DSA's CVEs: what other tools and people search for.
        properties["related"] = list(adv.related)
    if adv.source:
        properties["source"] = adv.source
    return {
        "id": adv.id,
        "shortDescription": {"text": text},
        "fullDescription": {"text": text},
        "help": {"text": _help(adv)},
        "defaultConfiguration": {"level": _LEVEL[adv.severity]},
        "properties": properties,
    }


def _help(adv: Advisory) -> str:
    parts = [f"{adv.id}: {adv.summary or 'no summary published'}."]
    if adv.aliases:
        parts.append(f"Also known as {', '.join(adv.aliases)}.")
    if adv.related:
        parts.append(f"Related: {', '.join(adv.related)}.")
    parts.append(
        f"Fixed in {', '.join(adv.fixed)}." if adv.fixed else "No fixed version published."
    )
    return " ".join(parts)


def _check_rule(check: Check) -> dict[str, object]:
    properties: dict[str, object] = {"tags": ["security", "misconfiguration", check.category]}
    score = _SECURITY_SEVERITY.get(check.severity)
    if score is not None:
        properties["security-severity"] = score
    return {
        "id": check.id,
        "shortDescription": {"text": check.title},
        "defaultConfiguration": {"level": _LEVEL[check.severity]},
        "properties": properties,
    }
