"""The rpm header blob, as every rpmdb backend stores it (``headerExport`` format).

Layout (all integers big-endian; there is no magic in a stored header, unlike a header
inside an ``.rpm`` file)::

    il     u32                      number of index entries
    dl     u32                      size of the data store
    il × { tag i32, type u32, offset i32, count u32 }
    data   dl bytes

Strings are NUL-terminated inside the data store; a STRING_ARRAY is ``count`` of them back to
back; an I18NSTRING is one per locale (the first is the C locale). INT32 arrays are aligned
and big-endian. The region tags (61–63) describe signing regions and are not needed here.
Only the tags regsweep uses are decoded; everything else is skipped unread.
"""

from __future__ import annotations

import struct

import msgspec

from regsweep.crawler.analyzers.interface import AnalyzerError

__all__ = ["DatabaseError", "HeaderError", "RpmHeader", "parse_header"]

# rpm's own sanity limits (lib/header_internal.h): HEADER_TAGS_MAX, HEADER_DATA_MAX. A blob
# claiming more is corrupt or hostile, and checking first keeps us from slicing on its word.
_MAX_TAGS = 0xFFFF
_MAX_DATA = 0x0FFFFFFF

_INT32 = 4
_STRING = 6
_STRING_ARRAY = 8
_I18NSTRING = 9

_NAME = 1000
_VERSION = 1001
_RELEASE = 1002
_EPOCH = 1003
_OLDFILENAMES = 1027
_ARCH = 1022
_SOURCERPM = 1044
_DIRINDEXES = 1116
_BASENAMES = 1117
_DIRNAMES = 1118
_MODULARITYLABEL = 5096
_WANTED = frozenset(
    {
        _NAME,
        _VERSION,
        _RELEASE,
        _EPOCH,
        _OLDFILENAMES,
        _ARCH,
        _SOURCERPM,
        _DIRINDEXES,
        _BASENAMES,
        _DIRNAMES,
        _MODULARITYLABEL,
    }
)
_ENTRY = struct.Struct(">iIiI")


class DatabaseError(AnalyzerError):
    """A whole rpm database (sqlite, Berkeley DB or NDB file) is unreadable."""


class HeaderError(ValueError):
    """A header blob (or one of the tags regsweep needs) is malformed."""


