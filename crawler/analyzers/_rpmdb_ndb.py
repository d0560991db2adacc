"""Header blobs out of rpm's NDB ``Packages.db`` (SUSE, rpm's lib/backend/ndb/rpmpkg.c).

Layout (all integers little-endian)::

    header    32 bytes   "RpmP", version 0, generation, slot page count, next package index
    slots     16 bytes each, filling the slot pages after the header:
              "Slot", package index, block offset, block count   (offset 0 = free slot)
    blobs     at block offset × 16:
              "BlbS", package index, generation, length, <length bytes of header>,
              zero padding to a 16-byte block, then adler32, length, "BlbE"

The adler32 covers the blob head, the header and the padding, so a torn or overwritten
blob is caught here rather than decoded into garbage.
"""

from __future__ import annotations

import struct
import zlib

from regsweep.crawler.analyzers._rpmdb_header import DatabaseError

__all__ = ["read_ndb"]

_PKGDB_MAGIC = b"RpmP"
_SLOT_MAGIC = b"Slot"
_BLOB_HEAD = b"BlbS"
_BLOB_TAIL = b"BlbE"
_PAGE_SIZE = 4096
_BLK_SIZE = 16
_SLOT_SIZE = 16
_HEADER_SIZE = 32
_HEAD_SIZE = 16
_TAIL_SIZE = 12


def _blob(data: bytes, pkgidx: int, blkoff: int, blkcnt: int) -> bytes:
    start = blkoff * _BLK_SIZE
    end = start + blkcnt * _BLK_SIZE
    if end > len(data):
        raise ValueError(f"blob at block {blkoff} runs past the end of the file")
    magic, idx, _generation, length = struct.unpack_from("<4sIII", data, start)
    if magic != _BLOB_HEAD or idx != pkgidx:
        raise ValueError(f"no blob for package {pkgidx} at block {blkoff}")
    if blkcnt != (_HEAD_SIZE + length + _TAIL_SIZE + _BLK_SIZE - 1) // _BLK_SIZE:
        raise ValueError(f"blob length {length} does not fill its {blkcnt} blocks")
    adler, tail_len, tail = struct.unpack_from("<II4s", data, end - _TAIL_SIZE)
    if tail != _BLOB_TAIL or tail_len != length:
        raise ValueError(f"blob of package {pkgidx} has a bad tail")
    if zlib.adler32(data[start : end - _TAIL_SIZE]) != adler:
        raise ValueError(f"blob of package {pkgidx} fails its adler32 check")
    return data[start + _HEAD_SIZE : start + _HEAD_SIZE + length]


def read_ndb(data: bytes) -> tuple[list[bytes], list[str]]:
    """The header blobs of an NDB ``Packages.db``, and notes on what was skipped.

    Raises ``DatabaseError`` when the file is not a readable NDB package database.
    """
    if len(data) < _PAGE_SIZE or data[:4] != _PKGDB_MAGIC:
        raise DatabaseError("not an rpm NDB Packages.db (no RpmP header)")
    version, _generation, slotnpages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise DatabaseError(f"NDB version {version} is not supported")
    if slotnpages == 0 or slotnpages * _PAGE_SIZE > len(data):
        raise DatabaseError(f"NDB claims {slotnpages} slot pages in {len(data)} bytes")
    # Blobs start after the slot pages; a slot pointing inside them is corrupt.
    min_blk = slotnpages * (_PAGE_SIZE // _BLK_SIZE)
    blobs: list[bytes] = []
    notes: list[str] = []
    bad_slots = 0
    for off in range(_HEADER_SIZE, slotnpages * _PAGE_SIZE, _SLOT_SIZE):
        magic, pkgidx, blkoff, blkcnt = struct.unpack_from("<4sIII", data, off)
        if magic != _SLOT_MAGIC:
            # Counted, not noted one by one: a garbage slot page would mean hundreds of notes.
            bad_slots += 1
            continue
        if blkoff == 0:
            continue
        if not pkgidx or not blkcnt or blkoff < min_blk:
            notes.append(f"NDB slot at byte {off} is invalid, skipped")
            continue
        try:
            blobs.append(_blob(data, pkgidx, blkoff, blkcnt))
        except ValueError as exc:
            notes.append(f"NDB package {pkgidx}: {exc}, skipped")
    if bad_slots:
        notes.append(f"{bad_slots} NDB slots without Slot magic skipped")
    return blobs, notes
