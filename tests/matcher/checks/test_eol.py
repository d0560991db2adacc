"""The bundled EOL table: its data, version lookup per distribution, and the judgement day."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from regsweep.matcher.checks import run_checks
from regsweep.matcher.checks.eol import Scheme, annotate, judge, load_table
from regsweep.matcher.records import OsInfo
from tests.matcher.checks.helpers import IMAGE, image_config

DISTRO_INFO = Path("/usr/share/distro-info")


def test_table_is_well_formed() -> None:
    """Every release ends after it starts; rolling distributions list no releases; aliases
    are unique across distributions (one family name cannot mean two tables)."""
    table = load_table()
    seen: dict[str, str] = {}
    for key, distro in table.distributions.items():
        assert (distro.scheme is Scheme.ROLLING) == (not distro.releases), key
        for ver, rel in distro.releases.items():
            if rel.released and rel.eol:
                assert rel.released < rel.eol, (key, ver)
        for alias in {key, *distro.aliases}:
            assert seen.setdefault(alias.casefold(), key) == key, alias


@pytest.mark.skipif(not DISTRO_INFO.is_dir(), reason="distro-info-data is not installed")
@pytest.mark.parametrize(("name", "column"), [("debian", "eol-lts"), ("ubuntu", "eol-server")])
def test_debian_and_ubuntu_agree_with_distro_info_data(name: str, column: str) -> None:
    """The Debian/Ubuntu rows equal distro-info-data's (LTS for Debian, standard support for
    Ubuntu), for every release this machine's distro-info-data and the table both list."""
    releases = load_table().distributions[name].releases
    checked = 0
    rows = list(csv.DictReader((DISTRO_INFO / f"{name}.csv").read_text().splitlines()))
    for row in rows:
        version = (row["version"].split() or [""])[0]
        if name == "debian" and (not version or version.count(".") or int(version) < 7):
            continue  # pre-7 point series share a major; sid/experimental have no number
        rel = releases.get(version)
        if rel is None or not row["release"]:
            continue
        expected = row.get(column) or row["eol"]
        assert rel.eol == (date.fromisoformat(expected) if expected else None), version
        assert rel.codename == row["series"]
        checked += 1
    assert checked >= 7  # Debian 7-13 at least


@pytest.mark.parametrize(
    ("family", "version", "today", "eol", "eol_date"),
    [
        # Debian LTS end is the last supported day: EOL from the next day.
        ("debian", "11", date(2026, 8, 31), False, "2026-08-31"),
        ("debian", "11", date(2026, 9, 1), True, "2026-08-31"),
        ("debian", "12.5", date(2026, 11, 28), False, "2028-06-30"),
        ("debian", "bookworm", date(2026, 11, 28), False, "2028-06-30"),
        ("debian", "9", date(2026, 11, 28), True, "2022-06-30"),
        # Ubuntu: standard support counts, ESM does not.
        ("ubuntu", "20.04", date(2025, 6, 1), True, "2025-05-29"),
        ("ubuntu", "22.04", date(2026, 11, 28), False, "2027-06-01"),
        ("ubuntu", "18.04", date(2026, 1, 1), True, "2023-05-31"),
        ("alpine", "3.19.1", date(2026, 1, 1), True, "2025-11-01"),
        ("alpine", "v3.21", date(2026, 1, 1), False, "2026-11-01"),
        ("alpine", "3.10.9", date(2026, 1, 1), True, "2021-05-01"),
        ("rhel", "9.4", date(2026, 1, 1), False, "2032-05-31"),
        ("rhel", "7.9", date(2026, 1, 1), True, "2024-06-30"),
        ("centos", "7", date(2026, 1, 1), True, "2024-06-30"),
        ("rocky", "8.10", date(2026, 1, 1), False, "2029-05-31"),
        ("almalinux", "8.9", date(2029, 3, 2), True, "2029-03-01"),
        ("amzn", "2", date(2026, 7, 1), True, "2026-06-30"),
        ("amzn", "2023", date(2026, 7, 1), False, "2029-06-30"),
        ("amzn", "2018.03", date(2024, 1, 1), True, "2023-12-31"),
        ("fedora", "40", date(2026, 1, 1), True, "2025-05-13"),
        # SLES is judged per service pack: 15 SP5 ended although 15 SP7 did not.
        ("sles", "15.5", date(2026, 1, 1), True, "2024-12-31"),
        ("sles", "15.7", date(2026, 1, 1), False, "2031-07-31"),
        ("opensuse-leap", "15.6", date(2026, 1, 1), False, "2026-04-30"),
    ],
)
def test_eol_verdicts(family: str, version: str, today: date, eol: bool, eol_date: str) -> None:
    """Known releases are judged against ``today`` with the documented support phase."""
    filled, _ = annotate(OsInfo(family=family, version=version), today)
    assert (filled.eol, filled.eol_date) == (eol, eol_date)


