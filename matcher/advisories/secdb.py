"""Alpine-style secdb (``secfixes``) → ``Advisory``: Alpine, Wolfi and Chainguard.

Three shapes of one format are read:

- a repository document, YAML (the old alpine-secdb ``v3.x/main.yaml``) or JSON
  (``secdb.alpinelinux.org/v3.x/main.json``, Wolfi's and Chainguard's ``security.json``):
  ``{"distroversion"?, "reponame", "urlprefix", "packages": [{"pkg": {"name", "secfixes"}}]}``;
- a per-package JSON (Trivy's vuln-list split of the above): ``{"name", "secfixes", …}``.

``secfixes`` maps a fixed version to the vulnerability ids it fixes. Each (release, package,
id) becomes one advisory with the id ``<ecosystem>/<package>/<vuln id>`` —
``Alpine:v3.11/openssl/CVE-2019-1543``, ``Wolfi/curl/CVE-2023-38545`` — unique across
releases and packages (which the bare CVE id is not: one CVE is fixed in many packages and
releases), readable, and splittable on ``/`` since neither apk package names nor the
canonical ecosystem contain one. The vulnerability id itself is the first alias.

The fixed version ``0`` means "this package was never affected" (a false positive the vendor
ruled out): it becomes ``Status.NOT_AFFECTED`` with no range, never a vulnerable interval.
A real fixed version becomes the range ``[introduced 0, fixed V)``. An id listed under
several fixed versions (a fix backported to an older branch: wireshark 2.2.10-r0 and
2.4.2-r0) gets one range per version, a union: vulnerable below the newest fix. Within one
release only the newest branch is shipped, so this is exact there, and conservative between
branches.

A fixed version that the apk scheme cannot order (a misspelling such as ``4.8.0.-r1`` or
``2.7.16-33``: see ``versions.pure.apk``) is refused here rather than left to the index,
which could only count it: each one is listed in ``IngestStats.refused_versions`` with the
advisory and package it belonged to, its range is dropped, and an advisory left with no
range is skipped as ``BAD_VERSION``. It is never read as "not affected", even when the
same id is also listed under ``0``: that would assert what the feed does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from regsweep.matcher import versions
from regsweep.matcher.advisories.ecosystems import (
    Ecosystem,
    EcosystemInfo,
    normalize_name,
    normalize_version,
    parse_ecosystem,
)
from regsweep.matcher.advisories.model import (
    Advisory,
    Affected,
    Event,
    EventKind,
    Range,
    RangeType,
    Status,
)
from regsweep.matcher.advisories.stats import IngestStats, Note, RecordError, SkipReason
from regsweep.matcher.versions import InvalidVersion

__all__ = ["distribution_of", "is_secdb", "read_document", "vulnerability_ids"]

#: The secfixes "fixed version" that means "not affected".
NOT_AFFECTED_VERSION = "0"

_CVE = re.compile(r"CVE[-_ ]?(\d{4})[-_ ](\d{4,})", re.IGNORECASE)
_CANONICAL_CVE = re.compile(r"CVE-\d{4}-\d{4,}")
# Other vendor ids seen in secfixes: XSA-200, ALPINE-13661, ZBX-11023, TALOS-2017-0488,
# wnpa-sec-2017-18, GHSA-xxxx-xxxx-xxxx.
_OTHER_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+")
_ALPINE_PATH_RELEASE = re.compile(r"v?(\d+\.\d+)")


def is_secdb(doc: object) -> bool:
    """Whether a parsed document has the shape of a secdb repository or package file."""
    return isinstance(doc, Mapping) and ("packages" in doc or "secfixes" in doc)


def vulnerability_ids(text: str) -> tuple[list[str], bool]:
    """The ids in one secfixes line, primary first, and whether any had to be normalised.

    ``"CVE-2016-9932 XSA-200"`` → ``(["CVE-2016-9932", "XSA-200"], False)``;
    ``"CVE_2019-2426"`` → ``(["CVE-2019-2426"], True)``;
    ``"CVE-????-?????  XSA-295"`` (a placeholder) → ``(["XSA-295"], True)``.
    """
    ids = [f"CVE-{m.group(1)}-{m.group(2)}" for m in _CVE.finditer(text)]
    normalised = False
    for token in text.split():
        token = token.strip("(),;:")
        if token.upper().startswith("CVE"):
            if not _CANONICAL_CVE.fullmatch(token):
                # CVE_2019-2426, CVE-2017-17434-1, a "CVE-????" placeholder, "CVE 2018-…"
                normalised = True
            continue
        if _OTHER_ID.fullmatch(token):
            ids.append(token)
    return list(dict.fromkeys(ids)), normalised


def distribution_of(doc: Mapping[str, Any], location: str) -> EcosystemInfo | None:
    """Which distribution (and Alpine release) a secdb document belongs to.

    The file's own ``distroversion`` decides for Alpine; Wolfi and Chainguard documents have
    none and are told apart by their package URL (``packages.wolfi.dev``, ``*.cgr.dev``) or
    repository name. The path is the last resort, and only its end is trusted (the file and
    the directory above it for Wolfi/Chainguard, the nearest three directories for an
    Alpine release such as ``…/v3.11/main.yaml`` or ``…/3.22/main/zlib.json``): a checkout
    under ``~/wolfi-work/`` must not make Alpine data Wolfi's.
    """
    distroversion = doc.get("distroversion")
    if isinstance(distroversion, str) and distroversion.strip():
        return parse_ecosystem(f"Alpine:{distroversion.strip()}")
    hints = " ".join(str(doc.get(k) or "").lower() for k in ("urlprefix", "reponame", "apkurl"))
    family = _rolling_family(hints)
    if family is not None:
        return parse_ecosystem(family.value)
    # ``archive.zip!dir/file.json``: the member path is part of where the file lives.
    parts = PurePath(location.replace("!", "/")).parts
    family = _rolling_family(" ".join(parts[-2:]).lower())
    if family is not None:
        return parse_ecosystem(family.value)
    for part in reversed(parts[-4:-1]):
        m = _ALPINE_PATH_RELEASE.fullmatch(part)
        if m:
            return parse_ecosystem(f"Alpine:v{m.group(1)}")
    return None


def _rolling_family(text: str) -> Ecosystem | None:
    if "wolfi" in text:
        return Ecosystem.WOLFI
    if "chainguard" in text or "cgr.dev" in text:
        return Ecosystem.CHAINGUARD
    return None


def read_document(doc: Any, location: str, stats: IngestStats) -> list[Advisory]:
    """Read one parsed secdb document into advisories; bad entries are counted and skipped."""
    if not is_secdb(doc):
        stats.skip(SkipReason.UNSUPPORTED_FORMAT, location, "not a secdb document")
        return []
    info = distribution_of(doc, location)
    if info is None:
        stats.skip(
            SkipReason.UNKNOWN_DISTRIBUTION,
            location,
            "no distroversion, and neither the URL nor the path names Alpine, Wolfi or Chainguard",
        )
        return []
    if "secfixes" in doc and "packages" not in doc:
        # The per-package split: the document *is* the package.
        packages: Any = [{"pkg": doc}]
    else:
        packages = doc.get("packages") or []
    if not isinstance(packages, list):
        stats.skip(SkipReason.BAD_SECFIX, location, "'packages' is not a list")
        return []
    out: list[Advisory] = []
    for index, entry in enumerate(packages):
        pkg = entry.get("pkg") if isinstance(entry, Mapping) else None
        where = f"{location} (packages[{index}])"
        try:
            out.extend(_package(pkg, info, where, stats))
        except RecordError as exc:
            stats.skip(exc.reason, where, exc.detail)
    return out


def _package(pkg: object, info: EcosystemInfo, location: str, stats: IngestStats) -> list[Advisory]:
    if not isinstance(pkg, Mapping):
        raise RecordError(SkipReason.BAD_SECFIX, "entry has no 'pkg' object")
    name = pkg.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordError(SkipReason.BAD_SECFIX, "package without a name")
    name = name.strip()
    secfixes = pkg.get("secfixes")
    if secfixes is None:
        return []  # a package with no security fixes recorded yet
    if not isinstance(secfixes, Mapping):
        raise RecordError(SkipReason.BAD_SECFIX, f"{name}: 'secfixes' is not a mapping")

    # id → (fixed versions in file order, listed under "0", aliases); grouped first because
    # one id may appear under several versions, and the advisory is per id.
    fixed: dict[str, list[str]] = {}
    not_affected: set[str] = set()
    aliases: dict[str, list[str]] = {}
    for version, lines in secfixes.items():
        version = str(version).strip()
        where = f"{location} {name} {version!r}"
        if not version:
            stats.skip(SkipReason.BAD_SECFIX, where, "empty fixed version")
            continue
        if not isinstance(lines, list):
            stats.skip(SkipReason.BAD_SECFIX, where, "fixed version lists no ids")
            continue
        for line in lines:
            ids, normalised = vulnerability_ids(str(line)) if line is not None else ([], False)
            if normalised:
                stats.note(Note.SECFIX_ID_NORMALISED)
            if not ids:
                stats.skip(SkipReason.BAD_SECFIX, where, f"no vulnerability id in {line!r}")
                continue
            primary = ids[0]
            aliases.setdefault(primary, [])
            aliases[primary].extend(i for i in ids[1:] if i not in aliases[primary])
            if version == NOT_AFFECTED_VERSION:
                not_affected.add(primary)
            else:
                in_file_order = fixed.setdefault(primary, [])
                if version not in in_file_order:
                    in_file_order.append(version)

    package = normalize_name(info.family, name)
    source = f"secdb:{info.family.value}"
    # version → the scheme's objection, or None when it orders: a version string is shared
    # by every id fixed in it, and is checked once.
    objections: dict[str, str | None] = {}
    out: list[Advisory] = []
    for vuln_id in aliases:
        advisory_id = f"{info.ecosystem}/{package}/{vuln_id}"
        listed = fixed.get(vuln_id, [])
        good: list[str] = []
        for v in listed:
            if v not in objections:
                objections[v] = _objection(info, v)
            reason = objections[v]
            if reason is None:
                good.append(v)
            else:
                stats.refuse_version(
                    advisory=advisory_id, package=name, version=v, location=location, reason=reason
                )
        if listed and not good:
            # Not "not affected" either, even if also listed under "0" (see the docstring).
            stats.skip(
                SkipReason.BAD_VERSION,
                location,
                f"{advisory_id}: no fixed version the {info.scheme.value} scheme can order",
            )
            continue
        if good:
            if vuln_id in not_affected:
                # Contradictory: believe the fix (a false "not affected" hides a real hole).
                stats.note(Note.SECFIX_CONFLICT)
            ranges = [
                Range(
                    type=RangeType.ECOSYSTEM,
                    events=[
                        Event(kind=EventKind.INTRODUCED, version="0"),
                        Event(kind=EventKind.FIXED, version=v),
                    ],
                )
                for v in good
            ]
            status = Status.FIXED
        else:
            ranges = []
            status = Status.NOT_AFFECTED
        affected = Affected(
            ecosystem=info.ecosystem,
            family=info.family,
            release=info.release,
            scheme=info.scheme,
            package=package,
            ranges=ranges,
            status=status,
            package_as_written=name,
            ecosystem_as_written=info.ecosystem,
        )
        out.append(
            Advisory(
                id=advisory_id,
                source=source,
                aliases=[vuln_id, *aliases[vuln_id]],
                affected=[affected],
            )
        )
    return out


def _objection(info: EcosystemInfo, version: str) -> str | None:
    """Why ``info``'s version scheme cannot order ``version`` (keyed as the index keys it),
    or None when it can."""
    try:
        versions.module(info.scheme).key(normalize_version(info.family, version))
    except InvalidVersion as exc:
        return exc.reason
    return None
