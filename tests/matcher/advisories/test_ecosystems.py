"""Ecosystem strings and package names: both sides of a lookup must produce the same keys."""

from __future__ import annotations

import pytest

from regsweep.matcher.advisories.ecosystems import (
    Ecosystem,
    normalize_name,
    parse_ecosystem,
    scheme_of,
)
from regsweep.matcher.versions.interface import Scheme

# (as written, canonical ecosystem, release, scheme, variant)
KNOWN = [
    ("Debian:11", "Debian:11", "11", Scheme.DPKG, None),
    ("Debian:3.0", "Debian:3.0", "3.0", Scheme.DPKG, None),
    ("Ubuntu:22.04:LTS", "Ubuntu:22.04", "22.04", Scheme.DPKG, None),
    ("Ubuntu:25.10", "Ubuntu:25.10", "25.10", Scheme.DPKG, None),
    ("Ubuntu:Pro:16.04:LTS", "Ubuntu:16.04", "16.04", Scheme.DPKG, "pro"),
    ("Ubuntu:Pro:26.04:LTS", "Ubuntu:26.04", "26.04", Scheme.DPKG, "pro"),
    ("Ubuntu:Pro:FIPS:16.04:LTS", "Ubuntu:FIPS:16.04", "16.04", Scheme.DPKG, "fips"),
    (
        "Ubuntu:Pro:FIPS-updates:22.04:LTS",
        "Ubuntu:FIPS-updates:22.04",
        "22.04",
        Scheme.DPKG,
        "fips-updates",
    ),
    (
        "Ubuntu:Pro:22.04:LTS:Realtime:Kernel",
        "Ubuntu:Realtime:Kernel:22.04",
        "22.04",
        Scheme.DPKG,
        "realtime:kernel",
    ),
    ("Alpine:v3.11", "Alpine:v3.11", "3.11", Scheme.APK, None),
    ("Alpine:3.20", "Alpine:v3.20", "3.20", Scheme.APK, None),
    ("Alpine:edge", "Alpine:edge", "edge", Scheme.APK, None),
    ("Wolfi", "Wolfi", None, Scheme.APK, None),
    ("Chainguard", "Chainguard", None, Scheme.APK, None),
    ("Rocky Linux:9", "Rocky Linux:9", "9", Scheme.RPM, None),
    ("AlmaLinux:8", "AlmaLinux:8", "8", Scheme.RPM, None),
    (
        "Red Hat:enterprise_linux:9::appstream",
        "Red Hat:enterprise_linux:9::appstream",
        "9",
        Scheme.RPM,
        None,
    ),
    ("Red Hat:rhel_aus:8.4::appstream", "Red Hat:rhel_aus:8.4::appstream", "8.4", Scheme.RPM, None),
    (
        "SUSE:SUSE Linux Enterprise Server 15 SP5",
        "SUSE:SUSE Linux Enterprise Server 15 SP5",
        "SUSE Linux Enterprise Server 15 SP5",
        Scheme.RPM,
        None,
    ),
    ("openSUSE:Leap 15.5", "openSUSE:Leap 15.5", "Leap 15.5", Scheme.RPM, None),
    ("PyPI", "PyPI", None, Scheme.PEP440, None),
    ("npm", "npm", None, Scheme.SEMVER, None),
    ("Go", "Go", None, Scheme.SEMVER, None),
    ("crates.io", "crates.io", None, Scheme.SEMVER, None),
    ("NuGet", "NuGet", None, Scheme.SEMVER, None),
    ("Packagist", "Packagist", None, Scheme.COMPOSER, None),
    ("Maven", "Maven", None, Scheme.MAVEN, None),
    ("Maven:https://maven.google.com", "Maven", None, Scheme.MAVEN, "https://maven.google.com"),
    ("RubyGems", "RubyGems", None, Scheme.GEM, None),
    ("DHI", "DHI", None, Scheme.SEMVER, None),
    ("Docker Hardened Images", "DHI", None, Scheme.SEMVER, None),
    ("pypi", "PyPI", None, Scheme.PEP440, None),  # case-insensitive fallback
]


