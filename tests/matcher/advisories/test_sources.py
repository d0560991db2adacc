"""Loading: format detection per file, directories, zips, and accounting over a whole tree."""

from __future__ import annotations

import zipfile
from pathlib import Path

import msgspec

from regsweep.matcher.advisories import Format, Note, SkipReason, load
from regsweep.matcher.advisories.sources import detect_json
from tests.matcher.advisories.helpers import DATA, load_all


def _zip_tree(root: Path, target: Path) -> Path:
    # Like osv.dev's all.zip: members named by their path under the tree.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return target


def _keys(advisories: list[msgspec.Struct]) -> list[bytes]:
    return sorted(msgspec.json.encode(a) for a in advisories)


def test_whole_fixture_tree_is_accounted_for() -> None:
    """Invariant: over a tree mixing every format, real, synthetic and broken data, every
    file is either read, skipped with a reason, or ignored by name, and the per-source
    counts add up to what was yielded."""
    advisories, stats = load_all(".")
    assert stats.records == len(advisories)
    assert sum(s.records for s in stats.sources.values()) == len(advisories)
    # Wolfi advisory documents add (see test_wolfi): BAD_EVENT 6, BAD_VERSION 2 (one real),
    # INVALID_RECORD 4, MALFORMED_YAML 1, MISSING_ID 1, UNKNOWN_EVENT_TYPE 1,
    # UNSUPPORTED_FORMAT 1 (schema 3); and SUPERSEDED 4: secdb/wolfi's binutils and
    # coreutils records, which wolfi-yaml/real covers, in the same load.
    assert stats.skipped == {
        SkipReason.BAD_EVENT: 9,
        SkipReason.BAD_RANGE: 1,
        SkipReason.BAD_SECFIX: 5,
        SkipReason.BAD_VERSION: 2,
        SkipReason.INVALID_RECORD: 5,
        SkipReason.MALFORMED_JSON: 1,
        SkipReason.MALFORMED_YAML: 2,
        SkipReason.MISSING_ID: 2,
        SkipReason.NO_AFFECTED: 1,
        SkipReason.SUPERSEDED: 4,
        SkipReason.UNKNOWN_DISTRIBUTION: 1,
        SkipReason.UNKNOWN_ECOSYSTEM: 2,
        SkipReason.UNKNOWN_EVENT_TYPE: 1,
        SkipReason.UNSUPPORTED_FORMAT: 3,
        SkipReason.WITHDRAWN: 3,
    }
    assert stats.unknown_ecosystems == {"Hackage": 2, "SwiftURL": 3, "Ubuntu:Pro": 1}
    assert stats.ignored_files == 1  # the README
    assert stats.formats == {
        "osv-json": 35,
        "osv-yaml": 4,
        "secdb-yaml": 2,
        "secdb-json": 4,
        "unknown": 1,
        "malformed": 3,
        "wolfi-advisory-yaml": 15,
    }
    assert stats.files == sum(stats.formats.values())
    assert set(stats.sources) == {
        "osv:Chainguard",
        "osv:DHI",
        "osv:Debian",
        "osv:Go",
        "osv:Maven",
        "osv:NuGet",
        "osv:Packagist",
        "osv:PyPI",
        "osv:Ubuntu",
        "osv:crates.io",
        "osv:npm",
        "secdb:Alpine",
        "secdb:Chainguard",
        "secdb:Wolfi",
        "wolfi-yaml:Wolfi",
    }
    # Every example names a real place and a reason; at most 5 per reason are kept.
    assert all(e.location and e.detail for e in stats.examples)
    assert "skipped" in stats.report() and "Hackage" in stats.report()


