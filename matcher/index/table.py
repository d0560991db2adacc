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
``REGSWEEP_PURE_PYTHON=1`` (``regsweep.matcher._pure``); the pure versions here are the
reference the tests compare against.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from regsweep.matcher._pure import PURE_PYTHON
from regsweep.matcher.index.errors import TableError
from regsweep.matcher.index.intervals import Interval

__all__ = [
    "TableError",
    "build",
    "header",
    "payload_bytes",
    "payloads",
    "pure_query",
    "pure_query_many",
    "query",
    "query_many",
]

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


def payload_bytes(table: bytes | memoryview) -> memoryview:
    """The msgpack payload section, for a caller that decodes it into its own type."""
    _, _, _, payload_off, payload_len = header(table)
    return memoryview(table)[payload_off : payload_off + payload_len]


def payloads(table: bytes | memoryview) -> list[Any]:
    """Decode the payload list as plain objects (only needed when a query hits)."""
    result: list[Any] = msgspec.msgpack.decode(payload_bytes(table))
    return result


def _parse(
    table: bytes | memoryview,
) -> tuple[list[tuple[bytes | None, bytes, int]], list[tuple[bytes, int]]]:
    # The whole table as Python values: ``(hi, lo, payload)`` rows and ``(key, payload)``.
    n_ranges, n_exact, blob_off, payload_off, _ = header(table)
    mv = memoryview(table)
    blob_len = payload_off - blob_off

    def key_at(off: int, length: int) -> bytes:
        if off + length > blob_len:
            raise TableError("interval table row points outside its key blob")
        return bytes(mv[blob_off + off : blob_off + off + length])

    ranges = []
    for i in range(n_ranges):
        hi_off, hi_len, lo_off, lo_len, payload = _RANGE.unpack_from(
            mv, _HEADER.size + i * _RANGE.size
        )
        hi = None if hi_len == UNBOUNDED else key_at(hi_off, hi_len)
        ranges.append((hi, key_at(lo_off, lo_len), payload))
    base = _HEADER.size + n_ranges * _RANGE.size
    exact = []
    for i in range(n_exact):
        off, length, payload = _EXACT.unpack_from(mv, base + i * _EXACT.size)
        exact.append((key_at(off, length), payload))
    return ranges, exact


def pure_query_many(table: bytes | memoryview, keys: Sequence[bytes]) -> list[list[int]]:
    """Payload indices of every range containing each key and every exact row equal to it.

    Sorted and without repeats. The reference implementation of the compiled query: it
    reads the same layout but scans linearly, so it does not share the bisect under test.
    """
    ranges, exact = _parse(table)
    out = []
    for key in keys:
        hits = {p for hi, lo, p in ranges if lo <= key and (hi is None or key < hi)}
        hits.update(p for k, p in exact if k == key)
        out.append(sorted(hits))
    return out


def pure_query(table: bytes | memoryview, key: bytes) -> list[int]:
    """``pure_query_many(table, [key])[0]``."""
    return pure_query_many(table, [key])[0]


query: Callable[[bytes | memoryview, bytes], list[int]]
query_many: Callable[[bytes | memoryview, Sequence[bytes]], list[list[int]]]
if PURE_PYTHON:
    query, query_many = pure_query, pure_query_many
else:
    from regsweep.matcher.index import _table

    query, query_many = _table.query, _table.query_many
