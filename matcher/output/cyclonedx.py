"""CycloneDX 1.6 JSON: one BOM for the whole invocation (see the package doc).

* ``metadata`` names regsweep as the tool and the time the BOM was begun.
* ``components``: each image a ``container`` component (``bom-ref`` from its reference and
  digest; a ``pkg:oci`` purl when the digest is known; the platform, digests and each
  failed configuration check as ``regsweep:`` properties) holding its operating system
  (an ``operating-system`` component) and its packages (``library`` components with their
  purl, and the package type, ecosystem, layer and path as properties).
* ``vulnerabilities``: per image, one entry per advisory with the image's packages it
  affects (``affects[].ref`` their ``bom-ref``; the installed version ``affected``, each
  fixed version ``unaffected``), the ratings (each CVSS vector with its score and method,
  or the qualitative severity and who assigned it), the description, aliases and vendor
  status, and an upgrade recommendation when a fix exists.
* ``error`` records become root ``properties`` named ``regsweep:error``: a BOM has no
  place for failures, and a consumer must still see that an image is missing.

A BOM describes every package, so ``scan`` and ``crawl`` make package records for it
(``Sink.wants_packages``). Records arrive image by image (the judge writes an image's
records together, its ``image`` record last): an image's packages are held until its
``image`` record, then written; the vulnerabilities are spooled to disk and written after
the components. Package records that no ``image`` record closes (``regsweep match``
input) are written as their image's component when another image's records begin, or
when the BOM ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import BinaryIO, Final
from urllib.parse import quote

import msgspec

from regsweep.matcher.output._spool import Spool
from regsweep.matcher.output.base import Sink, tool_version
from regsweep.matcher.records import (
    Advisory,
    Cvss,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    MisconfigurationRecord,
    Package,
    PackageRecord,
    Record,
    Severity,
    Suppression,
    VulnerabilityRecord,
)

SPEC_VERSION: Final = "1.6"
_SEVERITY: Final = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.NONE: "none",
    Severity.UNKNOWN: "unknown",
}


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": f"regsweep:{name}", "value": str(value)}


def _method(cvss: Cvss) -> str:
    if cvss.type == "CVSS_V2":
        return "CVSSv2"
    if cvss.type == "CVSS_V4":
        return "CVSSv4"
    if cvss.type == "CVSS_V3":
        return "CVSSv31" if cvss.vector.startswith("CVSS:3.1/") else "CVSSv3"
    return "other"


class _Image:
    """What has arrived of one image so far."""

    __slots__ = ("image", "misconfigurations", "packages", "record", "vulnerabilities")

    def __init__(self, image: ImageRef | None) -> None:
        self.image = image
        self.record: ImageRecord | None = None
        #: Package -> its position (its bom-ref suffix); a dict keeps the order too.
        self.packages: dict[Package, int] = {}
        #: Advisory id -> (advisory, packages it affects), in the order met.
        self.vulnerabilities: dict[
            tuple[str, Suppression | None], tuple[Advisory, list[Package], Suppression | None]
        ] = {}
        self.misconfigurations: list[MisconfigurationRecord] = []


class CycloneDxSink(Sink):
    """Streams one CycloneDX BOM (see the module doc)."""

    wants_packages = True

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out)
        self._enc = msgspec.json.Encoder()
        self._open: dict[ImageRef | None, _Image] = {}
        self._components = 0
        self._refs: set[str] = set()
        self._vulns = Spool()
        self._errors = Spool()

    def begin(self) -> None:
        head = {
            "bomFormat": "CycloneDX",
            "specVersion": SPEC_VERSION,
            "serialNumber": f"urn:uuid:{uuid.uuid4()}",
            "version": 1,
            "metadata": {
                "timestamp": datetime.now(UTC).replace(microsecond=0),
                "tools": {
                    "components": [
                        {"type": "application", "name": "regsweep", "version": tool_version()}
                    ]
                },
            },
        }
        self.out.write(self._enc.encode(head)[:-1] + b',"components":[')

    def _group(self, image: ImageRef | None) -> _Image:
        group = self._open.get(image)
        if group is None:
            # An image's records come together: one for another image means the open ones
            # are complete (for ``match`` input, which has no ``image`` records to say so),
            # so memory holds one image at a time.
            for other in list(self._open.values()):
                self._finish(other)
            group = self._open[image] = _Image(image)
        return group

    def write(self, record: Record) -> None:
        if isinstance(record, PackageRecord):
            packages = self._group(record.image).packages
            packages.setdefault(record.package, len(packages))
        elif isinstance(record, VulnerabilityRecord):
            self._matched(record.image, record.package, record.advisory, record.suppressed)
        elif isinstance(record, MisconfigurationRecord):
            self._group(record.image).misconfigurations.append(record)
        elif isinstance(record, ImageRecord):
            group = self._group(record.image)
            group.record = record
            self._close(group)
        elif isinstance(record, ErrorRecord):
            where = record.ref or (record.image.ref if record.image else "input")
            self._errors.add(_prop("error", f"{where}: {record.stage} {record.error}: "
                                            f"{record.message}"))  # fmt: skip
        # A ``resolved`` record (``rematch --changes``) is left out: the BOM states the
        # vulnerabilities that hold now.

    def write_matches(
        self, image: ImageRef | None, package: Package, advisories: Sequence[Advisory]
    ) -> None:
        for adv in advisories:
            self._matched(image, package, adv)

    def _matched(
        self,
        image: ImageRef | None,
        package: Package,
        adv: Advisory,
        why: Suppression | None = None,
    ) -> None:
        group = self._group(image)
        group.packages.setdefault(package, len(group.packages))
        # A suppressed finding is its own entry: its analysis says not_affected, and the
        # same advisory may still affect other packages of the image.
        key = (adv.id, why)
        hit = group.vulnerabilities.get(key)
        if hit is None:
            group.vulnerabilities[key] = (adv, [package], why)
        else:
            hit[1].append(package)

    def _bom_ref(self, image: ImageRef | None) -> str:
        base = "image:unknown" if image is None else f"image:{image.ref}"
        if image is not None and image.digest and "@" not in image.ref:
            base += f"@{image.digest}"
        if image is not None and image.platform:
            base += f"#{image.platform}"
        ref, n = base, 1
        while ref in self._refs:  # the same image named twice in one run
            n += 1
            ref = f"{base}~{n}"
        self._refs.add(ref)
        return ref

    def _finish(self, group: _Image) -> None:
        """Write a group no ``image`` record will close, if it holds any package."""
        if group.packages:
            self._close(group)
        else:
            del self._open[group.image]

    def _close(self, group: _Image) -> None:
        del self._open[group.image]
        image, record = group.image, group.record
        bom_ref = self._bom_ref(image)
        children: list[dict[str, object]] = []
        if record is not None and record.os is not None:
            os_component: dict[str, object] = {
                "type": "operating-system",
                "bom-ref": f"{bom_ref}/os",
                "name": record.os.family,
            }
            if record.os.version:
                os_component["version"] = record.os.version
            if record.os.name:
                os_component["description"] = record.os.name
            children.append(os_component)
        refs: dict[Package, str] = {}
        for pkg, n in group.packages.items():
            refs[pkg] = f"{bom_ref}/pkg/{n}"
            children.append(_package(pkg, refs[pkg]))
        component = _container(image, bom_ref, record, group.misconfigurations)
        if children:
            component["components"] = children
        if self._components:
            self.out.write(b",")
        self.out.write(self._enc.encode(component))
        self._components += 1
        for adv, packages, why in group.vulnerabilities.values():
            self._vulns.add(_vulnerability(adv, packages, refs, why))

    def end(self, complete: bool = True) -> None:
        # Images whose ``image`` record never came: ``match`` input, or a run cut short.
        for group in list(self._open.values()):
            self._finish(group)
        out = self.out
        out.write(b'],"vulnerabilities":[')
        self._vulns.copy_to(out)
        out.write(b"]")
        if not complete:
            # Not the whole inventory: a consumer that replaces a project's components with
            # a BOM's must be able to tell (the run also exits non-zero).
            self._errors.add(_prop("incomplete", "true: the run was interrupted"))
        if self._errors.count:
            out.write(b',"properties":[')
            self._errors.copy_to(out)
            out.write(b"]")
        out.write(b"}\n")
        out.flush()


def _container(
    image: ImageRef | None,
    bom_ref: str,
    record: ImageRecord | None,
    misconfigurations: list[MisconfigurationRecord],
) -> dict[str, object]:
    name = "unknown"
    props: list[dict[str, str]] = []
    component: dict[str, object] = {"type": "container", "bom-ref": bom_ref}
    if image is not None:
        name = image.repository or (
            _local_name(image.ref)
            if image.ref.startswith(("oci:", "docker-archive:"))
            else image.ref
        )
        props.append(_prop("image:ref", image.ref))
        if image.tag:
            component["version"] = image.tag
        for key in ("registry", "digest", "index_digest", "platform"):
            value = getattr(image, key)
            if value:
                props.append(_prop(f"image:{key}", value))
        if image.digest and image.digest.startswith("sha256:"):
            component["hashes"] = [{"alg": "SHA-256", "content": image.digest[7:]}]
            component["purl"] = _oci_purl(image)
    component["name"] = name
    if record is not None:
        props += [
            _prop("image:layers", record.layers),
            _prop("image:size", record.size),
        ]
        if record.config is not None and record.config.user is not None:
            props.append(_prop("image:user", record.config.user))
    for m in misconfigurations:
        evidence = f": {m.evidence}" if m.evidence else ""
        if m.suppressed is not None:
            evidence += f" (suppressed: {m.suppressed.kind})"
        props.append(
            _prop("misconfiguration", f"{m.check.id} {m.check.severity.value} {m.check.title}"
                                      f"{evidence}")
        )  # fmt: skip
    if props:
        component["properties"] = props
    return component


def _oci_purl(image: ImageRef) -> str:
    assert image.digest is not None
    repo = image.repository or _local_name(image.ref)
    name = repo.rsplit("/", 1)[-1].lower()
    qualifiers = []
    if image.registry:
        qualifiers.append("repository_url=" + quote(f"{image.registry}/{repo}", safe="/"))
    if image.platform:
        # purl-spec's oci type knows ``arch`` (no os, no variant).
        arch = image.platform.split("/")[1] if "/" in image.platform else image.platform
        qualifiers.append("arch=" + quote(arch, safe=""))
    if image.tag:
        qualifiers.append("tag=" + quote(image.tag, safe=""))
    query = "?" + "&".join(sorted(qualifiers)) if qualifiers else ""
    return f"pkg:oci/{quote(name, safe='')}@{quote(image.digest, safe='')}{query}"


def _local_name(ref: str) -> str:
    """A name for an image named by a local path: ``oci:/srv/images/web:1`` → ``web``."""
    _, _, path = ref.partition(":")  # the transport
    path = path.split("@", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1]
    stem = last.split(":", 1)[0].removesuffix(".tar").removesuffix(".tar.gz") or "image"
    return stem


def _package(pkg: Package, bom_ref: str) -> dict[str, object]:
    component: dict[str, object] = {
        "type": "library",
        "bom-ref": bom_ref,
        "name": pkg.name,
        "version": pkg.version,
    }
    if pkg.purl:
        component["purl"] = pkg.purl
    props = [_prop("package:type", pkg.type)]
    for key in ("ecosystem", "source_name", "source_version", "layer", "path", "owner"):
        value = getattr(pkg, key)
        if value:
            props.append(_prop(f"package:{key}", value))
    if pkg.root:  # the project itself, not a dependency
        props.append(_prop("package:root", "true"))
    component["properties"] = props
    return component


#: OpenVEX justifications in CycloneDX's vocabulary (a CycloneDX one passes as it is).
_JUSTIFICATION = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}
_CDX_JUSTIFICATIONS = frozenset(
    {
        "code_not_present", "code_not_reachable", "requires_configuration",
        "requires_dependency", "requires_environment", "protected_by_compiler",
        "protected_at_runtime", "protected_at_perimeter", "protected_by_mitigating_control",
    }
)  # fmt: skip


def _analysis(why: Suppression) -> dict[str, object]:
    analysis: dict[str, object] = {"state": "not_affected"}
    cdx = _JUSTIFICATION.get(why.justification or "", why.justification)
    if cdx in _CDX_JUSTIFICATIONS:
        analysis["justification"] = cdx
    words = [w for w in (why.justification, why.reason) if w]
    analysis["detail"] = f"{why.kind}: {'; '.join(words)}" if words else why.kind
    return analysis


def _vulnerability(
    adv: Advisory,
    packages: list[Package],
    refs: dict[Package, str],
    why: Suppression | None = None,
) -> dict[str, object]:
    ratings: list[dict[str, object]] = []
    for c in adv.cvss:
        rating: dict[str, object] = {"method": _method(c), "vector": c.vector}
        if c.score is not None:
            rating["score"] = c.score
        ratings.append(rating)
    qualitative: dict[str, object] = {"severity": _SEVERITY[adv.severity], "method": "other"}
    if adv.severity_source:
        qualitative["source"] = {"name": adv.severity_source}
    ratings.append(qualitative)
    entry: dict[str, object] = {"id": adv.id}
    if adv.source:
        entry["source"] = {"name": adv.source}
    entry["ratings"] = ratings
    if adv.summary:
        entry["description"] = adv.summary
    if adv.fixed:
        entry["recommendation"] = f"Upgrade to {' or '.join(adv.fixed)}."
    if adv.modified is not None:
        entry["updated"] = adv.modified
    affects = []
    for pkg in dict.fromkeys(packages):
        versions = [{"version": pkg.version, "status": "affected"}]
        versions += [{"version": v, "status": "unaffected"} for v in adv.fixed]
        affects.append({"ref": refs[pkg], "versions": versions})
    entry["affects"] = affects
    if why is not None:
        entry["analysis"] = _analysis(why)
    props = [_prop("status", adv.status.value)]
    if adv.vendor_status:
        props.append(_prop("vendor_status", adv.vendor_status))
    props += [_prop("alias", a) for a in adv.aliases]
    props += [_prop("related", r) for r in adv.related]
    entry["properties"] = props
    return entry
