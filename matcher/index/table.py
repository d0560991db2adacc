"""Interval tables: one package's compiled advisories, as one flat byte string.

Layout (little-endian ``u32`` throughout), chosen so a query reads it in place from an LMDB
page without decoding anything:

    header   magic b"RSIT", version, n_ranges, n_exact, blob_off, payload_off, payload_len
    ranges   n_ranges x (hi_off, hi_len, lo_off, lo_len, payload), sorted by hi (unbounded last)
    exact    n_exact  x (key_off, key_len, payload), sorted by key
    blob     the key bytes the rows point into
    payload  msgpack list: what a hit means (advisory id, fixed versions, status …)

A range row is ``[lo, hi)`` in key order; ``hi_len == 0xFFFFFFFF`` is unbounded. Rows are
sorted by ``hi``, so a query bisects to the first row with ``hi > key`` and scans on,
keeping rows with ``lo <= key``: almost every advisory is ``[0, fixed)``, so the rows below
the bisect point — advisories fixed before the installed version — are never touched. The
``exact`` rows are OSV ``versions`` lists, bisected for equality.

``query``/``query_many`` are the compiled ones (``_table.pyx``) unless
``REGSWEEP_PURE_PYTHON=1``; the pure versions here are the reference the tests compare against.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Sequence
from typing import Any

import msgspec

from regsweep.matcher.index.errors import TableError
from regsweep.matcher.index.intervals import Interval

__all__ = ["TableError", "build", "header", "payloads", "pure_query", "pure_query_many", "query", "query_many"]

MAGIC = b"RSIT"
VERSION = 1
UNBOUNDED = 0xFFFFFFFF
_HEADER = struct.Struct("<4s6I")
_RANGE = struct.Struct("<5I")
_EXACT = struct.Struct("<3I")


def build(
    ranges: Sequence[tuple[Interval, int]],
    exact: Sequence[tuple[bytes, int]],
    payloads: Sequence[Any],
) -> bytes:
    """Pack ``((lo, hi), payload_index)`` ranges and ``(key, payload_index)`` exact versions."""
    blob = bytearray()
    offsets: dict[bytes, int] = {}

    def put(key: bytes) -> int:
        # Identical bounds (a fixed version shared by several advisories) are stored once.
        off = offsets.get(key)
        if off is None:
            off = offsets[key] = len(blob)
            blob.extend(key)
        return off

    rows = sorted(ranges, key=lambda r: (r[0][1] is None, r[0][1] or b"", r[0][0], r[1]))
    range_bytes = bytearray()
    for (lo, hi), payload in rows:
        hi_off, hi_len = (0, UNBOUNDED) if hi is None else (put(hi), len(hi))
        range_bytes += _RANGE.pack(hi_off, hi_len, put(lo), len(lo), payload)
    exact_bytes = bytearray()
    for key, payload in sorted(exact):
        exact_bytes += _EXACT.pack(put(key), len(key), payload)
    payload_bytes = msgspec.msgpack.encode(list(payloads))
    blob_off = _HEADER.size + len(range_bytes) + len(exact_bytes)
    payload_off = blob_off + len(blob)
    header = _HEADER.pack(
        MAGIC, VERSION, len(rows), len(exact), blob_off, payload_off, len(payload_bytes)
    )
    return b"".join((header, range_bytes, exact_bytes, bytes(blob), payload_bytes))


def header(table: bytes | memoryview) -> tuple[int, int, int, int, int]:
    """``(n_ranges, n_exact, blob_off, payload_off, payload_len)``, checked against the size."""
    if len(table) < _HEADER.size:
        raise TableError("interval table shorter than its header")
    magic, version, n_ranges, n_exact, blob_off, payload_off, payload_len = _HEADER.unpack_from(
        table
    )
    if magic != MAGIC or version != VERSION:
        raise TableError(f"not an interval table v{VERSION} (magic {bytes(magic)!r}, v{version})")
    if (
        blob_off != _HEADER.size + n_ranges * _RANGE.size + n_exact * _EXACT.size
        or not blob_off <= payload_off <= len(table)
        or payload_off + payload_len != len(table)
    ):
        raise TableError("interval table sections do not add up to its size")
    return n_ranges, n_exact, blob_off, payload_off, payload_len


def payloads(table: bytes | memoryview) -> list[Any]:
    """Decode the payload list (only needed when a query hits)."""
    _, _, _, payload_off, payload_len = header(table)
    result: list[Any] = msgspec.msgpack.decode(table[payload_off : payload_off + payload_len])
    return result


def pure_query(table: bytes | memoryview, key: bytes) -> list[int]:
    """Payload indices of every range containing ``key`` and every exact row equal to it.

    Sorted and without repeats. The reference implementation of the compiled query.
    """
    n_ranges, n_exact, blob_off, payload_off, _ = header(table)
    mv = memoryview(table)

    blob_len = payload_off - blob_off

    def key_at(off: int, length: int) -> bytes:
        if off + length > blob_len:
            raise TableError("interval table row points outside its key blob")
        return bytes(mv[blob_off + off : blob_off + off + length])

    rows = [_RANGE.unpack_from(mv, _HEADER.size + i * _RANGE.size) for i in range(n_ranges)]
    his = [None if r[1] == UNBOUNDED else key_at(r[0], r[1]) for r in rows]
    # First row whose hi > key; unbounded rows sort last and always qualify.
    first = bisect.bisect_right([h for h in his if h is not None], key)
    hits = {
        rows[i][4] for i in range(first, n_ranges) if key_at(rows[i][2], rows[i][3]) <= key
    }
    base = _HEADER.size + n_ranges * _RANGE.size
    exact = [_EXACT.unpack_from(mv, base + i * _EXACT.size) for i in range(n_exact)]
    hits.update(p for off, ln, p in exact if key_at(off, ln) == key)
    return sorted(hits)


def pure_query_many(table: bytes | memoryview, keys: Sequence[bytes]) -> list[list[int]]:
    """``[pure_query(table, k) for k in keys]``."""
    return [pure_query(table, k) for k in keys]


if os.environ.get("REGSWEEP_PURE_PYTHON", "") not in ("", "0"):
    query = pure_query
    query_many = pure_query_many
else:
    from regsweep.matcher.index._table import query, query_many  # noqa: F401