class RpmHeader(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The fields of one installed package that regsweep uses."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None
    sourcerpm: str | None = None
    modularitylabel: str | None = None
    #: Absolute paths of the package's files, as rpm records them (``/usr/bin/x``).
    files: list[str] = []
    #: Why the file list (but not the package) could not be read, if so.
    files_error: str | None = None


def _text(raw: bytes) -> str:
    # rpm does not enforce an encoding; UTF-8 is what every distro writes. A stray byte must
    # not lose the package, and the output is JSON, so it becomes U+FFFD rather than a
    # surrogate that the encoder would reject.
    return raw.decode("utf-8", "replace")


class _Store:
    """The data store of one header and its wanted index entries."""

    __slots__ = ("data", "entries")

    def __init__(self, data: bytes, entries: dict[int, tuple[int, int, int]]) -> None:
        self.data = data
        self.entries = entries

    def strings(self, tag: int) -> list[str] | None:
        """The strings of a STRING / STRING_ARRAY / I18NSTRING tag (None when absent)."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        typ, offset, count = entry
        if typ not in (_STRING, _STRING_ARRAY, _I18NSTRING):
            raise HeaderError(f"tag {tag}: type {typ} is not a string type")
        if typ == _STRING and count != 1:
            raise HeaderError(f"tag {tag}: STRING with count {count}")
        data = self.data
        # Every string takes at least its NUL, so a count above the room left is a lie; the
        # check comes before split() so that a hostile count costs nothing.
        if count == 0 or count > len(data) - offset:
            raise HeaderError(f"tag {tag}: {count} strings at offset {offset} overrun the store")
        if count == 1:
            end = data.find(b"\0", offset)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            return [_text(data[offset:end])]
        parts = data[offset:].split(b"\0", count)
        if len(parts) <= count:
            raise HeaderError(f"tag {tag}: fewer than {count} terminated strings")
        return [_text(p) for p in parts[:count]]

    def string(self, tag: int) -> str | None:
        """The first string of a string tag (an I18NSTRING's C locale), or None."""
        values = self.strings(tag)
        return None if values is None else values[0]

    def int32s(self, tag: int) -> tuple[int, ...] | None:
        """The values of an INT32 tag (None when absent)."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        typ, offset, count = entry
        if typ != _INT32:
            raise HeaderError(f"tag {tag}: type {typ} is not INT32")
        if count == 0 or offset % 4 or count > (len(self.data) - offset) // 4:
            raise HeaderError(f"tag {tag}: {count} INT32s at offset {offset} overrun the store")
        return struct.unpack_from(f">{count}I", self.data, offset)


def _store(blob: bytes) -> _Store:
    if len(blob) < 8:
        raise HeaderError(f"header blob of {len(blob)} bytes is shorter than its preamble")
    il, dl = struct.unpack_from(">II", blob)
    if not 0 < il <= _MAX_TAGS:
        raise HeaderError(f"header claims {il} index entries")
    if dl > _MAX_DATA:
        raise HeaderError(f"header claims a {dl}-byte data store")
    start = 8 + il * _ENTRY.size
    if start + dl > len(blob):
        raise HeaderError(f"header needs {start + dl} bytes, blob has {len(blob)}")
    data = blob[start : start + dl]
    entries: dict[int, tuple[int, int, int]] = {}
    for tag, typ, offset, count in _ENTRY.iter_unpack(blob[8:start]):
        if tag in _WANTED:
            if not 0 <= offset < dl:
                raise HeaderError(f"tag {tag}: offset {offset} outside the {dl}-byte store")
            # A tag seen twice: the later entry is the "dribble" rpm appended after the
            # immutable region and is the one rpm itself reads.
            entries[tag] = (typ, offset, count)
    return _Store(data, entries)


def _files(store: _Store) -> list[str]:
    basenames = store.strings(_BASENAMES)
    if basenames is None:
        # Packages built before rpm 4.1 (or with _noPayloadPrefix) list whole paths.
        return store.strings(_OLDFILENAMES) or []
    dirnames = store.strings(_DIRNAMES) or []
    dirindexes = store.int32s(_DIRINDEXES) or ()
    if len(dirindexes) != len(basenames):
        raise HeaderError(f"{len(basenames)} basenames but {len(dirindexes)} dirindexes")
    ndirs = len(dirnames)
    out: list[str] = []
    for index, base in zip(dirindexes, basenames, strict=True):
        if index >= ndirs:
            raise HeaderError(f"dirindex {index} outside {ndirs} dirnames")
        out.append(dirnames[index] + base)
    return out


def parse_header(blob: bytes) -> RpmHeader:
    """Decode the fields regsweep needs from one stored header blob.

    Raises ``HeaderError`` when the blob or its name/version/release is unreadable; a bad file
    list alone is reported in ``files_error`` so that the package itself is not lost.
    """
    store = _store(blob)
    name = store.string(_NAME)
    version = store.string(_VERSION)
    release = store.string(_RELEASE)
    if not name or version is None or release is None:
        raise HeaderError("header lacks a name, version or release")
    epochs = store.int32s(_EPOCH)
    try:
        files = _files(store)
        files_error = None
    except HeaderError as exc:
        files, files_error = [], str(exc)
    return RpmHeader(
        name=name,
        version=version,
        release=release,
        epoch=epochs[0] if epochs else None,
        arch=store.string(_ARCH),
        sourcerpm=store.string(_SOURCERPM),
        modularitylabel=store.string(_MODULARITYLABEL),
        files=files,
        files_error=files_error,
    )