@pytest.mark.parametrize("family", ["wolfi", "chainguard", "opensuse-tumbleweed"])
def test_rolling_distributions_are_never_eol(family: str) -> None:
    """Rolling releases are not end of life, whatever the version or day."""
    filled, _ = annotate(OsInfo(family=family, version="20230201"), date(2099, 1, 1))
    assert (filled.eol, filled.eol_date) == (False, None)


@pytest.mark.parametrize(
    ("family", "version"),
    [
        ("alpine", "3.99"),  # not released (or not in the table yet)
        ("ubuntu", "22"),  # no minor: not a release name
        ("sles", "16.0"),  # a service pack the table does not list: no fallback to "16"
        ("debian", None),  # testing/sid carry no VERSION_ID
        ("debian", "bookworm/sid"),  # debian_version of testing
        ("alpine", "3.21_alpha20240807"),  # edge between releases, not release 3.21
        ("sles_sap", "15.5"),  # SLES for SAP has its own lifecycle
        ("plan9", "4"),  # unknown family
    ],
)
def test_unknown_versions_are_null_never_guessed(family: str, version: str | None) -> None:
    """An OS the table cannot place gets ``eol: null`` and no finding."""
    os = OsInfo(family=family, version=version)
    records, filled = run_checks(image_config(user="app"), os, [], IMAGE, today=date(2099, 1, 1))
    assert records == []
    assert filled is not None and (filled.eol, filled.eol_date) == (None, None)


def test_announced_release_without_end_is_not_eol() -> None:
    """A listed release with no announced end (Debian's next number) is not EOL."""
    verdict = judge(OsInfo(family="debian", version="14"), date(2030, 1, 1))
    assert verdict is not None and (verdict.eol, verdict.eol_date) == (False, None)


def test_eol_finding_and_filled_os() -> None:
    """An EOL OS gives one RS-IMG-020 record naming the release and its end; the returned
    OsInfo keeps the analyzer's fields and gains eol/eol_date."""
    os = OsInfo(family="debian", name="Debian GNU/Linux", version="10")
    records, filled = run_checks(image_config(user="app"), os, [], IMAGE, today=date(2026, 1, 1))
    assert [r.check.id for r in records] == ["RS-IMG-020"]
    assert records[0].check.category == "eol"
    assert records[0].evidence == (
        "Debian GNU/Linux 10: support (Debian security + Debian LTS) ended 2024-06-30"
    )
    assert filled == OsInfo(
        family="debian", name="Debian GNU/Linux", version="10", eol=True, eol_date="2024-06-30"
    )


def test_family_aliases_and_case() -> None:
    """os-release IDs and common spellings reach the same table (``Red Hat``, ``AMZN``)."""
    day = date(2026, 1, 1)
    for family in ("rhel", "Red Hat", "redhat"):
        assert judge(OsInfo(family=family, version="8"), day).distro == "rhel"  # type: ignore[union-attr]
    assert judge(OsInfo(family="AMZN", version="2"), day).distro == "amzn"  # type: ignore[union-attr]


def test_no_os_means_no_eol_finding() -> None:
    """Without an OS (a scratch image) there is nothing to judge and None comes back."""
    records, filled = run_checks(image_config(user="app"), None, [], IMAGE, today=date(2026, 1, 1))
    assert records == [] and filled is None
