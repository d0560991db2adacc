"""``sbom:FILE``: the packages a CycloneDX or SPDX JSON SBOM lists, to be matched without an
image (as Grype does with an SBOM).

A component (CycloneDX) or package (SPDX) is taken when it has a package URL; its purl
says its type, name and version, and for an OS package its distribution (the ``distro``
qualifier, ``debian-12`` or ``alpine-3.19.1`` as Syft and regsweep write it), else the
SBOM's operating-system component names it. A component without a purl, or of a type the
matcher does not know, is counted in a note, never guessed at.

A CycloneDX BOM that regsweep wrote (``--format cyclonedx``) reads back to the same
packages: each ``container`` component is an image (its ``regsweep:image:*`` properties
give the reference, digest and platform; its ``operating-system`` child the OS) and the
``regsweep:package:*`` properties restore what a purl cannot carry (source package, owner,
the exact ecosystem). Anything else is one "image": the SBOM itself.

There is no image config: the configuration checks that need one do not run (``judge``
runs those on packages and OS only).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import msgspec

from regsweep.crawler.analyzers.os import os_ecosystem
from regsweep.crawler.oci import MalformedManifest, NotFound
from regsweep.matcher.facts import ImageFacts, Problem
from regsweep.matcher.records import ImageRef, OsInfo, Package

__all__ = ["MAX_SBOM_BYTES", "read_sbom"]

#: An SBOM is read whole: a large one (a fleet's, 100k components) is tens of MB.
MAX_SBOM_BYTES: Final = 256 * 1024 * 1024

#: purl type → (package type, ecosystem); OS types get their ecosystem from the distro.
_TYPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "pypi": ("pypi", "PyPI"),
    "npm": ("npm", "npm"),
    "maven": ("maven", "Maven"),
    "golang": ("go", "Go"),
    "cargo": ("cargo", "crates.io"),
    "gem": ("gem", "RubyGems"),
    "composer": ("composer", "Packagist"),
    "nuget": ("nuget", "NuGet"),
    "deb": ("deb", None),
    "apk": ("apk", None),
    "rpm": ("rpm", None),
}


class _Purl(msgspec.Struct, frozen=True, gc=False):
    type: str
    namespace: str
    name: str
    version: str
    qualifiers: dict[str, str]


def _parse_purl(text: str) -> _Purl | None:
    if not text.startswith("pkg:"):
        return None
    body = text[4:].lstrip("/").split("#", 1)[0]
    body, _, query = body.partition("?")
    path, _, version = body.rpartition("@") if "@" in body.rsplit("/", 1)[-1] else (body, "", "")
    parts = [unquote(p) for p in path.split("/")]
    if len(parts) < 2 or not parts[-1] or not version:
        return None
    qualifiers = {}
    for pair in query.split("&") if query else ():
        k, _, v = pair.partition("=")
        qualifiers[k.lower()] = unquote(v)
    return _Purl(parts[0].lower(), "/".join(parts[1:-1]), parts[-1], unquote(version), qualifiers)


def _name(p: _Purl) -> str:
    # As the analyzers name packages: Maven "group:artifact", the others by their path.
    if p.type == "maven" and p.namespace:
        return f"{p.namespace}:{p.name}"
    if p.type in ("golang", "npm", "composer") and p.namespace:
        return f"{p.namespace}/{p.name}"
    return p.name


def _distro_ecosystem(distro: str | None) -> str | None:
    # ``debian-12``, ``alpine-3.19.1``, ``rhel-9.3``: os-release ID and VERSION_ID.
    if not distro:
        return None
    family, _, version = distro.partition("-")
    return os_ecosystem(family.lower(), version or None)


def _package(
    purl_text: str, props: Mapping[str, str], os_eco: str | None, notes: dict[str, int]
) -> Package | None:
    p = _parse_purl(purl_text)
    if p is None:
        notes["purl not understood"] = notes.get("purl not understood", 0) + 1
        return None
    known = _TYPES.get(p.type)
    if known is None:
        notes[f"{p.type} packages"] = notes.get(f"{p.type} packages", 0) + 1
        return None
    typ, ecosystem = known
    version = p.version
    if typ == "rpm" and p.qualifiers.get("epoch"):
        version = f"{p.qualifiers['epoch']}:{version}"
    if ecosystem is None:
        ecosystem = _distro_ecosystem(p.qualifiers.get("distro")) or os_eco
    source_name = source_version = None
    upstream = p.qualifiers.get("upstream")
    if upstream and typ in ("deb", "apk"):
        # Syft: ``upstream=openssl`` or ``upstream=glibc@2.36-9``.
        source_name, _, source_version = upstream.partition("@")
    root = props.get("package:root") == "true"
    return Package(
        name=_name(p),
        version=version,
        type=typ,
        # A project's own root is listed, never matched (see ``Package.root``).
        ecosystem=None if root else props.get("package:ecosystem") or ecosystem,
        root=root,
        source_name=props.get("package:source_name") or source_name or None,
        source_version=props.get("package:source_version") or source_version or None,
        purl=purl_text,
        path=props.get("package:path"),
        owner=props.get("package:owner"),
    )


def _props(component: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for prop in component.get("properties") or ():
        if isinstance(prop, dict) and isinstance(prop.get("name"), str):
            name = prop["name"].removeprefix("regsweep:")
            out[name] = str(prop.get("value", ""))
    return out


def _os_of(components: list[Any]) -> tuple[OsInfo | None, str | None]:
    for c in components:
        if isinstance(c, dict) and c.get("type") == "operating-system" and c.get("name"):
            family = str(c["name"]).lower()
            version = str(c["version"]) if c.get("version") else None
            return OsInfo(family=family, version=version), os_ecosystem(family, version)
    return None, None


def _image(ref: str, props: Mapping[str, str]) -> ImageRef:
    return ImageRef(
        ref=props.get("image:ref", ref),
        registry=props.get("image:registry"),
        repository=None,
        digest=props.get("image:digest"),
        index_digest=props.get("image:index_digest"),
        platform=props.get("image:platform"),
    )


def _facts(
    image: ImageRef, components: list[Any], os: OsInfo | None, os_eco: str | None
) -> ImageFacts:
    notes: dict[str, int] = {}
    packages = []
    for c in _walk(components):
        purl = c.get("purl")
        if c.get("type") in ("operating-system", "container"):
            continue
        if not isinstance(purl, str):
            notes["components without a purl"] = notes.get("components without a purl", 0) + 1
            continue
        pkg = _package(purl, _props(c), os_eco, notes)
        if pkg is not None:
            packages.append(pkg)
    facts = ImageFacts(image=image, config=b"", layers=0, size=0, packages=packages, os=os)
    facts.ecosystem = os_eco
    for what, n in notes.items():
        facts.problems.append(
            Problem(stage="analyzer", error="sbom_note", message=f"{n} {what} not matched")
        )
    return facts


def _walk(components: list[Any]) -> Iterator[dict[str, Any]]:
    stack = list(reversed(components))
    while stack:
        c = stack.pop()
        if not isinstance(c, dict):
            continue
        yield c
        if c.get("type") != "container":  # a nested image is its own
            stack.extend(reversed(c.get("components") or ()))


def _cyclonedx(ref: str, doc: dict[str, Any]) -> list[ImageFacts]:
    components = [c for c in doc.get("components") or () if isinstance(c, dict)]
    os, os_eco = _os_of(components)
    out = []
    for c in components:
        if c.get("type") == "container":
            inner = [x for x in c.get("components") or () if isinstance(x, dict)]
            c_os, c_eco = _os_of(inner)
            out.append(_facts(_image(ref, _props(c)), inner, c_os or os, c_eco or os_eco))
    rest = [c for c in components if c.get("type") != "container"]
    if rest or not out:
        out.append(_facts(ImageRef(ref=ref), rest, os, os_eco))
    return out


def _spdx(ref: str, doc: dict[str, Any]) -> list[ImageFacts]:
    components: list[Any] = []
    for pkg in doc.get("packages") or ():
        if not isinstance(pkg, dict):
            continue
        if pkg.get("primaryPackagePurpose") == "OPERATING-SYSTEM":
            components.append(
                {"type": "operating-system", "name": pkg.get("name"),
                 "version": pkg.get("versionInfo")}
            )  # fmt: skip
            continue
        purls = [
            r.get("referenceLocator")
            for r in pkg.get("externalRefs") or ()
            if isinstance(r, dict) and r.get("referenceType") == "purl"
        ]
        components.append({"type": "library", "purl": purls[0] if purls else None})
    os, os_eco = _os_of(components)
    return [_facts(ImageRef(ref=ref), components, os, os_eco)]


def read_sbom(ref: str, path: str) -> list[ImageFacts]:
    """The packages of the SBOM at ``path`` (``ref`` is what the user wrote), one
    ``ImageFacts`` per image it describes; ``NotFound`` or ``MalformedManifest`` when it
    cannot be read as CycloneDX or SPDX JSON."""
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_SBOM_BYTES + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound(f"{ref}: no such file") from None
    if len(raw) > MAX_SBOM_BYTES:
        raise MalformedManifest(f"{ref}: over {MAX_SBOM_BYTES} bytes")
    try:
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise MalformedManifest(f"{ref}: not JSON ({exc})") from None
    try:
        if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
            return _cyclonedx(ref, doc)
        if isinstance(doc, dict) and str(doc.get("spdxVersion", "")).startswith("SPDX-"):
            return _spdx(ref, doc)
    except (TypeError, AttributeError, ValueError) as exc:
        # A field of the wrong type somewhere (a number where a list belongs …).
        raise MalformedManifest(f"{ref}: not a valid SBOM ({exc})") from None
    raise MalformedManifest(f"{ref}: neither a CycloneDX nor an SPDX JSON document")
