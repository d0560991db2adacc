"""Triage: the findings a user has set aside, and why.

A ``Triage`` answers, for each finding the judge is about to write, whether it is set aside:

* **VEX** (``--vex FILE``, repeatable): OpenVEX documents and CycloneDX VEX (a BOM's
  ``vulnerabilities`` with an ``analysis``). A statement whose status is ``not_affected``
  (CycloneDX: ``analysis.state``) *and* that says why (a justification, or an impact
  statement/detail) suppresses the findings it covers; ``affected``, ``fixed`` and
  ``under_investigation`` suppress nothing. A statement covers a finding when it names the
  advisory (its id or an alias) and a product that is the finding's package (a purl; one
  without a version covers every version) or its image (an image purl ``pkg:oci/…@sha256:…``
  or a digest or reference; with ``subcomponents``, only those packages of it).
* **Ignore rules** (``--ignore-file``, default ``.regsweepignore.yaml`` when present): an
  advisory id (or alias) or a check id, optional ``packages`` and ``images`` globs,
  ``expires`` and ``reason``. An expired rule is not applied, and says so in a warning.
* **Filters**: ``--severity LIST`` keeps findings of those severities, ``--ignore-unfixed``
  keeps vulnerabilities that have a fixed version.

VEX comes first (a vendor's word on the product), then the ignore rules, then the filters.
Findings suppressed by VEX or a rule can be written with ``--show-suppressed`` (status
``not_affected`` and a ``suppressed`` object saying why); filtered ones are only counted.
Every suppressed finding is counted in the summary's ``suppressed`` and never makes
``--fail-on`` fail.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import msgspec

from regsweep.matcher.records import (
    Advisory,
    ImageRef,
    MisconfigurationRecord,
    Package,
    Severity,
    Status,
    Suppression,
)

__all__ = [
    "DEFAULT_IGNORE_FILE",
    "IgnoreRule",
    "Triage",
    "TriageError",
    "VexStatement",
    "load_ignore_file",
    "load_vex",
]

#: The ignore file read from the working directory when ``--ignore-file`` is not given.
DEFAULT_IGNORE_FILE: Final = ".regsweepignore.yaml"

#: Suppressions written with ``--show-suppressed`` (the filters' are only counted).
SHOWN: Final = frozenset({"vex", "ignore", "os_package"})


class TriageError(ValueError):
    """An ignore file or VEX document that cannot be used (the message names the file)."""


# -- package URLs ---------------------------------------------------------------------------


class _Purl(msgspec.Struct, frozen=True, gc=False):
    type: str
    namespace: str
    name: str
    version: str | None


def _purl(text: str) -> _Purl | None:
    """``pkg:type/namespace/name@version?qualifiers#subpath`` → its parts (qualifiers and
    subpath dropped: they say where a package came from, not which it is)."""
    if not text.startswith("pkg:"):
        return None
    rest = text[4:].lstrip("/").split("#", 1)[0].split("?", 1)[0]
    path, _, version = rest.partition("@")
    parts = path.split("/")
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        return None
    typ = parts[0].lower()
    name = unquote(parts[-1])
    namespace = "/".join(unquote(p) for p in parts[1:-1])
    if typ in ("pypi", "deb", "apk", "rpm", "npm", "gem", "cargo", "golang", "composer"):
        namespace = namespace.lower()
    if typ == "pypi":
        name = name.lower().replace("_", "-").replace(".", "-")
    return _Purl(typ, namespace, name, unquote(version) or None)


def _purl_covers(stated: _Purl, actual: _Purl | None) -> bool:
    if actual is None:
        return False
    return (
        stated.type == actual.type
        and stated.name == actual.name
        and (not stated.namespace or stated.namespace == actual.namespace)
        and (stated.version is None or stated.version == actual.version)
    )


def _image_named(product: str, image: ImageRef | None) -> bool:
    """Whether a VEX product id names ``image``: its digest (or its index's) inside an
    image purl or on its own, or its reference."""
    if image is None:
        return False
    digests = {d for d in (image.digest, image.index_digest) if d}
    if product.startswith("pkg:oci/"):
        version = product.split("?", 1)[0].partition("@")[2]
        return unquote(version) in digests
    if product.startswith("sha256:"):
        return product in digests
    bare = product.split("@", 1)
    if len(bare) == 2 and bare[1] in digests:
        return True
    return product == image.ref


# -- VEX ------------------------------------------------------------------------------------


class _Product(msgspec.Struct, frozen=True, gc=False):
    id: str
    subcomponents: tuple[str, ...] = ()


class VexStatement(msgspec.Struct, frozen=True, kw_only=True):
    """One statement of a VEX document, normalised across OpenVEX and CycloneDX."""

    #: The advisory ids the statement is about (its vulnerability's name and aliases).
    ids: frozenset[str]
    products: tuple[_Product, ...]
    #: ``not_affected``, ``affected``, ``fixed`` or ``under_investigation``.
    status: str
    justification: str | None = None
    detail: str | None = None
    source: str

    def covers(self, image: ImageRef | None, pkg: Package, ids: Iterable[str]) -> bool:
        """Whether the statement is about this advisory (any of ``ids``) in this package."""
        if self.ids.isdisjoint(ids):
            return False
        actual = _purl(pkg.purl) if pkg.purl else None
        for product in self.products:
            stated = _purl(product.id)
            if stated is not None and stated.type != "oci":
                if _purl_covers(stated, actual):
                    return True
            elif _image_named(product.id, image):
                if not product.subcomponents:
                    return True
                for sub in product.subcomponents:
                    stated_sub = _purl(sub)
                    if stated_sub is not None and _purl_covers(stated_sub, actual):
                        return True
        return False


_CDX_STATES: Final = {
    "not_affected": "not_affected",
    "false_positive": "not_affected",
    "exploitable": "affected",
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "in_triage": "under_investigation",
}


def _ids(vuln: Any) -> set[str]:
    # OpenVEX v0.2: {"name", "@id", "aliases"}; earlier drafts: a plain string.
    if isinstance(vuln, str):
        return {vuln}
    if isinstance(vuln, dict):
        out = {v for k in ("name", "@id") if isinstance(v := vuln.get(k), str)}
        out.update(a for a in vuln.get("aliases") or () if isinstance(a, str))
        return out
    return set()


def _product_id(item: Any) -> str | None:
    # A product or subcomponent: its ``@id``, else its ``identifiers.purl``, or a string.
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return None
    pid = item.get("@id") or (item.get("identifiers") or {}).get("purl")
    return pid if isinstance(pid, str) else None


def _products(items: Any) -> tuple[_Product, ...]:
    out = []
    for item in items or ():
        if isinstance(item, str):
            out.append(_Product(item))
        elif (pid := _product_id(item)) is not None:
            subs = (_product_id(s) for s in item.get("subcomponents") or ())
            out.append(_Product(pid, tuple(s for s in subs if s is not None)))
    return tuple(out)


def _openvex(doc: dict[str, Any], source: str) -> list[VexStatement]:
    out = []
    for st in doc.get("statements") or ():
        if not isinstance(st, dict):
            raise TriageError(f"{source}: a statement is not an object")
        ids = _ids(st.get("vulnerability"))
        status = st.get("status")
        if not ids or not isinstance(status, str):
            raise TriageError(f"{source}: a statement without a vulnerability or status")
        out.append(
            VexStatement(
                ids=frozenset(ids), products=_products(st.get("products")), status=status,
                justification=st.get("justification"),
                detail=st.get("impact_statement") or st.get("status_notes"), source=source,
            )
        )  # fmt: skip
    return out


def _cyclonedx(doc: dict[str, Any], source: str) -> list[VexStatement]:
    # ``affects[].ref`` is a bom-ref: a component's (resolved to its purl) or a purl itself.
    purls: dict[str, str] = {}
    stack = list(doc.get("components") or ())
    if isinstance((doc.get("metadata") or {}).get("component"), dict):
        stack.append(doc["metadata"]["component"])
    while stack:
        c = stack.pop()
        if isinstance(c, dict):
            if isinstance(c.get("bom-ref"), str) and isinstance(c.get("purl"), str):
                purls[c["bom-ref"]] = c["purl"]
            stack.extend(c.get("components") or ())
    out = []
    for v in doc.get("vulnerabilities") or ():
        analysis = v.get("analysis") if isinstance(v, dict) else None
        if not isinstance(analysis, dict):
            continue
        ids = {v["id"]} if isinstance(v.get("id"), str) else set()
        ids.update(r["id"] for r in v.get("references") or () if isinstance(r.get("id"), str))
        state = _CDX_STATES.get(analysis.get("state", ""))
        if not ids or state is None:
            raise TriageError(f"{source}: a vulnerability without an id or a known state")
        refs = [a.get("ref") for a in v.get("affects") or () if isinstance(a, dict)]
        products = tuple(_Product(purls.get(r, r)) for r in refs if isinstance(r, str))
        out.append(
            VexStatement(
                ids=frozenset(ids), products=products, status=state,
                justification=analysis.get("justification"), detail=analysis.get("detail"),
                source=source,
            )
        )  # fmt: skip
    return out


def load_vex(path: str | os.PathLike[str]) -> list[VexStatement]:
    """The statements of an OpenVEX or CycloneDX VEX document (JSON)."""
    source = str(path)
    try:
        doc = msgspec.json.decode(Path(path).read_bytes())
    except OSError as exc:
        raise TriageError(f"{source}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise TriageError(f"{source}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise TriageError(f"{source}: not a VEX document")
    try:
        if doc.get("bomFormat") == "CycloneDX":
            statements = _cyclonedx(doc, source)
        elif "statements" in doc or "openvex" in str(doc.get("@context", "")):
            statements = _openvex(doc, source)
        else:
            raise TriageError(f"{source}: neither OpenVEX nor CycloneDX")
    except (TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, TriageError):
            raise
        # A field of the wrong type somewhere (a number where a list belongs …).
        raise TriageError(f"{source}: not a valid VEX document ({exc})") from None
    for st in statements:
        for text in (st.justification, st.detail):
            if text is not None and not isinstance(text, str):
                raise TriageError(f"{source}: a justification or detail is not a string")
    return statements


# -- ignore rules ---------------------------------------------------------------------------


class IgnoreRule(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an ignore file."""

    #: An advisory id (or alias) or a check id.
    id: str
    #: Globs over the package's name, source name or purl; none: every package.
    packages: tuple[str, ...] = ()
    #: Globs over the image's reference, or its digest; none: every image.
    images: tuple[str, ...] = ()
    expires: date | None = None
    reason: str | None = None

    def covers_image(self, image: ImageRef | None) -> bool:
        """Whether the rule's ``images`` (if any) name this image."""
        if not self.images:
            return True
        if image is None:
            return False
        return any(
            fnmatch.fnmatchcase(image.ref, g) or g in (image.digest, image.index_digest)
            for g in self.images
        )

    def covers_package(self, pkg: Package) -> bool:
        """Whether the rule's ``packages`` (if any) name this package."""
        if not self.packages:
            return True
        names = [n for n in (pkg.name, pkg.source_name, pkg.purl) if n]
        return any(fnmatch.fnmatchcase(n, g) for g in self.packages for n in names)


class _IgnoreFile(msgspec.Struct, forbid_unknown_fields=True):
    ignore: list[IgnoreRule] = []


def load_ignore_file(
    path: str | os.PathLike[str], *, today: date | None = None
) -> list[IgnoreRule]:
    """The rules of an ignore file still in force; each expired one is a warning."""
    # Imported here: ``regsweep match`` loads this module and must start fast and silent.
    import structlog
    import yaml

    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TriageError(f"{source}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TriageError(f"{source}: not YAML ({exc})") from None
    try:
        doc = msgspec.convert(raw or {}, _IgnoreFile)
    except msgspec.ValidationError as exc:
        raise TriageError(f"{source}: {exc}") from None
    today = today or datetime.now(UTC).date()
    rules = []
    for rule in doc.ignore:
        if rule.expires is not None and rule.expires < today:
            structlog.get_logger("regsweep.matcher.triage").warning(
                "ignore_rule_expired", file=source, id=rule.id, expired=str(rule.expires)
            )
            continue
        rules.append(rule)
    return rules


# -- the triage ------------------------------------------------------------------------------


class Triage:
    """What the user set aside (see the module doc); ``show`` says whether suppressed
    findings are written (``--show-suppressed``)."""

    def __init__(
        self,
        *,
        severities: Iterable[Severity] | None = None,
        ignore_unfixed: bool = False,
        rules: Sequence[IgnoreRule] = (),
        vex: Sequence[VexStatement] = (),
        show: bool = False,
        rules_source: str | None = None,
    ) -> None:
        self.severities = frozenset(severities) if severities is not None else None
        self.ignore_unfixed = ignore_unfixed
        self.vex = [s for s in vex if s.status == "not_affected" and (s.justification or s.detail)]
        self.show = show
        self._rules_source = rules_source
        # By id: a finding looks up its own ids instead of scanning every rule.
        self._rules: dict[str, list[IgnoreRule]] = {}
        for r in rules:
            self._rules.setdefault(r.id, []).append(r)
        self._vex_ids = frozenset().union(*(s.ids for s in self.vex))

    @property
    def idle(self) -> bool:
        """Whether nothing is ever set aside by this triage (no option, rule or statement)."""
        return (
            self.severities is None and not self.ignore_unfixed and not self._rules and not self.vex
        )

    def vulnerability(
        self, image: ImageRef | None, pkg: Package, adv: Advisory
    ) -> Suppression | None:
        """Why this finding is set aside, or None when it stands."""
        ids = (adv.id, *adv.aliases)
        if self._vex_ids and not self._vex_ids.isdisjoint(ids):
            for st in self.vex:
                if st.covers(image, pkg, ids):
                    return Suppression(
                        kind="vex", reason=st.detail, justification=st.justification,
                        source=st.source,
                    )  # fmt: skip
        for i in ids:
            for rule in self._rules.get(i, ()):
                if rule.covers_image(image) and rule.covers_package(pkg):
                    return Suppression(kind="ignore", reason=rule.reason, source=self._rules_source)
        if self.ignore_unfixed and adv.status is not Status.FIXED:
            return Suppression(kind="unfixed")
        if self.severities is not None and adv.severity not in self.severities:
            return Suppression(kind="severity")
        return None

    def misconfiguration(self, record: MisconfigurationRecord) -> Suppression | None:
        """Why this configuration finding is set aside, or None when it stands."""
        for rule in self._rules.get(record.check.id, ()):
            if rule.covers_image(record.image):
                return Suppression(kind="ignore", reason=rule.reason, source=self._rules_source)
        if self.severities is not None and record.check.severity not in self.severities:
            return Suppression(kind="severity")
        return None


def suppressed_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The summary's ``suppressed`` from a tally's ``suppressed_<kind>`` counters."""
    return {
        k.removeprefix("suppressed_"): v
        for k, v in sorted(counts.items())
        if k.startswith("suppressed_") and v
    }
