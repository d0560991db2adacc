"""Range compilation and interval tables against the OSV spec's own evaluation algorithm.

Versions here are integers keyed with the canonical number encoding, so the reference
(``osv_is_vulnerable``, the spec's pseudocode transcribed) compares ints while the system
under test compares only keys: any disagreement is in the compilation or the table.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.index import _table, table
from regsweep.matcher.index.intervals import (
    MIN_KEY,
    EventKind,
    compile_range,
    contains,
    successor,
)
from regsweep.matcher.versions.pure._keys import put_number

E = EventKind


def k(n: int) -> bytes:
    out = bytearray()
    put_number(out, str(n))
    return bytes(out)


def osv_is_vulnerable(v: int, events: list[tuple[EventKind, int | None]]) -> bool:
    """The OSV spec's IncludedInRanges for one range, on plain ints (None: limit "*")."""
    limits = [x for kind, x in events if kind is E.LIMIT]
    if limits and not any(x is None or v < x for x in limits):
        return False
    vulnerable = False
    timeline = sorted((x, kind) for kind, x in events if kind is not E.LIMIT and x is not None)
    for x, kind in timeline:
        if kind is E.INTRODUCED and v >= x:
            vulnerable = True
        elif kind is E.FIXED and v >= x or kind is E.LAST_AFFECTED and v > x:
            vulnerable = False
    return vulnerable


def keyed(events: list[tuple[EventKind, int | None]]) -> list[tuple[EventKind, bytes | None]]:
    return [(kind, None if x is None else k(x)) for kind, x in events]


event_lists = st.lists(
    st.tuples(
        st.sampled_from([E.INTRODUCED, E.FIXED, E.LAST_AFFECTED, E.LIMIT]),
        st.one_of(st.none(), st.integers(0, 40)),
    ).filter(lambda e: e[1] is not None or e[0] is E.LIMIT),
    min_size=1,
    max_size=8,
)


@given(event_lists)
def test_compiled_range_equals_the_osv_fold_for_every_version(events: list) -> None:
    """For any events in any order, a key is in the intervals exactly when OSV says affected."""
    intervals = compile_range(keyed(events))
    for v in range(0, 45):
        assert contains(intervals, k(v)) is osv_is_vulnerable(v, events), (v, intervals)
    # Intervals come out sorted, disjoint and non-empty.
    for (lo1, hi1), (lo2, _) in zip(intervals, intervals[1:], strict=False):
        assert hi1 is not None and hi1 < lo2 and lo1 < hi1


@pytest.mark.parametrize(
    ("events", "affected", "unaffected"),
    [
        ([(E.INTRODUCED, 0), (E.FIXED, 5)], [0, 4], [5, 6]),
        ([(E.INTRODUCED, 2), (E.LAST_AFFECTED, 5)], [2, 5], [1, 6]),
        ([(E.FIXED, 5), (E.INTRODUCED, 0)], [0, 4], [5]),  # events in any order
        ([(E.INTRODUCED, 1), (E.FIXED, 3), (E.INTRODUCED, 7)], [1, 2, 7, 99], [0, 3, 6]),
        ([(E.INTRODUCED, 0), (E.LIMIT, 3)], [0, 2], [3]),
        ([(E.INTRODUCED, 0), (E.LIMIT, 3), (E.LIMIT, None)], [3, 100], []),  # "*" is infinity
        ([(E.INTRODUCED, 4), (E.FIXED, 4)], [], [3, 4, 5]),  # introduced and fixed together
        ([(E.INTRODUCED, 4), (E.LAST_AFFECTED, 4)], [4], [3, 5]),  # one version only
    ],
)
def test_named_event_combinations(
    events: list[tuple[EventKind, int | None]], affected: list[int], unaffected: list[int]
) -> None:
    """Each OSV event combination affects exactly the versions the spec says."""
    intervals = compile_range(keyed(events))
    assert all(contains(intervals, k(v)) for v in affected)
    assert not any(contains(intervals, k(v)) for v in unaffected)


def test_successor_is_the_next_key() -> None:
    """key < successor(key), and nothing sorts strictly between them."""
    assert k(5) < successor(k(5)) < k(6)
    assert not (successor(k(5)) > k(5) + b"\x00")


def _table_from(advisories: list[tuple[list[tuple[EventKind, int | None]], list[int]]]) -> bytes:
    ranges, exact = [], []
    for payload, (events, versions) in enumerate(advisories):
        ranges += [(iv, payload) for iv in compile_range(keyed(events))]
        exact += [(k(v), payload) for v in versions]
    return table.build(ranges, exact, [f"ADV-{i}" for i in range(len(advisories))])


tables = st.lists(st.tuples(event_lists, st.lists(st.integers(0, 40), max_size=3)), max_size=12)


@given(tables)
def test_table_query_equals_osv_evaluation_compiled_and_pure(advisories: list) -> None:
    """The compiled and pure table queries return exactly the advisories OSV calls affected."""
    blob = _table_from(advisories)
    keys = [k(v) for v in range(45)]
    compiled = _table.query_many(blob, keys)
    pure = table.pure_query_many(blob, keys)
    for v in range(45):
        expected = [
            i
            for i, (events, versions) in enumerate(advisories)
            if osv_is_vulnerable(v, events) or v in versions
        ]
        assert compiled[v] == pure[v] == expected, v
        assert _table.query(blob, k(v)) == expected
    assert table.payloads(blob) == [f"ADV-{i}" for i in range(len(advisories))]


def test_an_empty_key_and_an_empty_table_are_fine() -> None:
    """b"" (the lowest key) queries correctly; a table with no rows answers nothing."""
    # OSV's introduced "0" is MIN_KEY (b""), below every version key.
    blob = table.build([((MIN_KEY, k(3)), 0)], [], ["ADV-0"])
    assert _table.query(blob, b"") == [0] == table.pure_query(blob, b"")
    assert _table.query(blob, k(3)) == [] == table.pure_query(blob, k(3))
    empty = table.build([], [], [])
    assert _table.query(empty, k(1)) == [] == table.pure_query(empty, k(1))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:10],  # truncated header
        lambda b: b"XXXX" + b[4:],  # wrong magic
        lambda b: b[:-1],  # sections no longer add up
        # a range row whose hi offset points far outside the blob
        lambda b: b[:28] + (0xFFFFFF).to_bytes(4, "little") + b[32:],
    ],
)
def test_corrupt_tables_raise_table_error_never_read_out_of_bounds(mutate) -> None:  # type: ignore[no-untyped-def]
    """A damaged table is a TableError from both implementations, not a crash or a miss."""
    blob = _table_from([([(E.INTRODUCED, 0), (E.FIXED, 30)], [5])])
    bad = mutate(blob)
    with pytest.raises(table.TableError):
        _table.query(bad, k(5))
    with pytest.raises(table.TableError):
        table.pure_query(bad, k(5))