def test_zip_yields_the_same_advisories_as_the_tree(tmp_path: Path) -> None:
    """Invariant: a zip of a tree (osv.dev's all.zip shape) reads exactly like the tree."""
    archive = _zip_tree(DATA, tmp_path / "all.zip")
    from_tree, tree_stats = load_all(".")
    from_zip, zip_stats = load_all(archive)
    assert _keys(from_zip) == _keys(from_tree)
    assert zip_stats.skipped == tree_stats.skipped
    assert zip_stats.formats == tree_stats.formats
    assert any("all.zip!broken/" in e.location for e in zip_stats.examples)


def test_corrupt_zip_member_spoils_only_itself(tmp_path: Path) -> None:
    """Invariant: a member with a bad CRC is one UNREADABLE skip; its neighbours are read."""
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(DATA / "osv/debian/DSA-524.json", "DSA-524.json")
        zf.write(DATA / "osv/debian/DSA-5044-1.json", "DSA-5044-1.json")
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"rlpr - several")  # inside the stored DSA-524 member
    raw[at] ^= 0x20
    archive.write_bytes(bytes(raw))
    advisories, stats = load_all(archive)
    assert [a.id for a in advisories] == ["DSA-5044-1"]
    assert stats.skipped == {SkipReason.UNREADABLE: 1}


def test_unreadable_inputs_are_skips_not_exceptions(tmp_path: Path) -> None:
    """Invariant: a missing path, a non-zip ``.zip`` and a zip inside a zip are counted;
    the other inputs of the same load are still read."""
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr("inner.zip", b"PK")
        zf.writestr("README.md", "ignored")
    advisories, stats = load_all(tmp_path / "missing", fake, nested, "osv/debian/DSA-524.json")
    assert [a.id for a in advisories] == ["DSA-524"]
    assert stats.skipped == {SkipReason.UNREADABLE: 2, SkipReason.UNSUPPORTED_FORMAT: 1}
    assert stats.ignored_files == 1


def test_json_list_of_records_is_read_record_by_record() -> None:
    """Invariant: a JSON array of OSV records (an export shape) yields each record."""
    advisories, stats = load_all("synthetic/event-combinations.json")
    assert len(advisories) == 17
    assert stats.formats == {"osv-json": 1}


def test_detect_json_looks_at_top_level_keys() -> None:
    """Invariant: OSV and secdb are told apart by content, whatever the file is called."""
    assert detect_json(b'{"id": "X", "affected": []}') is Format.OSV_JSON
    assert detect_json(b'[{"id": "X"}]') is Format.OSV_JSON
    assert detect_json(b'{"packages": [], "distroversion": "v3.20"}') is Format.SECDB_JSON
    assert detect_json(b'{"name": "zlib", "secfixes": {}}') is Format.SECDB_JSON
    assert detect_json(b'{"hello": 1}') is Format.UNKNOWN
    assert detect_json(b'{"id": ') is Format.MALFORMED


def test_stats_fill_as_the_stream_is_consumed() -> None:
    """Invariant: ``load`` is lazy: nothing is read before iteration, and the stats are
    complete exactly when the iterator is exhausted."""
    records, stats = load(DATA / "osv/debian")
    assert stats.files == 0 and stats.records == 0
    first = next(records)
    assert first.id and stats.records == 1
    rest = list(records)
    assert stats.records == 1 + len(rest) == 3
    assert stats.files == 3


def test_same_record_read_twice_is_yielded_twice_and_noted() -> None:
    """Invariant: duplicates are not silently merged (the index picks), but they show."""
    advisories, stats = load_all("osv/debian/DSA-524.json", "osv/debian/DSA-524.json")
    assert [a.id for a in advisories] == ["DSA-524", "DSA-524"]
    assert stats.notes == {Note.DUPLICATE_ID: 1}


def test_stats_encode_as_json() -> None:
    """Invariant: the stats are plain Structs, so they go straight into the run summary."""
    _, stats = load_all("osv/go")
    encoded = msgspec.json.decode(msgspec.json.encode(stats))
    assert encoded["sources"]["osv:Go"]["records"] == 2
    assert encoded["notes"] == {"placeholder_timestamp": 3}
