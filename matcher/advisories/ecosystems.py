"""Advisory ecosystems: OSV ecosystem strings → (canonical ecosystem, release, version scheme).

The set of ecosystem *families* regsweep can match is closed (``Ecosystem``); any other
ecosystem string is not an error but "unknown": ``parse_ecosystem`` returns ``None`` and the
ingest counts it. Canonical strings are what the index is keyed by and what the inventory
side produces for an installed package, so both sides must agree on them.

Examples (as written → canonical, release, variant)::

    Debian:11                               Debian:11                  11
    Ubuntu:22.04:LTS                        Ubuntu:22.04               22.04
    Ubuntu:Pro:16.04:LTS                    Ubuntu:16.04               16.04   pro
    Ubuntu:Pro:FIPS-updates:20.04:LTS       Ubuntu:FIPS-updates:20.04  20.04   fips-updates
    Alpine:v3.11  (or Alpine:3.11)          Alpine:v3.11               3.11
    Red Hat:enterprise_linux:9::appstream   (as written)               9
    Maven:https://maven.google.com          Maven                      -       the URL
    PyPI, npm, Go, crates.io, Wolfi …       (as written)               -

Why Ubuntu Pro folds into the base release: a fix that ships only through Ubuntu Pro (ESM:
a release past standard support, or a universe package of an LTS release) is published under
``Ubuntu:Pro:<release>`` with no entry for that package under the plain ecosystem (see the
``ubuntu-samples``: netty on 24.04, wayland on 16.04). Keying Pro separately would make an
image without Pro look clean when it is vulnerable and its only fix is in ESM; the samples
never carry both a plain and a Pro entry for one package and release, so folding loses nothing.
FIPS, Realtime and other Pro product lines ship *different* package builds
(``1.0.2g-1ubuntu4.fips.4.6.3``), whose fixed versions would flag the ordinary builds as
vulnerable, so they keep their own canonical ecosystem that only a matching image queries.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable
from typing import assert_never

import msgspec

from regsweep.matcher.versions.interface import Scheme

__all__ = [
    "Ecosystem",
    "EcosystemInfo",
    "normalize_name",
    "normalize_version",
    "parse_ecosystem",
    "scheme_of",
]


class Ecosystem(enum.StrEnum):
    """Ecosystem families regsweep knows how to match; values are OSV's names."""

    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    WOLFI = "Wolfi"
    CHAINGUARD = "Chainguard"
    ROCKY = "Rocky Linux"
    ALMA = "AlmaLinux"
    REDHAT = "Red Hat"
    SUSE = "SUSE"
    OPENSUSE = "openSUSE"
    PYPI = "PyPI"
    NPM = "npm"
    GO = "Go"
    CRATES_IO = "crates.io"
    NUGET = "NuGet"
    MAVEN = "Maven"
    RUBYGEMS = "RubyGems"
    PACKAGIST = "Packagist"
    #: Docker Hardened Images components (``DHI``; OSV's newer name is "Docker Hardened
    #: Images"). Its records use SEMVER ranges over upstream component versions.
    DHI = "DHI"


class EcosystemInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What an OSV ecosystem string means for matching."""

    family: Ecosystem
    #: The canonical ecosystem string the index is keyed by.
    ecosystem: str
    release: str | None
    scheme: Scheme
    variant: str | None = None


@functools.cache
def scheme_of(family: Ecosystem) -> Scheme:
    """The version scheme an ecosystem's ranges are compared in.

    Packagist has its own scheme, ``COMPOSER``: Composer normalizes a version (``v`` prefix
    dropped, padded to four numbers) and orders it with PHP's ``version_compare`` (``dev <
    alpha < beta < RC < release < patch``, case-insensitive). SemVer gets Composer's
    suffixes wrong: ``2.4.6-p3`` (a Magento patch release) is *after* ``2.4.6``, and
    ``6.3.0-beta1 < 6.3.0-RC1`` whatever the case (SemVer compares ASCII: ``RC1 < beta1``).
    """
    match family:
        case Ecosystem.DEBIAN | Ecosystem.UBUNTU:
            return Scheme.DPKG
        case Ecosystem.ALPINE | Ecosystem.WOLFI | Ecosystem.CHAINGUARD:
            return Scheme.APK
        case (
            Ecosystem.ROCKY
            | Ecosystem.ALMA
            | Ecosystem.REDHAT
            | Ecosystem.SUSE
            | Ecosystem.OPENSUSE
        ):
            return Scheme.RPM
        case Ecosystem.PYPI:
            return Scheme.PEP440
        case Ecosystem.NPM | Ecosystem.GO | Ecosystem.CRATES_IO | Ecosystem.NUGET | Ecosystem.DHI:
            return Scheme.SEMVER
        case Ecosystem.PACKAGIST:
            return Scheme.COMPOSER
        case Ecosystem.MAVEN:
            return Scheme.MAVEN
        case Ecosystem.RUBYGEMS:
            return Scheme.GEM
        case _:
            assert_never(family)


_PEP503 = re.compile(r"[-_.]+")


def _pep503(name: str) -> str:
    # PEP 503: runs of ``-_.`` are one ``-``, case-insensitive ("Django", "zope.interface").
    return _PEP503.sub("-", name).lower()


def _maven(name: str) -> str:
    # ``groupId:artifactId``, case-sensitive; stray spaces around the colon occur.
    group, sep, artifact = name.partition(":")
    return f"{group.strip()}:{artifact.strip()}" if sep else name


def _as_written(name: str) -> str:
    return name


#: How each family compares names (a table, not a ``match``: the matcher calls this for every
#: distinct package, and matching enum members case by case costs microseconds).
_NAME_RULES: dict[Ecosystem, Callable[[str], str]] = {
    Ecosystem.PYPI: _pep503,
    # NuGet ids are case-insensitive (GHSA writes ``Microsoft.NetCore.App…``, a
    # ``.deps.json`` may not); Composer names are lowercase since Composer 2, and Packagist
    # resolves older mixed-case names case-insensitively.
    Ecosystem.NUGET: str.lower,
    Ecosystem.PACKAGIST: str.lower,
    Ecosystem.MAVEN: _maven,
    # As written. npm: legacy packages have upper case and are distinct from their
    # lowercase namesakes ("JSONStream"); Go: module paths are case-sensitive
    # (github.com/Sirupsen/logrus vs sirupsen); crates.io and RubyGems: lock files carry the
    # published spelling, which is what advisories use.
    Ecosystem.NPM: _as_written,
    Ecosystem.GO: _as_written,
    Ecosystem.CRATES_IO: _as_written,
    Ecosystem.RUBYGEMS: _as_written,
    Ecosystem.DHI: _as_written,
    # Distro source package names are already canonical (lowercase by policy).
    Ecosystem.DEBIAN: _as_written,
    Ecosystem.UBUNTU: _as_written,
    Ecosystem.ALPINE: _as_written,
    Ecosystem.WOLFI: _as_written,
    Ecosystem.CHAINGUARD: _as_written,
    Ecosystem.ROCKY: _as_written,
    Ecosystem.ALMA: _as_written,
    Ecosystem.REDHAT: _as_written,
    Ecosystem.SUSE: _as_written,
    Ecosystem.OPENSUSE: _as_written,
}
assert set(_NAME_RULES) == set(Ecosystem), "every family needs a name rule"


def name_normalizer(family: Ecosystem) -> Callable[[str], str]:
    """``normalize_name`` for one family, as a function of the name alone (for hot loops)."""
    rule = _NAME_RULES[family]
    if rule is _as_written:
        return str.strip
    return lambda name: rule(name.strip())


def normalize_name(family: Ecosystem, name: str) -> str:
    """Normalise a package name the way the ecosystem compares names.

    The inventory side calls this too, so an installed package and an advisory meet on the
    same string. Only where the ecosystem itself treats two spellings as one package are
    they folded; a case-sensitive ecosystem keeps its case, or two distinct packages would
    merge.
    """
    return _NAME_RULES[family](name.strip())


# Exact OSV spellings first; a case-insensitive fallback accepts "pypi", "NPM", "Crates.io".
_FAMILIES: dict[str, Ecosystem] = {e.value: e for e in Ecosystem}
_FAMILIES["Docker Hardened Images"] = Ecosystem.DHI
_FAMILIES_FOLDED: dict[str, Ecosystem] = {k.casefold(): v for k, v in _FAMILIES.items()}

_UBUNTU_RELEASE = re.compile(r"\d{2}\.\d{2}")
_ALPINE_RELEASE = re.compile(r"v?(\d+\.\d+)")


def normalize_version(family: Ecosystem, version: str) -> str:
    """The spelling of ``version`` that the ecosystem's scheme orders as the ecosystem does.

    NuGet compares pre-release labels case-insensitively while the semver scheme (SemVer
    2.0) is case-sensitive, so NuGet versions are lower-cased — on the advisory side at index
    build and on the package side at match time, so the two always meet.
    """
    return version.lower() if family is Ecosystem.NUGET else version


@functools.lru_cache(maxsize=4096)
def parse_ecosystem(raw: str) -> EcosystemInfo | None:
    """Map an OSV ecosystem string onto a known family, or ``None`` when it is unknown.

    Malformed strings of a known family (``Ubuntu:Pro`` with no release) are unknown too:
    a distro advisory that cannot be scoped to a release must not match every release.
    Cached: a feed repeats a handful of ecosystem strings tens of thousands of times, and
    the result is an immutable Struct.
    """
    raw = raw.strip()
    head, sep, rest = raw.partition(":")
    family = _FAMILIES.get(head) or _FAMILIES_FOLDED.get(head.casefold())
    if family is None:
        return None
    suffix = rest.strip() if sep else ""
    scheme = scheme_of(family)
    match family:
        case Ecosystem.UBUNTU:
            return _parse_ubuntu(suffix, scheme)
        case Ecosystem.ALPINE:
            if not suffix:
                return None
            m = _ALPINE_RELEASE.fullmatch(suffix)
            if m:
                # The ``v`` is mandatory in OSV; some producers omit it.
                release = m.group(1)
                return EcosystemInfo(
                    family=family, ecosystem=f"Alpine:v{release}", release=release, scheme=scheme
                )
            # ``edge`` and other named branches are kept as written.
            return EcosystemInfo(
                family=family, ecosystem=f"Alpine:{suffix}", release=suffix, scheme=scheme
            )
        case (
            Ecosystem.DEBIAN
            | Ecosystem.ROCKY
            | Ecosystem.ALMA
            | Ecosystem.SUSE
            | Ecosystem.OPENSUSE
        ):
            # ``<family>:<release>`` (SUSE's release is a PRETTY_NAME, spaces and all). A
            # bare family name is accepted with no release: the index decides what that means.
            return EcosystemInfo(
                family=family,
                ecosystem=f"{family.value}:{suffix}" if suffix else family.value,
                release=suffix or None,
                scheme=scheme,
            )
        case Ecosystem.REDHAT:
            # ``Red Hat:<CPE without cpe:/[oa]:redhat:>``; the product stream stays in the key
            # (appstream vs baseos, EUS, AUS), the release is the CPE's version field.
            if not suffix:
                return None
            parts = suffix.split(":")
            release = parts[1] if len(parts) > 1 and parts[1] else None
            return EcosystemInfo(
                family=family, ecosystem=f"Red Hat:{suffix}", release=release, scheme=scheme
            )
        case Ecosystem.MAVEN:
            # ``Maven:<repository URL>``: a package is the same package whichever repository
            # served it, and an inventory rarely knows which did.
            return EcosystemInfo(
                family=family,
                ecosystem=family.value,
                release=None,
                scheme=scheme,
                variant=suffix or None,
            )
        case (
            Ecosystem.WOLFI
            | Ecosystem.CHAINGUARD
            | Ecosystem.PYPI
            | Ecosystem.NPM
            | Ecosystem.GO
            | Ecosystem.CRATES_IO
            | Ecosystem.NUGET
            | Ecosystem.RUBYGEMS
            | Ecosystem.PACKAGIST
            | Ecosystem.DHI
        ):
            # Rolling distros and language registries have no releases; a suffix would be a
            # producer's invention, so it is kept as a variant rather than trusted as a key.
            return EcosystemInfo(
                family=family,
                ecosystem=family.value,
                release=None,
                scheme=scheme,
                variant=suffix or None,
            )
        case _:
            assert_never(family)


def _parse_ubuntu(suffix: str, scheme: Scheme) -> EcosystemInfo | None:
    # Forms seen: 22.04:LTS, 25.10, Pro:16.04:LTS, Pro:FIPS:18.04:LTS,
    # Pro:FIPS-updates:22.04:LTS, Pro:22.04:LTS:Realtime:Kernel, 22.04:LTS:NVIDIA:BlueField.
    release: str | None = None
    pro = False
    qualifiers: list[str] = []
    for token in (t.strip() for t in suffix.split(":")):
        if not token or token == "LTS":
            continue
        if token == "Pro":
            pro = True
        elif release is None and _UBUNTU_RELEASE.fullmatch(token):
            release = token
        else:
            qualifiers.append(token)
    if release is None:
        return None
    if not qualifiers:
        return EcosystemInfo(
            family=Ecosystem.UBUNTU,
            ecosystem=f"Ubuntu:{release}",
            release=release,
            scheme=scheme,
            variant="pro" if pro else None,
        )
    qualifier = ":".join(qualifiers)
    return EcosystemInfo(
        family=Ecosystem.UBUNTU,
        ecosystem=f"Ubuntu:{qualifier}:{release}",
        release=release,
        scheme=scheme,
        variant=qualifier.lower(),
    )
