"""``regsweep db update`` against a real HTTP server on 127.0.0.1: the built-in catalog through
``--mirror``, conditional GET, resumed downloads, verification, and feeds that fail.

The mirror is in osv.dev's layout (``<Ecosystem>/all.zip``), made from the real advisory
samples in ``tests/data`` (and from ``../shared/data`` where it is present), with NVD's
yearly CVE feeds beside it (``/feeds/json/cve/2.0/…``, empty here), and served by
aiohttp's own static-file response (``tests.feeds``). Every check compares the index an
update built with the one ``db build`` makes of the same files, or with the index that was
there before a fault.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec
import pytest
from click.testing import CliRunner

from regsweep.cli.main import main
from regsweep.matcher.index import catalog, store, update
from tests import paths
from tests.feeds import Fault, MirrorServer, write_cve_mirror, write_osv_mirror

SAMPLES = paths.DATA / "advisories" / "osv"
SHARED_OSV = paths.REPO.parent / "shared" / "data" / "advisories" / "osv"
NAMES = [f.name for f in catalog.CATALOG]
#: Every feed an update fetches by default: the CVE feeds, then the ecosystems' (NAMES).
DEFAULT = catalog.select()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def summary(db: Path) -> dict[str, Any]:
    """What an index holds, as counts (the same files must give the same counts)."""
    with store.AdvisoryIndex(db) as index:
        meta = index.meta
    assert meta.ingest is not None
    return {
        "advisories": meta.advisories,
        "packages": meta.packages,
        "ranges": meta.ranges,
        "exact_versions": meta.exact_versions,
        "files": meta.ingest.files,
        "sources": {k: v.records for k, v in meta.ingest.sources.items()},
        "skipped": dict(meta.ingest.skipped),
    }


def fingerprint(db: Path) -> tuple[int, int, str]:
    """The index file itself: a rebuild replaces it (new inode and mtime)."""
    st = db.stat()
    with store.AdvisoryIndex(db) as index:
        return st.st_ino, st.st_mtime_ns, index.meta.built_at.isoformat()


def has(db: Path, advisory_id: str) -> bool:
    with store.AdvisoryIndex(db) as index:
        return bool(index.lookup_alias(advisory_id))


def raw_path(name: str) -> str:
    return f"/{quote(name, safe='')}/all.zip"


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[MirrorServer]:
    """The samples as osv.dev serves them: a zip per catalog ecosystem (empty where
    ``tests/data`` holds no record of it)."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES], only=NAMES, empty=NAMES)
    write_cve_mirror(root)
    with MirrorServer(root) as srv:
        yield srv


def zips(root: Path, names: list[str]) -> list[str]:
    return [str(root / n / "all.zip") for n in names]


def cve_zips(root: Path) -> list[str]:
    """The CVE feeds of the mirror at ``root``, in the order an update reads them."""
    return [
        str(root / urlsplit(f.url).path.lstrip("/"))
        for f in DEFAULT
        if isinstance(f, catalog.CveFeed)
    ]


