"""An LMDB file checked before it is mapped: is it whole?

LMDB maps its file and reads pages straight from the mapping. A page past the end of a
truncated file (a copy cut short, a full disk, a file cut by hand) is not an error it can
return: the read faults and the process dies with SIGBUS, printing nothing. So the two
places that open LMDB files (the advisory index, the crawl state store) first read the
file's two meta pages themselves and refuse a file too short for what its newest
committed transaction says it holds.

The facts used, from LMDB's on-disk format (``MDB_page`` and ``MDB_meta`` in LMDB 0.9,
native byte order and word size; checked against files written by py-lmdb):

* pages 0 and 1 are meta pages; each starts with the 16-byte page header
  (``pgno``: size_t, ``pad``: u16, ``flags``: u16, ``lower``/``upper``: u16), whose flags
  include ``P_META`` (0x08);
* the meta follows the header: ``magic`` (u32, 0xBEEFC0DE), ``version`` (u32, 1),
  ``address`` (pointer), ``mapsize`` (size_t), two database records of 48 bytes each (the
  first one's leading u32 is the page size), ``last_pg`` (size_t: the last page in use)
  and ``txnid`` (size_t: the transaction that wrote this meta);
* page 1 starts at the page size that page 0 names; LMDB uses the meta with the larger
  ``txnid``, and every page up to its ``last_pg`` was written before it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

import lmdb

__all__ = ["DAMAGE", "LmdbFileError", "Meta", "check", "read_meta"]

#: What py-lmdb raises when the file's content is broken, rather than the environment
#: (permissions, locks, a full disk or reader table): the file has to be rebuilt.
DAMAGE: tuple[type[Exception], ...] = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
    lmdb.IncompatibleError,
    lmdb.PanicError,
    lmdb.BadTxnError,
    lmdb.BadValsizeError,
    lmdb.PageFullError,
    lmdb.CursorFullError,
)

_MAGIC = 0xBEEFC0DE
#: ``MDB_DATA_VERSION`` of LMDB 0.9 (what py-lmdb bundles and every file here is written by).
_VERSION = 1
_P_META = 0x08
#: ``MDB_page``'s header: pgno, pad, flags, lower, upper.
_PAGE_HEADER = struct.Struct("@NHHHH")
#: ``MDB_meta``: magic, version, address, mapsize, two ``MDB_db`` records (pad/psize,
#: flags, depth, branch, leaf and overflow page counts, entries, root), last_pg, txnid.
_META = struct.Struct("@IIPN" + "IHHNNNNN" * 2 + "NN")
#: LMDB's page sizes are powers of two; anything outside this range is not a meta page.
_MIN_PAGE, _MAX_PAGE = 512, 1 << 16


class LmdbFileError(Exception):
    """The file is not a whole LMDB file (the message says why; it never names the path,
    which callers add)."""


class Meta(NamedTuple):
    """What the newest valid meta page says."""

    page_size: int
    #: The last page the committed transaction uses: the file holds at least
    #: ``(last_page + 1) * page_size`` bytes.
    last_page: int
    txnid: int

    @property
    def needed(self) -> int:
        """The bytes the file must hold."""
        return (self.last_page + 1) * self.page_size


def _meta_at(data: bytes, offset: int) -> Meta | None:
    """The meta page at ``offset`` of ``data``, None when it is not a valid one."""
    if len(data) < offset + _PAGE_HEADER.size + _META.size:
        return None
    flags = _PAGE_HEADER.unpack_from(data, offset)[2]
    fields = _META.unpack_from(data, offset + _PAGE_HEADER.size)
    magic, version, page_size = fields[0], fields[1], fields[4]
    last_page, txnid = fields[-2], fields[-1]
    if not flags & _P_META or magic != _MAGIC or version != _VERSION:
        return None
    if not _MIN_PAGE <= page_size <= _MAX_PAGE or page_size & (page_size - 1):
        return None
    return Meta(page_size=page_size, last_page=last_page, txnid=txnid)


def read_meta(path: str | os.PathLike[str]) -> Meta:
    """The newest valid meta page of the LMDB file at ``path``.

    Raises ``LmdbFileError`` for a file shorter than its two meta pages or with no valid
    meta page (page 0 must be one: it names the page size that locates page 1), and
    ``OSError`` when the file cannot be read.
    """
    with open(path, "rb") as fh:
        head = fh.read(_PAGE_HEADER.size + _META.size)
        first = _meta_at(head, 0)
        if first is None:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise LmdbFileError("the file is empty")
            raise LmdbFileError("page 0 is not an LMDB meta page (not an LMDB file)")
        fh.seek(first.page_size)
        second = _meta_at(fh.read(_PAGE_HEADER.size + _META.size), 0)
        size = os.fstat(fh.fileno()).st_size
    if size < 2 * first.page_size:
        raise LmdbFileError(
            f"it is {size} bytes, shorter than its two {first.page_size}-byte meta pages"
        )
    if second is None or second.page_size != first.page_size:
        # LMDB keeps two metas so that a torn write of one leaves the other: page 0 alone
        # still says what the file holds.
        return first
    return second if second.txnid > first.txnid else first


def check(path: str | os.PathLike[str]) -> Meta:
    """``read_meta``, and the file must hold every page its newest meta says is in use
    (``LmdbFileError`` naming both sizes otherwise)."""
    meta = read_meta(path)
    size = Path(path).stat().st_size
    if size < meta.needed:
        raise LmdbFileError(
            f"it is {size} bytes but its last commit (transaction {meta.txnid}) uses "
            f"{meta.needed} bytes ({meta.last_page + 1} pages of {meta.page_size}): "
            "the file is truncated or damaged"
        )
    return meta
