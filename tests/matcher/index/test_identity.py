"""The compiled identity table against its pure-Python reference, and its edge cases."""

from __future__ import annotations

import gc
import random
import sys

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from regsweep.matcher import _identity
from regsweep.matcher.identity import PureIdentityTable
from regsweep.matcher.match import IDENTITY_FIELDS, IDENTITY_FOLD
from regsweep.matcher.records import ImageRef, Package

TABLES = [_identity.IdentityTable, PureIdentityTable]


class Failure(msgspec.Struct, frozen=True):
    why: str


def _error(i: int, f: Failure) -> tuple[int, str]:
    return (i, f.why)


def _random_packages(rng: random.Random, n: int, distinct: int) -> list[Package]:
    pool = [
        Package(
            name=f"p{rng.randrange(distinct // 3 + 1)}",
            version=f"1.{i}" if rng.random() < 0.9 else "",
            type=rng.choice(["deb", "apk", "pypi"]),
            ecosystem=rng.choice(["Debian:12", None, "PyPI"]),
            source_name=rng.choice([None, "src", f"s{i % 7}"]),
            source_version=rng.choice([None, "1"]),
            owner=rng.choice([None, None, "dpkg:python3-x"]),
            layer=f"sha256:{i}",  # not part of the identity
        )
        for i in range(distinct)
    ]
    return [rng.choice(pool) for _ in range(n)]


def _reencoded(pkgs: list[Package]) -> list[Package]:
    # Equal packages as distinct objects with distinct (unhashed) strings, as NDJSON gives.
    return msgspec.json.decode(msgspec.json.encode(pkgs), type=list[Package])


@pytest.mark.parametrize("fold", [None, IDENTITY_FOLD])
@pytest.mark.parametrize("seed", range(3))
def test_compiled_table_equals_the_reference_across_batches(seed: int, fold: object) -> None:
    rng = random.Random(seed)
    compiled = _identity.IdentityTable(Package, IDENTITY_FIELDS, fold)
    pure = PureIdentityTable(Package, IDENTITY_FIELDS, fold)  # type: ignore[arg-type]
    pkgs = _random_packages(rng, 30_000, 6_000)
    results: list[object] = []
    first: dict[tuple[object, ...], Package] = {}  # identity -> its first package

    def ident(p: Package) -> tuple[object, ...]:
        t = tuple(getattr(p, n) for n in IDENTITY_FIELDS)
        return t if pure._fold is None else pure._folded(t, *pure._fold)

    # Batches of the same objects, then the same packages re-decoded (equal, not identical).
    for batch in (pkgs[:10_000], pkgs[10_000:], _reencoded(pkgs[5_000:25_000])):
        fresh_c = compiled.assign(batch)
        fresh_p = pure.assign(batch)
        assert fresh_c == fresh_p
        for i in fresh_c:
            p = first[ident(batch[i])] = batch[i]
            results.append(Failure(p.name) if p.version == "" else (p.name, p.version))
        out_c = compiled.fan_out(results, Failure, _error)
        out_p = pure.fan_out(results, Failure, _error)
        assert out_c == out_p
        assert len(compiled) == len(pure)
        # Every package got the result computed for the first package of its identity.
        for p, r in zip(batch, out_c[0], strict=True):
            q = first[ident(p)]
            assert r == (() if q.version == "" else (q.name, q.version))
        assert [i for i, _ in out_c[1]] == [
            i for i, p in enumerate(batch) if first[ident(p)].version == ""
        ]


def test_identity_is_the_matching_fields_only() -> None:
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    a = Package(name="x", version="1", type="deb", layer="sha256:a", path="/a")
    b = Package(name="x", version="1", type="deb", layer="sha256:b", purl="pkg:deb/x@1")
    c = Package(name="x", version="1", type="deb", owner="dpkg:x")
    d = Package(name="x", version="1", type="deb", source_name="")  # "" is not None
    assert table.assign([a, b, c, d, a]) == [0, 2, 3]
    out, errors = table.fan_out([("a",), ("c",), ("d",)], Failure, _error)
    assert out == [("a",), ("a",), ("c",), ("d",), ("a",)]
    assert errors == []