def test_update_without_from_fetches_the_whole_catalog_from_the_mirror(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """No --from: one GET per catalog feed at osv.dev's path on the mirror (``Rocky%20Linux``
    encoded), and the index equals ``db build`` of the same zips."""
    db = tmp_path / "adv.lmdb"
    code, out = cli("db", "update", "--db", str(db), "--mirror", mirror.base)
    assert code == 0, out
    cve_paths = [urlsplit(f.url).path for f in DEFAULT if isinstance(f, catalog.CveFeed)]
    assert sorted(r.raw_path for r in mirror.requests) == sorted(
        [*cve_paths, *(raw_path(n) for n in NAMES)]
    )
    assert {r.status for r in mirror.requests} == {200}
    for feed in DEFAULT:
        assert f"{feed.name}: downloaded" in out
    built = tmp_path / "built.lmdb"
    sources = [*cve_zips(mirror.root), *zips(mirror.root, NAMES)]
    code, out = cli("db", "build", "--db", str(built), *sources)
    assert code == 0, out
    got = summary(db)
    assert got == summary(built)
    assert {"osv:Debian", "osv:Ubuntu", "osv:PyPI", "osv:Go", "osv:crates.io"} <= set(
        got["sources"]
    )
    assert has(db, "DSA-5044-1") and has(db, "PYSEC-2020-342")


def test_a_second_update_is_not_modified_and_rebuilds_nothing(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """Every feed is revalidated with its ETag, answered 304, and the index file is not
    touched."""
    db = tmp_path / "adv.lmdb"
    assert cli("db", "update", "--db", str(db), "--mirror", mirror.base)[0] == 0
    before = fingerprint(db)
    first = len(mirror.requests)
    code, out = cli("db", "update", "--db", str(db), "--mirror", mirror.base)
    assert code == 0, out
    second = mirror.requests[first:]
    assert len(second) == len(DEFAULT)
    assert all(r.status == 304 and r.headers.get("If-None-Match") for r in second)
    for feed in DEFAULT:
        assert f"{feed.name}: not modified" in out
    assert "up to date: no feed changed, no rebuild" in out
    assert fingerprint(db) == before


def test_ecosystem_limits_the_feeds_and_another_set_rebuilds(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """--ecosystem fetches only the named feeds (any case); asking for another set rebuilds
    the index from that set even though nothing was downloaded; an unknown name is a usage
    error naming the catalog."""
    db = tmp_path / "adv.lmdb"
    code, out = cli(
        "db", "update", "--db", str(db), "--mirror", mirror.base,
        "--ecosystem", "debian", "--ecosystem", "PyPI",
    )  # fmt: skip
    assert code == 0, out
    assert sorted(r.path for r in mirror.requests) == ["/Debian/all.zip", "/PyPI/all.zip"]
    assert set(summary(db)["sources"]) == {"osv:Debian", "osv:PyPI"}

    code, out = cli(
        "db", "update", "--db", str(db), "--mirror", mirror.base, "--ecosystem", "Debian"
    )
    assert code == 0, out
    assert mirror.requests[-1].status == 304
    assert "up to date" not in out
    assert set(summary(db)["sources"]) == {"osv:Debian"}

    code, out = cli(
        "db", "update", "--db", str(db), "--mirror", mirror.base, "--ecosystem", "Gentoo"
    )
    assert code == 2 and "not in the feed catalog: Gentoo" in out and "Rocky Linux" in out


def _changed_debian(mirror: MirrorServer) -> bytes:
    """A new Debian export on the mirror: the samples and a renamed copy of each (new ids
    such as ``DSA-5044-1-R1``); returns its bytes."""
    staging = mirror.root.parent / "staging"
    write_osv_mirror(staging, [SAMPLES / "debian"], replicas=2, only=["Debian"])
    data = (staging / "Debian" / "all.zip").read_bytes()
    mirror.put("/Debian/all.zip", data)
    return data


def _corrupt(data: bytes) -> bytes:
    """``data`` with one byte of the first member's compressed data flipped (a CRC-32
    mismatch or a broken deflate stream, the archive's structure intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
    # Local header: 30 bytes + name + extra, then the compressed data.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    pos = start + info.compress_size // 2
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


FAULTS = ["http-500", "corrupt-zip", "truncated-zip", "cut-off", "md5-mismatch"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_feed_that_fails_leaves_the_old_index_intact(
    mirror: MirrorServer, tmp_path: Path, fault: str
) -> None:
    """A new Debian export is due, but it comes back as a 500, a zip with a damaged member,
    half a zip served as if whole, a connection dropped mid-way, or bytes that do not hash
    to the X-Goog-Hash MD5: the update exits 1 naming the feed and the reason, the cached
    copy and the index stay as they were, and ``db info`` says the last update failed."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base]
    args += ["--ecosystem", "Debian", "--ecosystem", "PyPI"]
    assert cli(*args)[0] == 0
    before = fingerprint(db)
    cached = update.feed_dir(db) / "osv-Debian-all.zip"
    cached_bytes = cached.read_bytes()

    new = _changed_debian(mirror)
    expected = {
        "http-500": "HTTP 500",
        "corrupt-zip": "not a whole zip archive",
        "truncated-zip": "not a whole zip archive",
        "cut-off": f"download cut off after {len(new) // 2} of {len(new)} bytes",
        "md5-mismatch": "does not match the server's X-Goog-Hash md5",
    }[fault]
    match fault:
        case "http-500":
            mirror.faults["/Debian/all.zip"] = Fault(status=500)
        case "corrupt-zip":
            mirror.put("/Debian/all.zip", _corrupt(new))
        case "truncated-zip":
            mirror.put("/Debian/all.zip", new[: len(new) // 2])
        case "cut-off":
            mirror.faults["/Debian/all.zip"] = Fault(cut_at=len(new) // 2)
        case "md5-mismatch":
            mirror.with_goog_hash = True
            mirror.faults["/Debian/all.zip"] = Fault(body=_corrupt(new))

    code, out = cli(*args)
    assert code == 1, out
    assert "Debian: FAILED" in out and expected in out, out
    assert "Debian: FAILED" in out and "using the copy fetched" in out
    assert "1 of 2 feeds failed (Debian); the index holds the previous copy of Debian" in out
    assert "not rebuilt: it holds every copy this update could use" in out
    assert "up to date" not in out
    assert "PyPI: not modified" in out
    assert fingerprint(db) == before
    assert cached.read_bytes() == cached_bytes
    assert has(db, "DSA-5044-1") and not has(db, "DSA-5044-1-R1")

    code, out = cli("db", "info", "--db", str(db))
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("Debian "))
    assert "last update FAILED" in line and expected in line
    doc = msgspec.json.decode(cli("db", "info", "--db", str(db), "--json")[1])
    feeds = {f["name"]: f for f in doc["feeds"]}
    assert expected in feeds["Debian"]["error"] and feeds["Debian"]["in_index"]
    assert feeds["PyPI"]["error"] is None


def test_a_failed_feed_is_rebuilt_from_its_cached_copy_when_another_changed(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """PyPI changes while Debian answers 500: the index is rebuilt once, with the new PyPI
    records and Debian's cached copy; exit 1 all the same. The next good update clears the
    failure without rebuilding (Debian's copy did not change)."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base]
    args += ["--ecosystem", "Debian", "--ecosystem", "PyPI"]
    assert cli(*args)[0] == 0
    before = fingerprint(db)
    staging = tmp_path / "staging"
    write_osv_mirror(staging, [SAMPLES / "pypi"], replicas=2, only=["PyPI"])
    mirror.put("/PyPI/all.zip", (staging / "PyPI" / "all.zip").read_bytes())
    mirror.faults["/Debian/all.zip"] = Fault(status=500)

    code, out = cli(*args)
    assert code == 1, out
    assert "Debian: FAILED" in out and "PyPI: downloaded" in out
    assert fingerprint(db) != before
    assert has(db, "PYSEC-2020-342-R1") and has(db, "DSA-5044-1")
    built = tmp_path / "built.lmdb"
    debian = update.feed_dir(db) / "osv-Debian-all.zip"
    pypi = staging / "PyPI" / "all.zip"
    assert cli("db", "build", "--db", str(built), str(debian), str(pypi))[0] == 0
    assert summary(db) == summary(built)
    info = cli("db", "info", "--db", str(db))[1]
    assert "the index holds the copy above" in info

    after = fingerprint(db)
    code, out = cli(*args)
    assert code == 0, out
    assert fingerprint(db) == after
    assert "FAILED" not in cli("db", "info", "--db", str(db))[1]


def test_an_interrupted_download_resumes_where_it_stopped(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """A download cut off after N bytes is kept as a partial file; the next update asks for
    ``Range: bytes=N-`` with ``If-Range`` (the ETag of the response it came from), gets 206,
    and the finished file is the server's, byte for byte."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base, "--ecosystem", "Debian"]
    assert cli(*args)[0] == 0
    new = _changed_debian(mirror)
    cut = len(new) // 3
    mirror.faults["/Debian/all.zip"] = Fault(cut_at=cut)
    code, out = cli(*args)
    assert code == 1 and "the next update resumes it" in out, out
    partial = update.feed_dir(db) / "osv-Debian-all.zip.partial"
    assert partial.stat().st_size == cut
    etag = mirror.requests[-1]

    code, out = cli(*args)
    assert code == 0, out
    resumed = mirror.requests[-1]
    assert resumed.headers["Range"] == f"bytes={cut}-"
    assert resumed.headers["If-Range"].startswith('"')  # a strong ETag
    assert resumed.status == 206 and etag.status == 200
    assert "Debian: resumed at" in out
    assert not partial.exists()
    cached = update.feed_dir(db) / "osv-Debian-all.zip"
    assert hashlib.sha256(cached.read_bytes()).digest() == hashlib.sha256(new).digest()
    assert has(db, "DSA-5044-1-R1")
    built = tmp_path / "built.lmdb"
    assert cli("db", "build", "--db", str(built), str(mirror.root / "Debian" / "all.zip"))[0] == 0
    assert summary(db) == summary(built)


def test_a_partial_file_of_an_older_version_is_started_over(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """The server's file changed between the cut-off download and the next update. aiohttp
    ignores an ETag in If-Range and sends 206 of the new file: the ETag of that 206 is not
    the partial file's, so the update starts over (200) instead of splicing two files."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base, "--ecosystem", "Debian"]
    assert cli(*args)[0] == 0
    new = _changed_debian(mirror)
    mirror.faults["/Debian/all.zip"] = Fault(cut_at=len(new) // 3)
    assert cli(*args)[0] == 1
    staging = tmp_path / "v3"
    write_osv_mirror(staging, [SAMPLES / "debian"], replicas=3, only=["Debian"])
    newer = (staging / "Debian" / "all.zip").read_bytes()
    mirror.put("/Debian/all.zip", newer)
    first = len(mirror.requests)

    code, out = cli(*args)
    assert code == 0, out
    assert [r.status for r in mirror.requests[first:]] == [206, 200]
    cached = update.feed_dir(db) / "osv-Debian-all.zip"
    assert cached.read_bytes() == newer
    assert has(db, "DSA-5044-1-R2")


def test_sha256_pin_rejects_a_tampered_feed_and_keeps_the_old_index(tmp_path: Path) -> None:
    """--from URL#sha256=…: a download that does not hash to its pin fails the update and
    replaces nothing."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian"], only=["Debian"])
    good = (root / "Debian" / "all.zip").read_bytes()
    pin = hashlib.sha256(good).hexdigest()
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        url = srv.url("/Debian/all.zip") + f"#sha256={pin}"
        assert cli("db", "update", "--db", str(db), "--from", url)[0] == 0
        before = fingerprint(db)
        write_osv_mirror(tmp_path / "evil", [SAMPLES / "debian"], replicas=2, only=["Debian"])
        srv.put("/Debian/all.zip", (tmp_path / "evil" / "Debian" / "all.zip").read_bytes())
        code, out = cli("db", "update", "--db", str(db), "--from", url)
    assert code == 1 and "does not match the pinned" in out
    assert fingerprint(db) == before
    assert not has(db, "DSA-5044-1-R1")


def test_http_errors_and_bad_arguments_are_clear_failures(tmp_path: Path) -> None:
    """A 404 with nothing cached builds nothing (exit 1, naming the URL); a non-HTTP URL, a
    malformed pin, --from with --mirror, and a mirror that is not an HTTP URL are usage
    errors."""
    db = tmp_path / "adv.lmdb"
    with MirrorServer(tmp_path) as srv:
        code, out = cli("db", "update", "--db", str(db), "--from", srv.url("/missing.zip"))
    assert code == 1 and "HTTP 404" in out and "no index built" in out
    assert not db.exists()
    assert cli("db", "update", "--db", str(db), "--from", "ftp://127.0.0.1/x.zip")[0] == 2
    assert cli("db", "update", "--db", str(db), "--from", "http://127.0.0.1/x#sha256=ab")[0] == 2
    code, out = cli(
        "db", "update", "--db", str(db), "--from", "http://127.0.0.1/x.zip",
        "--mirror", "http://127.0.0.1/",
    )  # fmt: skip
    assert code == 2 and "does not go with --mirror" in out
    code, out = cli("db", "update", "--db", str(db), "--mirror", "file:///srv/osv")
    assert code == 2 and "http:// or https://" in out


def test_a_second_update_of_the_same_index_waits_for_nobody(tmp_path: Path) -> None:
    """While one update holds the feed cache, another fails at once (it would write the same
    partial files)."""
    db = tmp_path / "adv.lmdb"
    with update.update_lock(update.feed_dir(db)):
        code, out = cli("db", "update", "--db", str(db), "--mirror", "http://127.0.0.1:9/")
    assert code == 1 and "another db update" in out


@pytest.mark.skipif(not SHARED_OSV.is_dir(), reason="../shared/data is not on this machine")
def test_update_of_the_shared_data_equals_db_build(tmp_path: Path) -> None:
    """All of ../shared's OSV data, zipped per ecosystem as osv.dev does (17,000 records):
    the update through the mirror and ``db build`` of the same zips give the same index."""
    root = tmp_path / "mirror"
    counts = write_osv_mirror(root, [SHARED_OSV], only=NAMES, empty=NAMES)
    write_cve_mirror(root)
    assert sum(counts.values()) > 15_000
    db, built = tmp_path / "adv.lmdb", tmp_path / "built.lmdb"
    with MirrorServer(root) as srv:
        code, out = cli("db", "update", "--db", str(db), "--mirror", srv.base)
    assert code == 0, out
    assert cli("db", "build", "--db", str(built), *cve_zips(root), *zips(root, NAMES))[0] == 0
    got = summary(db)
    assert got == summary(built)
    assert got["advisories"] > 15_000


def test_the_index_and_the_feed_cache_stay_beside_each_other(tmp_path: Path) -> None:
    """The cache of ``x.lmdb`` is ``x.lmdb.feeds``: removing the index and updating again
    costs no download when the server's files did not change."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian"], only=["Debian"])
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        args = ["db", "update", "--db", str(db), "--mirror", srv.base, "--ecosystem", "Debian"]
        assert cli(*args)[0] == 0
        os.unlink(db)
        code, out = cli(*args)
        assert srv.requests[-1].status == 304
    assert code == 0 and "Debian: not modified" in out
    assert has(db, "DSA-5044-1")


def test_a_feed_that_cannot_be_written_locally_fails_alone(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """A download due while its partial file cannot be written (here a directory stands in
    its way; a full disk is the same error) fails that feed with the system's reason; the
    other feed is fetched, the old copy and index stay."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base]
    args += ["--ecosystem", "Debian", "--ecosystem", "PyPI"]
    assert cli(*args)[0] == 0
    before = fingerprint(db)
    _changed_debian(mirror)
    (update.feed_dir(db) / "osv-Debian-all.zip.partial").mkdir()
    code, out = cli(*args)
    assert code == 1, out
    assert "Debian: FAILED" in out and "Is a directory" in out
    assert "PyPI: not modified" in out
    assert fingerprint(db) == before and has(db, "DSA-5044-1")


def test_a_url_given_twice_is_fetched_once(tmp_path: Path) -> None:
    """``--from URL --from URL``: one download (two would write the same partial file at
    once), one feed in the report; the same URL with two different pins is a usage error."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian"], only=["Debian"])
    pin = hashlib.sha256((root / "Debian" / "all.zip").read_bytes()).hexdigest()
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        url = srv.url("/Debian/all.zip")
        code, out = cli("db", "update", "--db", str(db), "--from", url, "--from", url)
        assert code == 0, out
        assert [r.status for r in srv.requests] == [200]
        assert out.count(f"{url}: downloaded") == 1 and "1 feeds in" in out
        assert has(db, "DSA-5044-1")
        code, out = cli(
            "db", "update", "--db", str(db),
            "--from", f"{url}#sha256={pin}", "--from", f"{url}#sha256={'0' * 64}",
        )  # fmt: skip
        assert code == 2 and "given twice with different sha256 pins" in out, out
        assert len(srv.requests) == 1


def test_a_cached_copy_that_a_new_pin_rules_out_leaves_the_index(tmp_path: Path) -> None:
    """A feed first fetched without a pin, then named with a pin its copy does not match
    (and the server still sends that copy): the copy is not used, so the index is rebuilt
    without it, and what stderr and ``db info`` say agrees with what the index holds. With
    no other feed to build from, the index is left as it was, and the error says it still
    holds that feed."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian", SAMPLES / "pypi"], only=["Debian", "PyPI"])
    wrong = "0" * 64
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        debian, pypi = srv.url("/Debian/all.zip"), srv.url("/PyPI/all.zip")
        assert cli("db", "update", "--db", str(db), "--from", debian, "--from", pypi)[0] == 0
        assert has(db, "DSA-5044-1") and has(db, "PYSEC-2020-342")

        args = ["db", "update", "--db", str(db), "--from", f"{debian}#sha256={wrong}"]
        code, out = cli(*args, "--from", pypi)
        assert code == 1, out
        assert f"{debian}: FAILED" in out and f"does not match the pinned {wrong}" in out
        assert "the cached copy does not match the pin: unused" in out
        assert "index built in" in out and "up to date" not in out
        assert f"1 of 2 feeds failed ({debian}); not in the index: {debian}" in out
        assert not has(db, "DSA-5044-1") and has(db, "PYSEC-2020-342")
        info = cli("db", "info", "--db", str(db))[1]
        line = next(ln for ln in info.splitlines() if ln.strip().startswith(debian))
        assert "NOT IN THE INDEX" in line and "does not match the pinned" in line
        doc = msgspec.json.decode(cli("db", "info", "--db", str(db), "--json")[1])
        assert {f["name"]: f["in_index"] for f in doc["feeds"]} == {debian: False, pypi: True}

        # Back without the pin: the copy is usable again and the index holds it again.
        assert cli("db", "update", "--db", str(db), "--from", debian, "--from", pypi)[0] == 0
        assert has(db, "DSA-5044-1")
        before = fingerprint(db)
        code, out = cli(*args)
    assert code == 1
    assert f"{db} is left as it was, still holding the copy of {debian}" in out
    assert fingerprint(db) == before


def test_when_every_feed_fails_the_update_does_not_say_up_to_date(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    """Both feeds answer 500: nothing is rebuilt (their copies are the index's), and stderr
    says so without calling the index up to date; the error names both."""
    db = tmp_path / "adv.lmdb"
    args = ["db", "update", "--db", str(db), "--mirror", mirror.base]
    args += ["--ecosystem", "Debian", "--ecosystem", "PyPI"]
    assert cli(*args)[0] == 0
    before = fingerprint(db)
    mirror.faults["/Debian/all.zip"] = Fault(status=500)
    mirror.faults["/PyPI/all.zip"] = Fault(status=500)
    code, out = cli(*args)
    assert code == 1, out
    assert "up to date" not in out
    assert f"{db} not rebuilt: it holds every copy this update could use" in out
    assert "2 of 2 feeds failed (Debian, PyPI); the index holds the previous copy of " in out
    assert fingerprint(db) == before