@pytest.mark.parametrize(("raw", "canonical", "release", "scheme", "variant"), KNOWN)
def test_known_ecosystem_maps_to_its_canonical_key(
    raw: str, canonical: str, release: str | None, scheme: Scheme, variant: str | None
) -> None:
    """Invariant: every spelling of a release maps to the one key the index is built on."""
    info = parse_ecosystem(raw)
    assert info is not None
    assert (info.ecosystem, info.release, info.scheme, info.variant) == (
        canonical,
        release,
        scheme,
        variant,
    )


def test_ubuntu_pro_folds_into_the_base_release_but_fips_does_not() -> None:
    """Invariant: a Pro (ESM) fix is a fix *for the base release* (same key), while FIPS
    builds are other packages and must never be compared with ordinary ones."""
    base = parse_ecosystem("Ubuntu:16.04:LTS")
    pro = parse_ecosystem("Ubuntu:Pro:16.04:LTS")
    fips = parse_ecosystem("Ubuntu:Pro:FIPS:16.04:LTS")
    assert base is not None and pro is not None and fips is not None
    assert base.ecosystem == pro.ecosystem
    assert fips.ecosystem != base.ecosystem


@pytest.mark.parametrize(
    "raw",
    [
        "SwiftURL",
        "Hackage",
        "Bitnami",
        "",
        "Ubuntu",
        "Ubuntu:Pro",
        "Ubuntu:LTS",
        "Alpine",
        "Red Hat",
    ],
)
def test_unknown_or_unscoped_ecosystem_is_none(raw: str) -> None:
    """Invariant: an ecosystem regsweep cannot match, or a distro string without the release
    it must have, is "unknown" (``None``): never a guess that matches every release."""
    assert parse_ecosystem(raw) is None


@pytest.mark.parametrize("family", list(Ecosystem))
def test_every_family_has_a_scheme_and_a_name_rule(family: Ecosystem) -> None:
    """Invariant: the dispatch over ``Ecosystem`` is total (no family reaches assert_never)."""
    assert isinstance(scheme_of(family), Scheme)
    assert normalize_name(family, " name ") == normalize_name(family, "name")


@pytest.mark.parametrize(
    ("family", "written", "normalised"),
    [
        # PEP 503: runs of -_. collapse to "-", lowercase.
        (Ecosystem.PYPI, "Zope.Interface__Extra", "zope-interface-extra"),
        (Ecosystem.PYPI, "Django", "django"),
        (Ecosystem.PYPI, "backports.ssl_match_hostname", "backports-ssl-match-hostname"),
        # Case-insensitive registries fold case.
        (Ecosystem.NUGET, "Newtonsoft.Json", "newtonsoft.json"),
        (Ecosystem.PACKAGIST, "Contao/Core-Bundle", "contao/core-bundle"),
        # Maven: group:artifact, spaces around the colon removed, case kept.
        (
            Ecosystem.MAVEN,
            "org.apache.logging.log4j : log4j-core",
            "org.apache.logging.log4j:log4j-core",
        ),
        (Ecosystem.MAVEN, "com.FasterXML:Jackson", "com.FasterXML:Jackson"),
        # Case-sensitive ecosystems keep the name as written.
        (Ecosystem.NPM, "JSONStream", "JSONStream"),
        (Ecosystem.NPM, "@babel/core", "@babel/core"),
        (Ecosystem.GO, "github.com/Sirupsen/logrus", "github.com/Sirupsen/logrus"),
        (Ecosystem.CRATES_IO, "tokio_util", "tokio_util"),
        (Ecosystem.RUBYGEMS, "ActiveRecord", "ActiveRecord"),
        (Ecosystem.DEBIAN, "firefox-esr", "firefox-esr"),
        (Ecosystem.ALPINE, "py3-pip", "py3-pip"),
    ],
)
def test_package_names_fold_only_where_the_ecosystem_does(
    family: Ecosystem, written: str, normalised: str
) -> None:
    """Invariant: names fold exactly as the ecosystem treats them as equal; a case-sensitive
    ecosystem keeps case, or two distinct packages would share advisories."""
    assert normalize_name(family, written) == normalised
