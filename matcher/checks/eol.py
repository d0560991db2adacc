"""End-of-life judgement of an image's operating system, from a bundled table.

``data/eol.json`` lists, per distribution, its release and end-of-support dates (sources
and the support phase counted are in the file's ``_about``): Debian (security + LTS),
Ubuntu (standard support: ESM / Ubuntu Pro is a paid extension and not counted), Alpine,
RHEL and UBI (end of Maintenance Support), CentOS Linux, Rocky, AlmaLinux, Amazon Linux,
Fedora, SLES (general support per service pack), openSUSE Leap, and the rolling
Wolfi, Chainguard and openSUSE Tumbleweed (never end of life).

The ``eol`` date is the last supported day: an OS is past end of life from the next day on.
A version the table does not list gives ``eol = None`` (unknown), never a guess; a listed
release with no announced end (Debian testing's next number) gives ``eol = False``.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import date
from importlib import resources
from typing import assert_never

import msgspec

from regsweep.matcher.records import OsInfo

__all__ = ["Distro", "EolTable", "Release", "Scheme", "Verdict", "judge", "load_table"]


class Scheme(enum.StrEnum):
    """Which part of an OS version names its release in the table."""

    #: ``11``, ``9.4`` → ``9`` (Debian, RHEL and clones, Fedora).
    MAJOR = "major"
    #: ``22.04``, ``3.19.1`` → ``3.19``, ``15`` stays ``15`` (Ubuntu, Alpine, SLES, Leap).
    MAJOR_MINOR = "major.minor"
    #: ``2018.03`` as listed, else the major (Amazon Linux: ``2``, ``2023``, AL1 ``2018.03``).
    MAJOR_MINOR_OR_MAJOR = "major.minor|major"
    #: No releases: never end of life.
    ROLLING = "rolling"


class Release(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One release of a distribution."""

    released: date | None = None
    #: Last day of the support counted; None when not announced yet.
    eol: date | None = None
    codename: str | None = None


class Distro(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A distribution: the names it goes by and its releases keyed by version."""

    aliases: list[str]
    scheme: Scheme
    support: str
    releases: dict[str, Release]


class EolTable(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The bundled table (``data/eol.json``)."""

    distributions: dict[str, Distro]


class Verdict(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the table says about one OS on one day."""

    distro: str
    release: str | None
    eol: bool | None
    eol_date: date | None
    support: str


@functools.cache
def load_table() -> EolTable:
    """The bundled table, decoded and validated once per process."""
    raw = resources.files("regsweep.matcher.checks").joinpath("data/eol.json").read_bytes()
    return msgspec.json.decode(raw, type=EolTable)


_NUMERIC = re.compile(r"v?(\d+)(?:\.(\d+))?")


def _release_key(distro: Distro, version: str) -> str | None:
    v = version.strip()
    # Debian/Ubuntu images sometimes carry only a codename ("bookworm", "jammy").
    for key, rel in distro.releases.items():
        if rel.codename is not None and rel.codename.casefold() == v.casefold():
            return key
    m = _NUMERIC.match(v)
    if m is None or v[m.end() :].startswith("_"):
        # "3.21_alpha20240807" is Alpine edge between releases, not release 3.21.
        return None
    major, minor = str(int(m.group(1))), m.group(2)
    match distro.scheme:
        case Scheme.MAJOR:
            return major
        case Scheme.MAJOR_MINOR:
            # Minors keep their zero padding (Ubuntu "22.04"), majors never have any.
            return f"{major}.{minor}" if minor is not None else major
        case Scheme.MAJOR_MINOR_OR_MAJOR:
            if minor is not None and f"{major}.{minor}" in distro.releases:
                return f"{major}.{minor}"
            return major
        case Scheme.ROLLING:
            return None
        case _:
            assert_never(distro.scheme)


def judge(os: OsInfo, today: date, table: EolTable | None = None) -> Verdict | None:
    """The table's verdict on ``os`` as of ``today``; None when the family is unknown."""
    table = table or load_table()
    family = os.family.strip().casefold()
    key = next(
        (
            k
            for k, d in table.distributions.items()
            if family == k or family in (a.casefold() for a in d.aliases)
        ),
        None,
    )
    if key is None:
        return None
    distro = table.distributions[key]
    if distro.scheme is Scheme.ROLLING:
        return Verdict(distro=key, release=None, eol=False, eol_date=None, support=distro.support)
    rel_key = _release_key(distro, os.version) if os.version else None
    release = distro.releases.get(rel_key) if rel_key is not None else None
    if release is None:
        return Verdict(distro=key, release=rel_key, eol=None, eol_date=None, support=distro.support)
    eol = release.eol is not None and today > release.eol
    return Verdict(
        distro=key, release=rel_key, eol=eol, eol_date=release.eol, support=distro.support
    )


def annotate(os: OsInfo, today: date, table: EolTable | None = None) -> tuple[OsInfo, Verdict]:
    """``os`` with ``eol``/``eol_date`` filled from the table (both None when unknown)."""
    verdict = judge(os, today, table)
    if verdict is None:
        verdict = Verdict(
            distro=os.family, release=os.version, eol=None, eol_date=None, support="unknown"
        )
    filled = msgspec.structs.replace(
        os,
        eol=verdict.eol,
        eol_date=verdict.eol_date.isoformat() if verdict.eol_date else None,
    )
    return filled, verdict