@pytest.mark.parametrize("cls", TABLES)
def test_fold_drops_the_binary_name_and_version_of_a_distro_package_with_a_source(
    cls: type,
) -> None:
    table = cls(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
    src = {"ecosystem": "Debian:12", "source_name": "openssl", "source_version": "3.0.11-1"}
    pkgs = [
        Package(name="libssl3", version="3.0.11-1", type="deb", **src),
        Package(name="openssl", version="3.0.11-1+b1", type="deb", **src),  # same source build
        Package(name="libssl3", version="3.0.11-1", type="deb", ecosystem="Debian:12"),
        Package(name="openssl", version="3.0.11-1", type="deb", ecosystem="Debian:12"),
        # A binary version counts when the source version is None or "" …
        Package(name="libssl3", version="9", type="deb", ecosystem="Debian:12",
                source_name="openssl"),
        Package(name="libssl3", version="9", type="deb", ecosystem="Debian:12",
                source_name="openssl", source_version=""),
        Package(name="libcrypto3", version="9", type="deb", ecosystem="Debian:12",
                source_name="openssl"),  # … and the binary name does not
        # Another source, or a type the rules do not fold (a language package is looked up
        # by its own name whatever its source fields say).
        Package(name="libssl3", version="3.0.11-1", type="deb", ecosystem="Debian:12",
                source_name="openssl3", source_version="3.0.11-1"),
        Package(name="libssl3", version="3.0.11-1", type="pypi", **src),
        Package(name="openssl", version="3.0.11-1+b1", type="pypi", **src),
        Package(name="libssl3", version="3.0.11-1", type="DEB", **src),
    ]  # fmt: skip
    assert table.assign(pkgs) == [0, 2, 3, 4, 5, 7, 8, 9, 10]
    out, _ = table.fan_out([(i,) for i in range(9)], Failure, _error)
    assert out == [(0,), (0,), (1,), (2,), (3,), (4,), (3,), (5,), (6,), (7,), (8,)]


@pytest.mark.parametrize("cls", TABLES)
def test_fold_values_match_whole_types_only(cls: type) -> None:
    # The compiled table compares a type with each fold value as one word: the shortest
    # and the longest value, and types that share their characters but not their length.
    table = cls(Package, IDENTITY_FIELDS, ("type", ("a", "abcdefgh"), (("name", "source_name"),)))
    types = ["a", "abcdefgh", "abcdefg", "bcdefgh", "abcdefghi", "\x00a", "a\x00", "", "A"]
    pkgs = [
        Package(name=name, version="1", type=t, source_name="src")
        for t in types
        for name in ("bin1", "bin2")
    ]
    fresh = table.assign(_reencoded(pkgs))
    # Folded: the two binaries of the same source are one identity, so one of them is new.
    folded = {t for t in types if sum(pkgs[i].type == t for i in fresh) == 1}
    assert folded == {"a", "abcdefgh"}


def test_fold_settings_are_checked() -> None:
    for bad in (
        ("kind", ("deb",), (("name", "source_name"),)),  # not an identity field
        ("type", (), (("name", "source_name"),)),
        ("type", ("x" * 9,), (("name", "source_name"),)),  # longer than 8
        ("type", ("deb",), ()),
        ("type", ("deb",), (("name", "type"),)),
        ("type", ("deb",), (("name", "source_name"), ("source_name", "version"))),
    ):
        with pytest.raises(ValueError):
            _identity.IdentityTable(Package, IDENTITY_FIELDS, bad)


def test_a_change_of_one_character_anywhere_is_another_identity() -> None:
    # The compiled table compares hashes of the key, not the key: every byte of it must
    # reach them, in keys of every length across the hash's 16-byte rounds and its tail.
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    pkgs = []
    for size in range(1, 70):
        base = "".join(chr(97 + i % 26) for i in range(size))
        for at in range(size):
            changed = base[:at] + "#" + base[at + 1 :]
            pkgs += [
                Package(name=base, version="1", type="npm"),
                Package(name=changed, version="1", type="npm"),
            ]
    distinct = {(p.name, p.version) for p in pkgs}
    fresh = table.assign(pkgs)
    assert len(fresh) == len(table) == len(distinct)
    assert table.assign(_reencoded(pkgs)) == []  # and equal keys meet again


def test_growth_past_the_initial_capacity_keeps_every_slot() -> None:
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    pkgs = [Package(name=f"n{i}", version=str(i), type="npm") for i in range(50_000)]
    assert table.assign(pkgs) == list(range(50_000))
    assert table.assign(list(reversed(_reencoded(pkgs)))) == []
    out, _ = table.fan_out([(i,) for i in range(50_000)], Failure, _error)
    assert out == [(i,) for i in reversed(range(50_000))]


def test_the_table_holds_no_reference_and_clear_starts_over() -> None:
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    name = "".join(["held-", "name"])  # a fresh string object, referenced only here
    before = sys.getrefcount(name)
    pkgs = [Package(name=name, version=str(i), type="npm") for i in range(3000)]
    table.assign(pkgs)
    del pkgs
    gc.collect()
    assert sys.getrefcount(name) == before  # identities are copied, not referenced
    assert len(table) == 3000
    table.clear()
    assert len(table) == 0
    assert table.assign([Package(name=name, version="0", type="npm")]) == [0]


def test_strings_of_every_width_compare_by_their_characters() -> None:
    """Latin-1, BMP and astral characters (1, 2 and 4 bytes per character in CPython), the
    empty string, and strings that differ only in width or length."""
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    names = ["", "a", "ab", "é", "ab\u00e9", "\u0101", "\U0001f600", "a\U0001f600", "\x00"]
    pkgs = [Package(name=n, version="1", type="npm") for n in names]
    assert table.assign(pkgs) == list(range(len(names)))
    # The same characters in new objects find their slots; nothing else does.
    again = _reencoded(pkgs)
    assert all(a is not b for a, b in zip(again, pkgs, strict=True) if a.name)
    assert table.assign(list(reversed(again))) == []
    out, _ = table.fan_out([(n,) for n in names], Failure, _error)
    assert out == [(n,) for n in reversed(names)]
    # A field boundary moved is another identity: ("ab", "1") vs ("a", "b1").
    moved = [Package(name="a", version="b1", type="npm")]
    assert table.assign(moved) == [0]


def test_long_strings_and_keys_past_the_key_buffer() -> None:
    """Fields around the one-byte length limit (253, 254, 255 characters), Latin-1 and
    ASCII, and identities of several kilobytes (past the per-package key buffer)."""
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS)
    names = [c * n for c in ("a", "\u00e9", "\u0101") for n in (253, 254, 255, 300, 5000)]
    pkgs = [Package(name=n, version=n[:7], type="npm", source_name=n) for n in names]
    assert table.assign(pkgs + pkgs) == list(range(len(names)))
    again = _reencoded(pkgs)
    assert table.assign(again) == []
    out, _ = table.fan_out([(n,) for n in names], Failure, _error)
    assert out == [(n,) for n in names]


