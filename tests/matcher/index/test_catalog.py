"""The built-in feed catalog: one osv.dev export per ecosystem the matcher knows, at the
bucket's real paths, and ``--mirror`` keeping those paths. (The URLs are only compared here,
never fetched.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from regsweep.matcher.advisories import Ecosystem
from regsweep.matcher.index import catalog

OSV = "https://osv-vulnerabilities.storage.googleapis.com"


def test_every_ecosystem_the_matcher_knows_has_a_feed_or_a_reason() -> None:
    """A new ``Ecosystem`` member cannot be forgotten: it gets a feed or a stated reason."""
    covered = {fam for f in catalog.CATALOG for fam in f.families}
    assert covered | set(catalog.NOT_IN_CATALOG) == set(Ecosystem)
    assert not covered & set(catalog.NOT_IN_CATALOG)
    assert all(catalog.NOT_IN_CATALOG.values())


def test_feed_urls_are_osv_dev_exports_spelled_as_the_bucket_wants() -> None:
    """``<Ecosystem>/all.zip`` with OSV's spelling, a space percent-encoded, a dot kept."""
    urls = {f.name: f.url for f in catalog.CATALOG}
    assert urls["Debian"] == f"{OSV}/Debian/all.zip"
    assert urls["Rocky Linux"] == f"{OSV}/Rocky%20Linux/all.zip"
    assert urls["Red Hat"] == f"{OSV}/Red%20Hat/all.zip"
    assert urls["crates.io"] == f"{OSV}/crates.io/all.zip"
    assert urls["openSUSE"] == f"{OSV}/openSUSE/all.zip"
    expected = {
        "Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "SUSE",
        "openSUSE", "Wolfi", "Chainguard", "PyPI", "npm", "Maven", "Go", "crates.io",
        "RubyGems", "Packagist", "NuGet",
    }  # fmt: skip
    assert set(urls) == expected
    # One cache file per feed, read by ingest as a zip.
    names = [f.cache_name for f in catalog.CATALOG]
    assert len(set(names)) == len(names) and all(n.endswith(".zip") for n in names)


def test_a_mirror_keeps_the_paths() -> None:
    rocky = f"{OSV}/Rocky%20Linux/all.zip"
    assert catalog.mirrored(rocky, "http://10.0.0.5:8080/osv/") == (
        "http://10.0.0.5:8080/osv/Rocky%20Linux/all.zip"
    )
    assert catalog.mirrored(rocky, "https://mirror.internal") == (
        "https://mirror.internal/Rocky%20Linux/all.zip"
    )
    for bad in ("file:///srv/osv", "mirror.internal/osv", "http://m/?x=1", "http:///osv"):
        with pytest.raises(catalog.CatalogError):
            catalog.mirrored(rocky, bad)
    with pytest.raises(catalog.CatalogError, match=r"^https://u:\*\*\*@m/osv: credentials"):
        catalog.mirrored(rocky, "https://u:pw@m/osv")


def test_redacted_hides_a_password_or_a_token_only() -> None:
    assert catalog.redacted("http://u:pw@m:8/a@b") == "http://u:***@m:8/a@b"
    assert catalog.redacted("https://tok@m/") == "https://***@m/"
    assert catalog.redacted("http://m/path@x") == "http://m/path@x"


def test_select_names_feeds_in_any_case_and_refuses_unknown_ones() -> None:
    assert [f.name for f in catalog.select(["rocky linux", "DEBIAN"])] == ["Debian", "Rocky Linux"]
    nvd = [f for f in catalog.CVE_FEEDS if f.name.startswith("NVD-")]
    assert catalog.select([]) == [*nvd, *catalog.CATALOG]
    with pytest.raises(catalog.CatalogError, match="not in the feed catalog: DHI"):
        catalog.select(["DHI"])


def test_nvd_feeds_are_one_per_cve_year_at_nvds_paths_and_fetched_by_default() -> None:
    """``nvdcve-2.0-<year>.json.zip`` from 2002 to this year, cached under that name (a zip
    to ingest), on a mirror at the same path; ``NVD`` names them all."""
    this_year = datetime.now(UTC).year
    years = catalog.GROUPS["NVD"]
    assert [f.name for f in years] == [f"NVD-{y}" for y in range(2002, this_year + 1)]
    nvd_2024 = next(f for f in years if f.name == "NVD-2024")
    assert nvd_2024.url == "https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-2024.json.zip"
    assert nvd_2024.cache_name == "nvdcve-2.0-2024.json.zip" and nvd_2024.families == ()
    assert catalog.mirrored(nvd_2024.url, "http://10.0.0.5/m") == (
        "http://10.0.0.5/m/feeds/json/cve/2.0/nvdcve-2.0-2024.json.zip"
    )
    assert catalog.select(["nvd"]) == list(years)
    assert set(years) <= set(catalog.select()) and catalog.select()[: len(years)] == list(years)


def test_the_cve_list_is_fetched_only_when_named() -> None:
    """GitHub's archive of cvelistV5's main branch: a stable URL (the repository's own
    releases change name every hour), not in the default set, given by name."""
    (cve_list,) = catalog.select(["cve-list"])
    assert cve_list.url == "https://github.com/CVEProject/cvelistV5/archive/refs/heads/main.zip"
    assert cve_list not in catalog.select() and cve_list.cache_name.endswith(".zip")
    names = [f.cache_name for f in (*catalog.CVE_FEEDS, *catalog.CATALOG)]
    assert len(set(names)) == len(names)
