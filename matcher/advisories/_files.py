"""Walk advisory inputs: a file, a directory tree, or a zip archive, one member at a time.

Shared by every feed reader so that "a file, a directory or osv.dev's ``all.zip``" means the
same thing everywhere. Only one file's bytes are held at a time: a zip is read through its
central directory and each member decompressed on its own, never the archive whole.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from regsweep.matcher.advisories.stats import IngestStats, SkipReason

__all__ = ["DATA_SUFFIXES", "NOT_DATA", "Blob", "iter_blobs", "suffix_of"]

#: File name endings that may hold advisory records.
DATA_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
#: JSON files that are no records: the CVE List's change logs (``cves/delta.json``, a list
#: of recent changes that would otherwise read as a list of id-less OSV records).
NOT_DATA = frozenset({"delta.json", "deltaLog.json"})
_ZIP = ".zip"
#: Zip members at least this large are inflated into one buffer of their size, a slice at a
#: time: ``ZipFile.read`` holds about twice a member while it inflates it, and an NVD
#: year's feed is one JSON document of hundreds of MB (266 MB: 527 MB peak RSS read whole,
#: 309 MB read this way).
_LARGE = 32 << 20
_SLICE = 1 << 20
# What reading one corrupt member can raise; none of it may end the load.
_MEMBER_ERRORS = (
    OSError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
)


class Blob(NamedTuple):
    """One candidate file: where it came from (for reports), its name, and its bytes (a
    ``bytearray`` for a large zip member, see ``_read_member``)."""

    location: str
    name: str
    data: bytes | bytearray


def suffix_of(name: str) -> str:
    """The lowercased last suffix of a file or member name (``".json"``)."""
    return os.path.splitext(name)[1].lower()


def iter_blobs(path: str | os.PathLike[str], stats: IngestStats) -> Iterator[Blob]:
    """Yield every data file under ``path`` (a file, a directory or a zip), in sorted order.

    Files whose names do not end in a data suffix are counted as ignored (README, LICENSE,
    an id allocator); a path that cannot be read is a skip, never an exception.
    """
    p = Path(path)
    if p.is_dir():
        yield from _iter_dir(p, stats)
    elif p.is_file():
        yield from _iter_file(str(p), p.name, stats)
    else:
        stats.skip(SkipReason.UNREADABLE, str(p), "no such file or directory")


def _iter_dir(root: Path, stats: IngestStats) -> Iterator[Blob]:
    for dirpath, dirnames, filenames in os.walk(root):
        # Sorted, so that two loads of the same tree yield records in the same order;
        # hidden directories (.git) hold no advisories.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            # Plain strings, not Path objects: tens of thousands of small files, where
            # pathlib's parsing showed up in profiles.
            yield from _iter_file(os.path.join(dirpath, name), name, stats)


def _iter_file(path: str, name: str, stats: IngestStats) -> Iterator[Blob]:
    suffix = suffix_of(name)
    if suffix == _ZIP:
        yield from _iter_zip(path, stats)
        return
    if suffix not in DATA_SUFFIXES or name in NOT_DATA:
        stats.ignored_files += 1
        return
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        stats.skip(SkipReason.UNREADABLE, path, str(exc))
        return
    stats.files += 1
    yield Blob(path, name, data)


def _iter_zip(path: str, stats: IngestStats) -> Iterator[Blob]:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        stats.skip(SkipReason.UNREADABLE, str(path), f"not a readable zip: {exc}")
        return
    with zf:
        # Members in archive order: osv.dev writes them sorted, and reading in central
        # directory order keeps the reads sequential on disk.
        for info in zf.infolist():
            if info.is_dir():
                continue
            base = info.filename.rsplit("/", 1)[-1]
            location = f"{path}!{info.filename}"
            suffix = suffix_of(base)
            if suffix == _ZIP:
                stats.skip(SkipReason.UNSUPPORTED_FORMAT, location, "zip inside a zip")
                continue
            # Hidden folders hold no advisories here either (a GitHub archive of a feed
            # repository has its ``.github/`` workflows in it).
            hidden = any(
                p.startswith(".") and p not in (".", "..") for p in info.filename.split("/")
            )
            if suffix not in DATA_SUFFIXES or hidden or base in NOT_DATA:
                stats.ignored_files += 1
                continue
            try:
                data = _read_member(zf, info)
            except _MEMBER_ERRORS as exc:
                # A corrupt member (CRC mismatch, truncated archive, unknown compression)
                # spoils that member only.
                stats.skip(SkipReason.UNREADABLE, location, str(exc))
                continue
            stats.files += 1
            yield Blob(location, base, data)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | bytearray:
    if info.file_size < _LARGE:
        return zf.read(info)
    buf = bytearray(info.file_size)
    with zf.open(info) as member:
        pos = 0
        while pos < len(buf) and (chunk := member.read(min(_SLICE, len(buf) - pos))):
            buf[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        # One read past the end: the member's CRC is checked when its stream ends, and a
        # member longer than its header says is as damaged as a shorter one.
        extra = member.read(1)
    if pos != len(buf) or extra:
        raise zipfile.BadZipFile(f"member is not the {info.file_size} bytes its header says")
    return buf