_field = st.one_of(st.none(), st.text(max_size=3), st.text(min_size=250, max_size=260))


_type = st.sampled_from(["npm", "deb"])


@given(st.lists(st.tuples(st.text(max_size=300), _field, _field, _field, _type), max_size=40))
@example([("x", None, "", None, "npm"), ("x", "", None, None, "npm")])  # None and "" differ
@example([("a" * 254, None, None, None, "npm"), ("a" * 253, "a", None, None, "npm")])
@example([("x", None, "", None, "deb"), ("y", None, "", None, "deb")])  # "" folds nothing
def test_any_characters_equal_the_reference(
    rows: list[tuple[str, str | None, str | None, str | None, str]],
) -> None:
    pkgs = [
        Package(name=n, version="1", type=t, ecosystem=e, source_name=s, owner=o)
        for n, e, s, o, t in rows
    ]
    compiled = _identity.IdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
    pure = PureIdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
    assert compiled.assign(pkgs) == pure.assign(pkgs)
    again = _reencoded(pkgs)
    assert compiled.assign(again) == pure.assign(again) == []
    results = [(i,) for i in range(len(pure))]
    assert compiled.fan_out(results, Failure, _error) == pure.fan_out(results, Failure, _error)


class _Str(str):
    pass


@pytest.mark.parametrize("cls", TABLES)
def test_other_types_and_missing_results_are_errors(cls: type) -> None:
    table = cls(Package, IDENTITY_FIELDS)
    with pytest.raises(TypeError):
        table.assign([ImageRef(ref="x")])
    with pytest.raises(TypeError):  # msgspec does not check types on construction
        table.assign([Package(name=b"x", version="1", type="npm")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a str subclass could hash and compare as it likes
        table.assign([Package(name=_Str("x"), version="1", type="npm")])
    table.assign([Package(name="x", version="1", type="npm")])
    with pytest.raises(IndexError):
        table.fan_out([], Failure, _error)
    with pytest.raises(TypeError):
        table.fan_out(["not a tuple"], Failure, _error)


class _Mutable(msgspec.Struct):
    a: str | None
    b: str | None


@pytest.mark.parametrize("cls", TABLES)
def test_a_deleted_field_is_an_error_wherever_the_package_is(cls: type) -> None:
    table = cls(_Mutable, ("a", "b"))
    for at in (0, 5, 39):  # the pipeline's first stages, the steady state, the last package
        pkgs = [_Mutable(a=str(i), b="x") for i in range(40)]
        del pkgs[at].b
        with pytest.raises(AttributeError):
            table.assign(pkgs)


def test_fields_must_be_struct_slots() -> None:
    with pytest.raises(TypeError):
        _identity.IdentityTable(Package, ("name", "nonexistent"))
    with pytest.raises(ValueError):
        _identity.IdentityTable(Package, ())


@pytest.mark.parametrize("fold", [None, IDENTITY_FOLD])
def test_read_floor_touches_every_line_of_every_identity_field(fold: object) -> None:
    # The benchmark's floor must really read what ``assign`` reads: its checksum is the sum
    # of each field's first and last byte and every 64th byte between (of the fields that
    # count, when ``fold`` drops some).
    pkgs = _random_packages(random.Random(7), 500, 200)
    pkgs.append(Package(name="n" * 200, version="x" * 64, type="npm"))
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS, fold)
    pure = PureIdentityTable(Package, IDENTITY_FIELDS, fold)  # type: ignore[arg-type]
    expected = 0
    for p in pkgs:
        ident = tuple(getattr(p, n) for n in IDENTITY_FIELDS)
        if pure._fold is not None:
            ident = pure._folded(ident, *pure._fold)
        for v in ident:
            b = (v or "").encode("ascii")
            if b:
                expected += b[0] + b[-1] + sum(b[64:-1:64])
    assert table.read_floor(pkgs) == expected
    with pytest.raises(TypeError):
        table.read_floor([Package(name=_Str("x"), version="1", type="npm")])
