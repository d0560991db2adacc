"""The YAML reader: strings stay strings, nulls are None, hostile YAML is an error."""

from __future__ import annotations

import pytest

from regsweep.matcher.advisories._yaml import YAMLError, load_yaml


def test_plain_scalars_are_strings_and_only_unquoted_nulls_are_none() -> None:
    """Invariant: no YAML 1.1 implicit typing (versions, names and ids stay exactly as
    written); an empty value, ``~`` and ``null`` are None unless quoted."""
    doc = load_yaml(
        b"a: 1.10\nb: 0\nc: on\nd: 2021-01-01\ne:\nf: ~\ng: null\nh: 'null'\ni: \"\"\n"
        b"j: !!null x\nk: [1, yes]\n"
    )
    assert doc == {
        "a": "1.10",
        "b": "0",
        "c": "on",
        "d": "2021-01-01",
        "e": None,
        "f": None,
        "g": None,
        "h": "null",
        "i": "",
        "j": None,
        "k": ["1", "yes"],
    }


def test_empty_document_is_none() -> None:
    """Invariant: an empty file is no document, not an error."""
    assert load_yaml(b"") is None
    assert load_yaml(b"# only a comment\n") is None


@pytest.mark.parametrize(
    "data",
    [
        b"a: [unclosed\n",  # syntax error
        b"---\na: 1\n---\nb: 2\n",  # two documents where one is expected
        b"a: &x [*x]\n",  # an alias inside itself: infinite
        b"? {a: 1}\n: b\n",  # a mapping used as a key: unhashable
    ],
)
def test_malformed_or_hostile_yaml_raises_yaml_error(data: bytes) -> None:
    """Invariant: every way YAML can fail surfaces as ``YAMLError`` (counted as malformed by
    the load), never as another exception that would end a load."""
    with pytest.raises(YAMLError):
        load_yaml(data)
