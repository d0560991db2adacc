"""Reading LMDB's meta pages ourselves, checked against what LMDB itself reports."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from regsweep.matcher import lmdbfile


def _commit(env: lmdb.Environment, n: int, size: int) -> None:
    with env.begin(write=True) as txn:
        for i in range(n):
            txn.put(f"key-{i}-{size}".encode(), bytes([i % 251]) * size)


def test_meta_pages_read_as_lmdb_reports_them_after_every_commit(tmp_path: Path) -> None:
    """After each commit (each writes the other meta page), the newest meta says what
    LMDB's own ``info``/``stat`` say: page size, last page, transaction id; and the file
    is exactly as long as the pages in use."""
    path = tmp_path / "x.lmdb"
    env = lmdb.open(str(path), subdir=False, map_size=1 << 28)
    try:
        for round_, (n, size) in enumerate([(10, 100), (500, 300), (3, 20_000), (2000, 50)]):
            _commit(env, n, size)
            info, stat = env.info(), env.stat()
            meta = lmdbfile.check(path)
            assert meta == lmdbfile.Meta(
                page_size=stat["psize"], last_page=info["last_pgno"], txnid=info["last_txnid"]
            ), round_
            assert path.stat().st_size == meta.needed
    finally:
        env.close()


def test_a_damaged_meta_page_1_leaves_page_0_and_a_damaged_page_0_is_refused(
    tmp_path: Path,
) -> None:
    """LMDB keeps two metas, one per commit in turn: page 0's alone still says what the
    file holds; page 0 is the one that names the page size, so without it there is none."""
    path = tmp_path / "x.lmdb"
    env = lmdb.open(str(path), subdir=False, map_size=1 << 28)
    _commit(env, 100, 100)
    _commit(env, 100, 200)
    env.close()
    newest = lmdbfile.check(path)
    data = path.read_bytes()
    page = newest.page_size

    def damaged(offset: int) -> bytes:
        out = bytearray(data)
        out[offset] ^= 0xFF
        return bytes(out)

    path.write_bytes(damaged(page + 16))  # page 1's magic
    left = lmdbfile.check(path)
    assert left.page_size == page and left.txnid in (newest.txnid, newest.txnid - 1)
    path.write_bytes(damaged(16))  # page 0's magic
    with pytest.raises(lmdbfile.LmdbFileError, match="page 0 is not an LMDB meta page"):
        lmdbfile.check(path)
    path.write_bytes(data[: 2 * page - 1])
    with pytest.raises(lmdbfile.LmdbFileError, match="shorter than its two"):
        lmdbfile.check(path)
    path.write_bytes(b"")
    with pytest.raises(lmdbfile.LmdbFileError, match="empty"):
        lmdbfile.check(path)
    path.write_bytes(data[: newest.needed - 1])
    with pytest.raises(lmdbfile.LmdbFileError, match="truncated"):
        lmdbfile.check(path)
