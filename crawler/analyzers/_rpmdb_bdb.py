"""Header blobs out of a Berkeley DB hash file: rpm's ``Packages`` before rpm 4.16.

RHEL/CentOS 7 and 8 and Amazon Linux 2 keep ``/var/lib/rpm/Packages`` as a Berkeley DB *hash*
database: key = the 4-byte header instance number (host byte order), value = the header blob.
No libdb is involved here; the file is walked page by page (db_page.h), which is what rpm's
own read-only ``bdb_ro`` backend does too:

* page 0 is the hash metadata page: magic ``0x061561`` (its byte order is the file's byte
  order), page size, last page number, encryption and checksum flags;
* every ``P_HASH`` / ``P_HASH_UNSORTED`` page holds an index of item offsets, items paired as
  key, value; a value is either inline (``H_KEYDATA``) or a reference to a chain of
  ``P_OVERFLOW`` pages (``H_OFFPAGE``), which is where nearly every header lives since a
  header is bigger than a quarter page.

Scanning every hash page rather than walking buckets means a broken bucket chain loses
nothing, and order does not matter to the caller.
"""

from __future__ import annotations

import struct

from regsweep.crawler.analyzers._rpmdb_header import DatabaseError

__all__ = ["read_bdb"]

_HASH_MAGIC = 0x061561
_BTREE_MAGIC = 0x053162
_P_HASH_UNSORTED = 2
_P_OVERFLOW = 7
_P_HASHMETA = 8
_P_HASH = 13
_H_KEYDATA = 1
_H_DUPLICATE = 2
_H_OFFPAGE = 3
_H_OFFDUP = 4
_PAGE_HEADER = 26
# With checksums on, a PG_CHKSUM (2 unused bytes + a 4-byte checksum) follows the page header
# (db_page.h P_INP); checked against files db5.3_load writes with ``-c chksum=1``.
_CHKSUM_SIZE = 6
_DBMETA_CHKSUM = 0x01


def _overflow(
    data: bytes, order: str, pagesize: int, overhead: int, npages: int, pgno: int, tlen: int
) -> bytes:
    """Concatenate the overflow chain starting at ``pgno``; ``tlen`` is the promised length."""
    out = bytearray()
    seen = 0
    while pgno:
        # A chain longer than the file has pages, or one that loops, is corrupt.
        seen += 1
        if pgno >= npages or seen > npages:
            raise ValueError(f"overflow chain reaches page {pgno} (file has {npages})")
        base = pgno * pagesize
        if data[base + 25] != _P_OVERFLOW:
            raise ValueError(f"overflow chain reaches page {pgno} of type {data[base + 25]}")
        (pgno,) = struct.unpack_from(order + "I", data, base + 16)
        (length,) = struct.unpack_from(order + "H", data, base + 22)
        if overhead + length > pagesize:
            raise ValueError(f"overflow page claims {length} bytes")
        out += data[base + overhead : base + overhead + length]
        if len(out) > tlen:
            break
    if len(out) != tlen:
        raise ValueError(f"overflow chain holds {len(out)} bytes, item says {tlen}")
    return bytes(out)


def read_bdb(data: bytes) -> tuple[list[bytes], list[str]]:
    """The header blobs of a Berkeley DB hash ``Packages`` file, and notes on what was skipped.

    Raises ``DatabaseError`` when the file is not a readable hash database at all.
    """
    if len(data) < 512:
        raise DatabaseError(f"Berkeley DB file of {len(data)} bytes is too short")
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", data, 12)
        if magic in (_HASH_MAGIC, _BTREE_MAGIC):
            break
    else:
        raise DatabaseError("not a Berkeley DB file (no hash magic on page 0)")
    if magic == _BTREE_MAGIC:
        raise DatabaseError("Berkeley DB file is a btree, rpm's Packages is a hash database")
    pagesize, enc, ptype, metaflags = struct.unpack_from(order + "IBBB", data, 20)
    (last_pgno,) = struct.unpack_from(order + "I", data, 32)
    if ptype != _P_HASHMETA:
        raise DatabaseError(f"page 0 has type {ptype}, not a hash metadata page")
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        raise DatabaseError(f"invalid page size {pagesize}")
    if enc:
        raise DatabaseError("Berkeley DB file is encrypted")
    overhead = _PAGE_HEADER + (_CHKSUM_SIZE if metaflags & _DBMETA_CHKSUM else 0)
    notes: list[str] = []
    npages = len(data) // pagesize
    if last_pgno + 1 > npages:
        notes.append(f"Berkeley DB file truncated: {npages} of {last_pgno + 1} pages present")
    else:
        npages = last_pgno + 1
    blobs: list[bytes] = []
    for pgno in range(1, npages):
        base = pgno * pagesize
        if data[base + 25] not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", data, base + 20)
        if overhead + 2 * entries > pagesize:
            notes.append(f"hash page {pgno}: {entries} entries do not fit, page skipped")
            continue
        inp = struct.unpack_from(f"{order}{entries}H", data, base + overhead)
        # Items are pairs: index 2k is the key, 2k+1 its value.
        for i in range(1, entries, 2):
            key_off, off = inp[i - 1], inp[i]
            # An item runs up to the start of the previous one (items grow down the page).
            end = inp[i - 1]
            if not overhead + 2 * entries <= off < end <= pagesize or key_off >= pagesize:
                notes.append(f"hash page {pgno}: item {i} at bad offset {off}, skipped")
                continue
            kind = data[base + off]
            try:
                if kind == _H_KEYDATA:
                    value = data[base + off + 1 : base + end]
                elif kind == _H_OFFPAGE:
                    if off + 12 > end:
                        raise ValueError("truncated off-page item")
                    next_pgno, tlen = struct.unpack_from(order + "II", data, base + off + 4)
                    value = _overflow(data, order, pagesize, overhead, npages, next_pgno, tlen)
                elif kind in (_H_DUPLICATE, _H_OFFDUP):
                    raise ValueError("duplicate-key items are not used by rpm")
                else:
                    raise ValueError(f"unknown item type {kind}")
            except ValueError as exc:
                notes.append(f"hash page {pgno}: item {i}: {exc}, skipped")
                continue
            key = data[base + key_off : base + key_off + 5]
            # Key 0 (instance number 0) is rpm's record of the highest instance number, not
            # a header.
            if key == b"\x01\x00\x00\x00\x00" and len(value) == 4:
                continue
            blobs.append(value)
    return blobs, notes
