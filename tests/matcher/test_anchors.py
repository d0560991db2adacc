"""``matcher.anchors``: the compiled one-pass literal search answers as the reference does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher._anchors import AnchorSet as Compiled
from regsweep.matcher.anchors import PureAnchorSet
from regsweep.matcher.secrets import FORMAT_ANCHORS

REAL = [a.encode() for a in FORMAT_ANCHORS]


@given(
    anchors=st.lists(st.binary(min_size=2, max_size=6), min_size=1, max_size=8),
    data=st.binary(max_size=300),
    plant=st.booleans(),
    at=st.integers(min_value=0, max_value=300),
)
def test_compiled_agrees_with_the_reference(
    anchors: list[bytes], data: bytes, plant: bool, at: int
) -> None:
    if plant:  # half the cases hold an anchor, at any position, the end included
        k = at % (len(data) + 1)
        data = data[:k] + anchors[at % len(anchors)] + data[k:]
    assert Compiled(anchors).search(data) == PureAnchorSet(anchors).search(data)


@pytest.mark.parametrize("anchor", REAL)
def test_every_format_anchor_is_found_at_the_start_middle_and_end(anchor: bytes) -> None:
    compiled = Compiled(REAL)
    for data in (anchor + b" tail", b"head " + anchor + b" tail", b"head " + anchor, anchor):
        assert compiled.search(data)
    assert not compiled.search(anchor[:-1])  # cut at the end of the buffer


def test_text_without_anchors_and_short_anchors() -> None:
    assert not Compiled(REAL).search(b"nothing to see here\n" * 1000)
    assert not Compiled(REAL).search(b"")
    for cls in (Compiled, PureAnchorSet):
        with pytest.raises(ValueError, match="shorter than 2"):
            cls([b"x"])
