"""The built-in feed catalog: one osv.dev export per ecosystem the matcher knows, at the
bucket's real paths, and ``--mirror`` keeping those paths. (The URLs are only compared here,
never fetched.)"""

from __future__ import annotations

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
    assert catalog.select([]) == list(catalog.CATALOG)
    with pytest.raises(catalog.CatalogError, match="not in the feed catalog: DHI"):
        catalog.select(["DHI"])
