"""The maven scheme: maven-artifact 3.8.6's order (OSV's), validity, monotone keys.

Every test runs against both implementations (``impl`` fixture). The order is that of
``org.apache.maven.artifact.versioning.ComparableVersion`` in maven-artifact 3.8.6, the one
OSV's tooling uses (see the pure module's docstring), not Maven 3.9's. No 3.8.6 jar is at
hand, so the references are, in a chain:

* the real class as Debian ships it (libmaven3-core-java 3.8.7, whose verdicts equal 3.9.6's
  on every pair here), run by ``java`` in source-file mode on
  ``tests/data/versions/maven-oracle.java``; it has MNG-7644, the one change since 3.8.6;
* ``_tree`` below, an independent, literal port of the Java class as nested lists, with the
  two MNG-7644 statements behind a flag: with them it must agree with the real class on
  every differential pair; without them it is the 3.8.6 reference, held to what the real
  3.8.6 class was reported to answer (``MAVEN_3_8_6``, from MNG-7644 and MNG-7701);
* the scheme must equal the 3.8.6 port everywhere, and the real class wherever MNG-7644
  makes no difference (the two ports agree). Pointing ``REGSWEEP_MAVEN_ARTIFACT_JAR`` at a
  jar without MNG-7644 (3.8.6 itself) makes that jar the scheme's direct oracle instead.

Without a JDK or jar the oracle tests fail with the install command; the rest does not need
them: ``maven-generated.txt`` holds the real class's verdicts.

Fixtures: ``maven-real-versions.txt`` (hand-written Maven Central shapes) and
``maven-generated.txt`` (pairs from ``_fixture_pairs``, ordered by the oracle); regenerate the
latter with ``REGSWEEP_UPDATE_FIXTURES=1 pytest tests/matcher/versions/test_maven.py -k fixture``.
The Apache-2.0 vectors in ../shared (ComparableVersionTest, osv-scalibr) are read at test time.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher import versions as facade
from regsweep.matcher.advisories.ecosystems import parse_ecosystem
from regsweep.matcher.versions.interface import InvalidVersion, Scheme, SchemeModule
from tests import paths
from tests.conftest import SHARED
from tests.matcher.versions.conftest import load, read_vectors

DATA = paths.DATA / "versions"
REAL = DATA / "maven-real-versions.txt"
GENERATED = DATA / "maven-generated.txt"
ORACLE_SOURCE = DATA / "maven-oracle.java"

_BOTH = ("compiled", "pure")


@pytest.fixture
def maven(impl: str) -> SchemeModule:
    """The maven module of the implementation under test."""
    return load("maven", impl)


def _key_cmp(mod: SchemeModule, a: str, b: str) -> int:
    ka, kb = mod.key(a), mod.key(b)
    return (ka > kb) - (ka < kb)


def _key_agrees(mod: SchemeModule, a: str, b: str, order: int) -> bool:
    """The monotone-key contract for one verdict: a < b gives key(a) <= key(b), = gives ==."""
    k = _key_cmp(mod, a, b)
    return k == 0 if order == 0 else k in (0, order)


def _outcome(f: Callable[[], object]) -> object:
    try:
        return f()
    except InvalidVersion as e:
        assert e.scheme == "maven"
        return ("invalid", e.reason)


def _real_versions() -> list[str]:
    lines = REAL.read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


# --------------------------------------------------------------------------------------
# An independent port of maven-artifact's ComparableVersion, as nested lists (test-only):
# 3.8.6's, or with mng7644=True 3.8.7's and 3.9's. The modules compare flat token chains;
# this keeps Java's objects and its recursion.

_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}


class _Str:
    def __init__(self, value: str, followed_by_digit: bool) -> None:
        if followed_by_digit and len(value) == 1:
            value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
        self.value = _ALIASES.get(value, value)

    def comparable(self) -> str:
        if self.value in _QUALIFIERS:
            return str(_QUALIFIERS.index(self.value))
        return f"{len(_QUALIFIERS)}-{self.value}"


_Item = int | _Str | list  # type: ignore[type-arg]


def _is_null(item: _Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, _Str):
        return item.value == ""
    return not item


def _cmp(a: _Item, b: _Item | None) -> int:
    """``a.compareTo(b)`` with Java's per-class rules; b None is the missing item."""
    if isinstance(a, int):
        if b is None:
            return int(a != 0)
        return (a > b) - (a < b) if isinstance(b, int) else 1
    if isinstance(a, _Str):
        if b is None:
            x, y = a.comparable(), "5"
        elif isinstance(b, _Str):
            x, y = a.comparable(), b.comparable()
        else:
            return -1
        return (x > y) - (x < y)
    if b is None:
        return next((r for r in (_cmp(i, None) for i in a) if r), 0)
    if isinstance(b, int):
        return -1
    if isinstance(b, _Str):
        return 1
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        r = (-_cmp(right, None) if right is not None else 0) if left is None else _cmp(left, right)
        if r:
            return r
    return 0


def _normalize(items: list) -> None:  # type: ignore[type-arg]
    for i in range(len(items) - 1, -1, -1):
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


def _tree(version: str, mng7644: bool = False) -> list:  # type: ignore[type-arg]
    """``ComparableVersion.parseVersion`` of maven-artifact 3.8.6, statement by statement;
    with ``mng7644``, of 3.8.7 and 3.9 (the two sub-list pushes marked MNG-7644)."""
    v = version.lower()
    items: list = []  # type: ignore[type-arg]
    cur, stack = items, [items]
    is_digit, start = False, 0

    def parse_item(digit: bool, buf: str) -> _Item:
        return int(buf) if digit else _Str(buf, False)

    def push() -> None:
        nonlocal cur
        sub: list = []  # type: ignore[type-arg]
        cur.append(sub)
        cur = sub
        stack.append(sub)

    for i, c in enumerate(v):
        if c in ".-":
            cur.append(0 if i == start else parse_item(is_digit, v[start:i]))
            start = i + 1
            if c == "-":
                push()
        elif "0" <= c <= "9":
            if not is_digit and i > start:
                if mng7644 and cur:
                    push()  # MNG-7644
                cur.append(_Str(v[start:i], True))
                start = i
                push()
            is_digit = True
        else:
            if is_digit and i > start:
                cur.append(parse_item(True, v[start:i]))
                start = i
                push()
            is_digit = False
    if len(v) > start:
        if mng7644 and not is_digit and cur:
            push()  # MNG-7644
        cur.append(parse_item(is_digit, v[start:]))
    while stack:
        _normalize(stack.pop())
    return items


def tree_compare(a: str, b: str, mng7644: bool = False) -> int:
    """The test-only port's verdict (no validation: call it on valid strings): 3.8.6's, or
    with ``mng7644`` that of 3.8.7 and 3.9."""
    r = _cmp(_tree(a, mng7644), _tree(b, mng7644))
    return (r > 0) - (r < 0)


def mng7644_matters(a: str, b: str) -> bool:
    """Whether 3.8.6 and 3.9 order the pair differently (by the two ports)."""
    return tree_compare(a, b) != tree_compare(a, b, mng7644=True)


def in_total_order_domain(v: str) -> bool:
    """Whether ``v`` avoids every construct behind Maven's cycles (see the pure docstring).

    In every list a qualifier may only come first and a sub-list never first. Then each
    position orders its candidates linearly (qualifier rank / missing / number, or
    sub-list sign / missing / number) and compare is a total preorder.
    """

    def ok(items: list) -> bool:  # type: ignore[type-arg]
        if items and isinstance(items[0], list):
            return False
        if any(isinstance(x, _Str) for x in items[1:]):
            return False
        return all(ok(x) for x in items if isinstance(x, list))

    return ok(_tree(v))


# --------------------------------------------------------------------------------------
# Semantics, by example (each checked against the 3.8.6 port, and against the real class
# where MNG-7644 makes no difference: the oracle test takes them all)

SEMANTICS = [
    # trailing nulls trimmed, on every list: 0, "", ga/final/release, empty sub-lists
    ("1", "=", "1.0.0"),
    ("1", "=", "1-0"),
    ("1", "=", "1.0-0.0"),
    ("1", "=", "1."),
    ("1", "=", "1-"),
    ("1", "=", "1.ga"),
    ("1", "=", "1-FINAL"),
    ("1", "=", "1.0.0.RELEASE"),
    ("1.0.0.Final", "=", "1"),
    ("0", "=", "0.0-0"),
    ("1..1", "=", "1.0.1"),
    # numbers: leading zeros ignored, any size
    ("01.002", "=", "1.2"),
    ("1.9", "<", "1.10"),
    ("999999999", "<", "1000000000"),
    ("999999999999999999", "<", "1000000000000000000"),
    ("123456789012345678901234567890", ">", "123456789012345678901234567889"),
    ("0000000000000000001", "=", "1"),
    # known qualifiers, their aliases and shorthands, case-insensitively
    ("1-alpha", "<", "1-beta"),
    ("1-beta", "<", "1-milestone"),
    ("1-milestone", "<", "1-rc"),
    ("1-rc", "=", "1-CR"),
    ("1-rc", "<", "1-SNAPSHOT"),
    ("1-SNAPSHOT", "<", "1"),
    ("1", "<", "1-sp"),
    ("1-sp", "<", "1-abc"),
    ("1-abc", "<", "1-abd"),
    ("1-abc", "<", "1-abcd"),
    ("1a1", "=", "1-alpha-1"),
    ("1b2", "=", "1-BETA-2"),
    ("1m3", "=", "1-milestone-3"),
    ("1-a", ">", "1"),  # a lone "a" (no digit after it) is an unknown word, not alpha
    ("1-a-1", ">", "1-alpha-1"),  # Maven 4 reads "a-1" as a1 = alpha-1 here
    ("1-A", "=", "1-a"),
    ("1.0.0-Alpha1", "=", "1.0.0-ALPHA1"),
    # a number beats a sub-list, which beats a qualifier
    ("1-1", "<", "1.1"),
    ("1.0-1", "<", "1.0.1"),
    ("2.0-1", "<", "2.0.1"),
    ("1-sp", "<", "1-1"),
    ("1.foo.2", "<", "1-alpha"),
    # no MNG-7644 (3.8.7/3.9 would open a sub-list before a qualifier that follows items of
    # its list and ends the string or runs into digits, and answer "=", "<", "=", "=", ">"
    # and ">" on these)
    ("1.0.0.RC1", ">", "1-rc-1"),
    ("1.0.0.RC1", ">", "1.0.0-RC2"),
    ("2.0.abc", ">", "2-abc"),
    ("2.0.0.abc", ">", "2.0.abc"),
    ("1.0.0-RC16", "<", "1.0.0.RC8-beta"),  # issue 15's pair: a number > a sub-list
    ("1.2.8.sec10", "<", "1.2.8_noneautotype"),  # fastjson's builds: a qualifier < a sub-list
    # real Maven Central shapes
    ("1.0-SNAPSHOT", "<", "1.0"),
    ("1.0.0-M1", "<", "1.0.0-RC1"),
    ("5.3.0.CR1", "<", "5.3.0.Final"),
    ("5.3.0.Final", "<", "5.3.1.Final"),
    ("2.0.0-beta-1", "<", "2.0.0-beta-2"),
    ("2.0.0-beta-2", "<", "2.0.0"),
    ("9.4.43.v20210629", "<", "9.4.44.v20210927"),
    ("33.0.0-android", "<", "33.0.0-jre"),
    ("32.1.3-jre", "<", "33.0.0-android"),
    ("4.3.30.RELEASE", "=", "4.3.30"),
    ("2.13.4", "<", "2.13.4.2"),
    ("2.15.0-rc1", "<", "2.15.0"),
    ("1.8.0_292", ">", "1.8.0"),
    ("17.0.5+8", ">", "17.0.5"),
    ("1.1.0.SP1", ">", "1.1.0"),
    ("Hoxton.SR12", "<", "1"),
    ("2020.0.6", ">", "Hoxton.SR12"),
    # where Maven 3.8/3.9 and Maven 4 (compat ComparableVersion) disagree: 3.8 is followed
    ("1.0-alpha-1", "<", "1.0.0-alpha.1"),
    ("1.0.final-redhat", ">", "1.0-sp1-redhat"),  # Maven 4's MNG-7714 test says <
    ("1-ga-1", "<", "1-1"),  # osv-scalibr's vector says = (the POM reference's prose)
]


@pytest.mark.parametrize(("a", "op", "b"), SEMANTICS)
def test_documented_orderings_hold_both_ways_and_in_key(
    maven: SchemeModule, a: str, op: str, b: str
) -> None:
    """Each documented rule holds through compare (both ways) and never contradicts key."""
    want = {"<": -1, "=": 0, ">": 1}[op]
    assert maven.compare(a, b) == want
    assert maven.compare(b, a) == -want
    assert _key_agrees(maven, a, b, want)
    assert tree_compare(a, b) == want


def test_osv_maven_ranges_are_evaluated_in_this_order() -> None:
    """The matcher compares OSV/GHSA ``Maven`` ranges with this scheme (3.8.6's order)."""
    info = parse_ecosystem("Maven")
    assert info is not None and info.scheme is Scheme.MAVEN
    assert facade.compare(info.scheme, "1.0.0-RC16", "1.0.0.RC8-beta") == -1
    assert facade.compare(info.scheme, "1.2.8.sec10", "1.2.8_noneautotype") == -1


# What the real maven-artifact 3.8.6 class answers, as reported with it: MNG-7701's table
# (3.8.6 column; its 3.8.7 column is "=", "=", ">", ">" and "=") and MNG-7644's "actual"
# lines, which that issue states for every qualifier X (its test iterates over these X).
_MNG7644_X = ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"]
MAVEN_3_8_6 = [
    ("0.x", ">", "0-x"),
    ("1.x", "<", "1-x"),
    ("1.x", "<", "1_y"),
    ("1.y", "<", "1_x"),
    ("1-alpha", ">", "1.alpha"),
    *[(f"1.0.0.{x}1", ">", f"1.0.0-{x}2") for x in _MNG7644_X],
    *[(f"1.0.{x}", "<", f"1.0.0.{x}") for x in _MNG7644_X],
]


@pytest.mark.parametrize(("a", "op", "b"), MAVEN_3_8_6)
def test_maven_3_8_6_observations_hold_in_the_port_and_the_scheme(
    maven: SchemeModule, a: str, op: str, b: str
) -> None:
    """The 3.8.6 port and the scheme answer as the real 3.8.6 class did; 3.9 (the port with
    MNG-7644) answers otherwise on every one of these, which is why they are the check."""
    want = {"<": -1, "=": 0, ">": 1}[op]
    assert tree_compare(a, b) == want
    assert mng7644_matters(a, b)
    assert maven.compare(a, b) == want
    assert maven.compare(b, a) == -want
    assert _key_agrees(maven, a, b, want)


# Maven's order has cycles (all three verified against the real class, see the oracle test).
CYCLES = [
    ("1.sp.2", "1-alpha", "1"),  # qualifier < sub-list, but sp > missing > alpha
    ("1", "1-1", "1.0.Beta-1"),  # number 0 > sub-list, but 0.beta < missing < [1]
    ("1-SNAPSHOT", "1", "1.foo-1"),
]


@pytest.mark.parametrize("cycle", CYCLES)
def test_maven_order_has_cycles_so_cycle_members_share_a_key(
    maven: SchemeModule, cycle: tuple[str, str, str]
) -> None:
    """a < b < c < a: no exact key exists, and a monotone key must tie all three."""
    a, b, c = cycle
    assert maven.AUTHORITATIVE is False
    assert (maven.compare(a, b), maven.compare(b, c), maven.compare(c, a)) == (-1, -1, -1)
    assert maven.key(a) == maven.key(b) == maven.key(c)


def test_key_is_the_numeric_prefix_without_trailing_zeros(maven: SchemeModule) -> None:
    """The key layout: 0x01 + canonical number per leading number, trailing zeros dropped."""
    assert maven.key("1.2.3") == b"\x01\x011\x01\x012\x01\x013\x00"
    assert maven.key("1.0.1") == b"\x01\x011\x01\x00\x01\x011\x00"
    same = ["1", "1.0", "1.0-SNAPSHOT", "1-1", "1.0.0.RELEASE", "1.0.Beta-1", "1-sp", "01"]
    assert {maven.key(v) for v in same} == {b"\x01\x011\x00"}
    assert {maven.key(v) for v in ["0", "alpha", "-1", "0.alpha.1", "Hoxton.SR12"]} == {b"\x00"}
    ordered = ["Final", "0.1", "1-SNAPSHOT", "1.0.1-alpha", "1.1", "2-beta", "10", "1" * 40]
    keys = [maven.key(v) for v in ordered]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


# --------------------------------------------------------------------------------------
# Validity

INVALID = [
    ("", "empty string"),
    ("1" * 257, "longer than 256 characters"),
    ("1.0é", "contains a non-ASCII character"),
    ("1.0\ud800", "contains a non-ASCII character"),
    ("１.0", "contains a non-ASCII character"),
    ("1.0 ", "contains whitespace or a control character"),
    (" 1.0", "contains whitespace or a control character"),
    ("1.0\t", "contains whitespace or a control character"),
    ("1.0\x00", "contains whitespace or a control character"),
    ("1.0\x7f", "contains whitespace or a control character"),
    ("1.0/2", "contains '/', which Maven forbids in a version"),
    ("1.0\\2", "contains '\\\\', which Maven forbids in a version"),
    ("1:2", "contains ':', which Maven forbids in a version"),
    ('1"', "contains '\"', which Maven forbids in a version"),
    ("<1", "contains '<', which Maven forbids in a version"),
    ("1>", "contains '>', which Maven forbids in a version"),
    ("1|2", "contains '|', which Maven forbids in a version"),
    ("1?", "contains '?', which Maven forbids in a version"),
    ("1.*", "contains '*', which Maven forbids in a version"),
    ("${project.version}", "contains an unresolved '${' expression"),
    ("1.0-${revision}", "contains an unresolved '${' expression"),
    ("1 :2", "contains whitespace or a control character"),  # the leftmost offence wins
    ("1: 2", "contains ':', which Maven forbids in a version"),
    (".", "has no letter or digit"),
    ("-", "has no letter or digit"),
    ("..--", "has no letter or digit"),
    ("_+~", "has no letter or digit"),
]


@pytest.mark.parametrize(("v", "reason"), INVALID)
def test_invalid_versions_raise_in_every_entry_point(
    maven: SchemeModule, v: str, reason: str
) -> None:
    """A rejected string raises InvalidVersion with its reason, on either side, never a result."""
    for call in (
        lambda: maven.key(v),
        lambda: maven.compare(v, "1.0"),
        lambda: maven.compare("1.0", v),
        lambda: maven.compare(v, v),
        lambda: maven.key_many(["1.0", v]),
        lambda: maven.compare_many(["1.0", v], ["1.0", "1.0"]),
    ):
        with pytest.raises(InvalidVersion) as info:
            call()
        assert (info.value.scheme, info.value.version, info.value.reason) == ("maven", v, reason)


def test_odd_but_valid_strings_are_accepted(maven: SchemeModule) -> None:
    """ASCII punctuation other than the banned set is qualifier text; 256 chars is the limit."""
    for v in ["1.0_01", "1+2", "1~rc", "1!", "$1", "1$", "a", "1" * 256, "1." * 128, "-1", ".1"]:
        assert maven.compare(v, v) == 0
        assert maven.key(v)
    assert maven.compare("1" * 256, "9" * 255) == 1
    assert maven.key("9" * 255) < maven.key("1" * 256)


def test_non_strings_raise_type_error(maven: SchemeModule) -> None:
    """None, bytes or a str subclass is a caller bug (TypeError) in both implementations."""

    class Text(str):
        pass

    for bad in (None, b"1.0", 1, Text("1.0")):
        with pytest.raises(TypeError):
            maven.compare(bad, "1.0")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            maven.compare("1.0", bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            maven.key(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            maven.compare_many([bad], ["1.0"])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            maven.key_many([bad])  # type: ignore[list-item]


def test_batch_calls_match_single_calls(maven: SchemeModule) -> None:
    """compare_many/key_many equal the per-item calls; unequal lengths are a ValueError."""
    a = ["1.0", "1.0-SNAPSHOT", "2.0.0.RC1", "1-sp", "5.3.0.Final"]
    b = ["1", "1.0", "2.0.0-RC2", "1-1", "5.3.0"]
    assert maven.compare_many(a, b) == [maven.compare(x, y) for x, y in zip(a, b, strict=True)]
    # 2.0.0.RC1 > 2.0.0-RC2 in 3.8.6 (MNG-7644's "actual"; 3.9 says <)
    assert maven.compare_many(tuple(a), tuple(b)) == [0, -1, 1, -1, 0]
    assert maven.key_many(a) == [maven.key(x) for x in a]
    assert maven.compare_many([], []) == []
    assert maven.key_many([]) == []
    with pytest.raises(ValueError, match="equal lengths"):
        maven.compare_many(a, b[:-1])


# --------------------------------------------------------------------------------------
# Maven's own test vectors and osv-scalibr's (Apache-2.0, read from ../shared)

# osv-scalibr writes "1-1 = 1-ga-1" after the POM reference's prose ("trailing null values at
# each hyphen"); no Maven implements it: 3.8.7, 3.9.6 and Maven 4's class all say 1-1 > 1-ga-1.
SCALIBR_DEVIATIONS = {("1-1", "1-ga-1"): 1}


def _shared_vector_rows(shared_data: Path) -> list[tuple[str, int, str, str]]:
    vec = shared_data / "vectors"
    rows = [
        (a, want, b, f"{path.name}:{n}")
        for path in [
            vec / "maven" / "ComparableVersionTest-pairs.txt",
            vec / "osv-scalibr" / "maven-versions.txt",
        ]
        for a, want, b, n in read_vectors(path)
    ]
    for path in sorted((vec / "maven").glob("*-sorted.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        ordered = [s.strip() for s in lines if s.strip() and not s.startswith("#")]
        rows += [
            (lo, -1, hi, f"{path.name}:{lo}<{hi}")
            for i, lo in enumerate(ordered)
            for hi in ordered[i + 1 :]
        ]
    return rows


def test_maven_and_scalibr_vectors_all_hold_but_the_documented_ones(
    maven: SchemeModule, shared_data: Path
) -> None:
    """Every ComparableVersionTest case and osv-scalibr case holds, in compare and key.

    The exceptions: osv-scalibr's "1-1 = 1-ga-1" (pinned), where regsweep gives Maven's own
    answer (the oracle test checks that Maven says so); and the rows of Maven's current
    ComparableVersionTest that MNG-7644 changed (it is Maven 4's file), where the scheme
    follows the 3.8.6 port and the 3.9 port gives the file's answer.
    """
    rows = _shared_vector_rows(shared_data)
    assert len(rows) > 600
    bad, deviations, mng7644_rows = [], {}, []
    for a, want, b, where in rows:
        got = maven.compare(a, b)
        if (a, b) in SCALIBR_DEVIATIONS:
            deviations[a, b] = got
            want = SCALIBR_DEVIATIONS[a, b]
        elif mng7644_matters(a, b):
            assert where.startswith("ComparableVersionTest"), where
            assert tree_compare(a, b, mng7644=True) == want
            mng7644_rows.append((a, b))
            want = tree_compare(a, b)
        if got != want or maven.compare(b, a) != -want or not _key_agrees(maven, a, b, want):
            bad.append((where, a, b, want, got))
    assert bad == []
    assert deviations == SCALIBR_DEVIATIONS
    assert ("2.0.a", "2-1") in mng7644_rows  # VERSIONS_NUMBER's order since MNG-7644


def _split_by_mng7644(
    mod: SchemeModule, cases: Sequence[tuple[str, str, int]], jar_has_mng7644: bool = True
) -> tuple[list[tuple[str, str, int, int]], int]:
    """The scheme's disagreements with the real class's verdicts, and how many pairs
    MNG-7644 decides (when the class has it): there the scheme must give the 3.8.6 port's
    answer and the 3.9 port the class's; everywhere else, the class's answer."""
    bad, sensitive = [], 0
    for a, b, verdict in cases:
        want = verdict
        if jar_has_mng7644 and mng7644_matters(a, b):
            sensitive += 1
            if tree_compare(a, b, mng7644=True) != verdict:
                bad.append((a, b, verdict, -9))  # the 3.9 port is wrong: see its own test
            want = tree_compare(a, b)
        got = mod.compare(a, b)
        if got != want or not _key_agrees(mod, a, b, want):
            bad.append((a, b, want, got))
    return bad, sensitive


def test_generated_fixture_pairs_all_pass(maven: SchemeModule) -> None:
    """The committed ComparableVersion-ordered pairs hold, in compare and key, where
    MNG-7644 does not decide them; where it does (some hundred pairs), the 3.8.6 port's
    order holds (no oracle needed)."""
    rows = list(read_vectors(GENERATED))
    assert len(rows) > 3000
    bad, sensitive = _split_by_mng7644(maven, [(a, b, want) for a, want, b, _ in rows])
    assert bad == []
    assert 0 < sensitive < len(rows) // 10


# --------------------------------------------------------------------------------------
# Pairs for the oracle: real shapes, their near misses, and adversarial strings

_NUMBERS = ["0", "00", "1", "2", "9", "10", "007", "999999999", "1000000000", "9" * 19, "1" * 30]
_WORDS = [
    "alpha", "a", "b", "m", "beta", "milestone", "rc", "cr", "snapshot", "SNAPSHOT", "ga",
    "GA", "final", "Final", "release", "RELEASE", "sp", "SP", "foo", "x", "abc", "z", "jre",
    "redhat", "pre", "c", "Beta", "M", "RC", "v", "_", "+", "~", "!",
]  # fmt: skip
_SEPS = [".", ".", "-", "-", ""]


def _adversarial(rng: random.Random) -> str:
    """A random mix of every construct ComparableVersion distinguishes."""
    out = []
    for _ in range(rng.randint(1, 7)):
        out.append(rng.choice(_NUMBERS) if rng.random() < 0.55 else rng.choice(_WORDS))
        out.append(rng.choice(_SEPS))
    if rng.random() < 0.7:
        out.pop()
    if rng.random() < 0.05:
        out.insert(0, rng.choice(".-"))
    return "".join(out)


def _mutate(rng: random.Random, v: str) -> str:
    """A nearby string: the pairs that discriminate between close orderings."""
    op = rng.randrange(7)
    if op == 0:
        return v + rng.choice([".0", "-0", "-SNAPSHOT", ".Final", "-1", ".1", "-sp", "a1", "-ga"])
    if op == 1:
        return v.replace(".", "-", 1) if rng.random() < 0.5 else v.replace("-", ".", 1)
    if op == 2:
        return v.swapcase()
    if op == 3:
        return "".join(c + "0" if c == "." and rng.random() < 0.3 else c for c in v)
    if op == 4:
        i = rng.randrange(len(v) + 1)
        return v[:i] + rng.choice([".", "-", "0", "a", "rc", "1"]) + v[i:]
    if op == 5:
        return "".join(chr(ord(c) + 1) if c in "012345678" and rng.random() < 0.3 else c for c in v)
    i = rng.randrange(len(v))
    return v[:i] + v[i + 1 :] or v


def _valid(strings: Sequence[str]) -> list[str]:
    pure = load("maven", "pure")
    out = []
    for s in strings:
        try:
            pure.key(s)
        except InvalidVersion:
            continue
        out.append(s)
    return out


def _fixture_pairs() -> list[tuple[str, str]]:
    """The pairs of the committed fixture: real shapes, near misses, adversarial strings."""
    rng = random.Random(20240601)
    real = _real_versions()
    adv = _valid([_adversarial(rng) for _ in range(900)])
    pairs = [(rng.choice(real), rng.choice(real)) for _ in range(1500)]
    pairs += [(v, m) for v in real for m in _valid([_mutate(rng, v)])]
    pairs += [(rng.choice(adv), rng.choice(adv)) for _ in range(800)]
    pairs += [(v, m) for v in adv[:600] for m in _valid([_mutate(rng, v)])]
    return pairs


def _differential_pairs() -> list[tuple[str, str]]:
    """About 15k pairs for the live oracle (a superset in kind of the committed fixture)."""
    rng = random.Random(4242)
    real = _real_versions()
    shared = SHARED / "data" / "vectors"
    for path in [*shared.glob("maven/*.txt"), shared / "osv-scalibr" / "maven-versions.txt"]:
        if path.is_file():
            real += [s for a, _, b, _ in read_vectors(path) for s in (a, b)]
    real = sorted(set(real))
    adv = _valid([_adversarial(rng) for _ in range(3000)])
    near = _valid([_mutate(rng, v) for v in real + adv])
    pairs = [(rng.choice(real), rng.choice(real)) for _ in range(5000)]
    pairs += [(rng.choice(adv), rng.choice(adv)) for _ in range(4000)]
    pairs += [(rng.choice(real), rng.choice(adv)) for _ in range(2000)]
    pairs += [(rng.choice(near), rng.choice(real + adv)) for _ in range(4000)]
    pairs += [(a, b) for cycle in CYCLES for a in cycle for b in cycle]
    pairs += [(a, b) for a, _, b in SEMANTICS]
    pairs += [(a, b) for a, _, b in MAVEN_3_8_6]  # the real class's 3.8.7 column, checked
    pairs += list(SCALIBR_DEVIATIONS)
    return pairs


# --------------------------------------------------------------------------------------
# The oracle: Maven's ComparableVersion, one JVM per batch

_JARS = [
    "/usr/share/java/maven3-artifact.jar",  # Debian libmaven3-core-java
    "/usr/share/java/maven-artifact-3.x.jar",
    "/usr/share/maven/lib/maven-artifact-3.x.jar",
]


def _oracle_jar() -> Path:
    """The maven-artifact jar: $REGSWEEP_MAVEN_ARTIFACT_JAR, else Debian's."""
    env = os.environ.get("REGSWEEP_MAVEN_ARTIFACT_JAR")
    for candidate in [env] if env else _JARS:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(
        "no maven-artifact jar (ComparableVersion): install libmaven3-core-java "
        "(make test does this as root) or set REGSWEEP_MAVEN_ARTIFACT_JAR"
    )


def jar_version(jar: Path) -> str:
    """The Maven version recorded in the jar's pom.properties ("" when absent)."""
    with zipfile.ZipFile(jar) as z:
        try:
            text = z.read("META-INF/maven/org.apache.maven/maven-artifact/pom.properties")
        except KeyError:
            return ""
    for line in text.decode().splitlines():
        if line.startswith("version="):
            return line.split("=", 1)[1].strip()
    return ""


def jar_has_mng7644(jar: Path) -> bool:
    """Whether the jar's class has MNG-7644, as maven-artifact 3.8.7 and later have (MNG-7701
    compares 3.8.6 and 3.8.7): then it is the oracle of the 3.9 port, else of the scheme.

    A version older than 3.8.2 fails: without MNG-6964 it orders as neither.
    """
    version = jar_version(jar)
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    if parts and parts < (3, 8, 2):
        pytest.fail(f"{jar} is maven-artifact {version}: older than MNG-6964 (3.8.2)")
    return not parts or parts >= (3, 8, 7)


def comparable_version(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """ComparableVersion(a).compareTo(ComparableVersion(b)) as -1/0/1, one java process."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("no java: install openjdk-17-jdk-headless (make test does this as root)")
    jar = _oracle_jar()
    jar_has_mng7644(jar)  # refuses a class too old to be either order's oracle
    data = "".join(f"{a}\t{b}\n" for a, b in pairs)
    proc = subprocess.run(
        [java, "-cp", str(jar), str(ORACLE_SOURCE)],
        input=data,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    out = proc.stdout.splitlines()
    assert len(out) == len(pairs), proc.stderr
    return [int(x) for x in out]


@pytest.fixture(scope="module")
def oracle() -> dict[tuple[str, str], int]:
    """ComparableVersion's verdict on every differential and fixture pair (one JVM start)."""
    pairs = list(dict.fromkeys(_differential_pairs() + _fixture_pairs()))
    return dict(zip(pairs, comparable_version(pairs), strict=True))


@pytest.fixture(scope="module")
def oracle_has_mng7644() -> bool:
    """Whether the oracle's class is 3.8.7 or later (Debian's is) rather than 3.8.6 itself."""
    return jar_has_mng7644(_oracle_jar())


@pytest.fixture(scope="module")
def oracle_cases(oracle: dict[tuple[str, str], int]) -> list[tuple[str, str, int]]:
    """(a, b, verdict) for the ~15k real, near-miss and adversarial differential pairs."""
    return [(a, b, oracle[a, b]) for a, b in dict.fromkeys(_differential_pairs())]


@pytest.mark.oracle
def test_comparable_version_agrees_on_every_differential_pair(
    maven: SchemeModule, oracle_cases: list[tuple[str, str, int]], oracle_has_mng7644: bool
) -> None:
    """Zero disagreements with Maven's ComparableVersion on the pairs MNG-7644 leaves alone
    (all of them, with a 3.8.6 jar); keys never contradict it. On the pairs it decides (the
    MAVEN_3_8_6 ones among them), the scheme gives the 3.8.6 port's answer and the 3.9 port
    the class's."""
    assert len(oracle_cases) > 13000
    bad, sensitive = _split_by_mng7644(maven, oracle_cases, oracle_has_mng7644)
    assert bad[:20] == []
    assert (sensitive >= len(MAVEN_3_8_6)) == oracle_has_mng7644


@pytest.mark.oracle
def test_the_test_only_tree_port_agrees_with_comparable_version(
    oracle_cases: list[tuple[str, str, int]], oracle_has_mng7644: bool
) -> None:
    """The independent port is faithful to Maven: with the two MNG-7644 statements when the
    class has them, and so, without them, it is 3.8.6's class but for those two lines."""
    bad = [
        (a, b, want)
        for a, b, want in oracle_cases
        if tree_compare(a, b, mng7644=oracle_has_mng7644) != want
    ]
    assert bad[:20] == []


def test_the_scheme_equals_the_3_8_6_port_on_every_differential_pair(
    maven: SchemeModule,
) -> None:
    """The flat merge walk orders as the literal 3.8.6 port on the ~15k real, near-miss and
    adversarial pairs the oracle takes (no JDK needed), those MNG-7644 decides included."""
    pairs = list(dict.fromkeys(_differential_pairs()))
    assert len(pairs) > 13000
    assert sum(mng7644_matters(a, b) for a, b in pairs) >= len(MAVEN_3_8_6)
    bad = [(a, b) for a, b in pairs if maven.compare(a, b) != tree_compare(a, b)]
    assert bad[:20] == []


@pytest.mark.oracle
def test_generated_fixture_is_what_comparable_version_says(
    oracle: dict[tuple[str, str], int],
) -> None:
    """The committed fixture is ComparableVersion's verdict on ``_fixture_pairs``.

    With REGSWEEP_UPDATE_FIXTURES=1 the file is rewritten instead (then review the diff).
    """
    pairs = _fixture_pairs()
    ops = {-1: "<", 0: "=", 1: ">"}
    lines = [
        "# Maven version pairs for regsweep's maven tests: maven-real-versions.txt shapes, near",
        "# misses and adversarial strings from _fixture_pairs() in"
        " tests/matcher/versions/test_maven.py,",
        "# ordered by Maven's ComparableVersion (maven-artifact 3.8.7 from Debian; 3.9.6 gives",
        "# the same verdicts). Regenerate: REGSWEEP_UPDATE_FIXTURES=1 pytest -k fixture",
        *(f"{a} {ops[oracle[a, b]]} {b}" for a, b in pairs),
    ]
    text = "\n".join(lines) + "\n"
    if os.environ.get("REGSWEEP_UPDATE_FIXTURES") == "1":
        GENERATED.write_text(text, encoding="utf-8")
    assert GENERATED.read_text(encoding="utf-8") == text


# --------------------------------------------------------------------------------------
# Hypothesis properties

_PIECES = [*_NUMBERS, *_WORDS]
_SEP = st.sampled_from([".", "-", ""])


def _join(parts: list[tuple[str, str]], lead: str) -> str:
    return lead + "".join(p + s for p, s in parts)


def _is_valid(v: str) -> bool:
    return _valid([v]) == [v]


versions = st.builds(
    _join,
    st.lists(st.tuples(st.sampled_from(_PIECES), _SEP), min_size=1, max_size=7),
    st.sampled_from(["", "", "", "", ".", "-"]),
).filter(_is_valid)

# The shapes of real releases: numbers, then qualifier groups that each start a sub-list.
_QUAL = st.sampled_from(["alpha", "beta", "rc", "CR", "M", "snapshot", "SNAPSHOT", "Final",
                         "GA", "sp", "jre", "redhat", "foo", "android"])  # fmt: skip
_NUM = st.sampled_from(["0", "1", "2", "3", "10", "01", "20210629"])
_GROUP = st.one_of(
    st.builds(lambda n: f"-{n}", _NUM),
    st.builds(lambda q: f"-{q}", _QUAL),
    st.builds(lambda q, n: f"-{q}{n}", _QUAL, _NUM),
    st.builds(lambda q, n: f"-{q}-{n}", _QUAL, _NUM),
    st.builds(lambda q, n: f".{q}{n}", _QUAL, _NUM),
    st.builds(lambda q, n: f"-{q}.{n}", _QUAL, _NUM),
    st.builds(lambda n, m: f"-{n}.{m}", _NUM, _NUM),
)
release_shaped = st.builds(
    lambda nums, groups, tail: ".".join(nums) + "".join(groups) + tail,
    st.lists(_NUM, min_size=1, max_size=4),
    st.lists(_GROUP, max_size=3),
    st.sampled_from(["", "", "", ".Final", ".RELEASE", ".v20210629"]),
).filter(in_total_order_domain)


@given(a=versions, b=versions)
def test_compare_is_antisymmetric_and_reflexive(a: str, b: str) -> None:
    """compare(a, b) == -compare(b, a) and compare(a, a) == 0, in both implementations."""
    for mod in (load("maven", i) for i in _BOTH):
        assert mod.compare(a, b) == -mod.compare(b, a)
        assert mod.compare(a, a) == 0


@given(vs=st.lists(release_shaped, min_size=3, max_size=5))
def test_compare_is_transitive_where_maven_has_no_cycles(vs: list[str]) -> None:
    """On release-shaped versions (no qualifier after an item) compare is a total preorder."""
    for mod in (load("maven", i) for i in _BOTH):
        table = {(x, y): mod.compare(x, y) for x in vs for y in vs}
        for x in vs:
            for y in vs:
                for z in vs:
                    if table[x, y] <= 0 and table[y, z] <= 0:
                        assert table[x, z] <= 0
                    if table[x, y] == 0 and table[y, z] == 0:
                        assert table[x, z] == 0


@given(a=st.one_of(versions, release_shaped), b=st.one_of(versions, release_shaped))
def test_key_is_monotone_in_both_directions(a: str, b: str) -> None:
    """a < b gives key(a) <= key(b), a > b gives key(a) >= key(b), a = b gives equal keys."""
    for mod in (load("maven", i) for i in _BOTH):
        assert _key_agrees(mod, a, b, mod.compare(a, b))
        assert _key_agrees(mod, b, a, mod.compare(b, a))


@given(a=versions, b=versions)
def test_flat_walk_equals_the_literal_tree_port(a: str, b: str) -> None:
    """The modules' flat merge walk orders exactly as Java's nested-list recursion (3.8.6)."""
    want = tree_compare(a, b)
    for mod in (load("maven", i) for i in _BOTH):
        assert mod.compare(a, b) == want


_ANY_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789.-abmrcsApFG_+$:{/ \t\x00é", max_size=20),
    st.text(alphabet="19.-a", min_size=250, max_size=260),
)


@given(a=_ANY_TEXT, b=st.one_of(versions, _ANY_TEXT))
def test_pure_and_compiled_agree_on_results_keys_and_errors(a: str, b: str) -> None:
    """Same compare result, byte-identical key, same validity and reason, for any text."""
    pure, compiled = load("maven", "pure"), load("maven", "compiled")
    assert _outcome(lambda: pure.key(a)) == _outcome(lambda: compiled.key(a))
    assert _outcome(lambda: pure.compare(a, b)) == _outcome(lambda: compiled.compare(a, b))


_BAD_INSERT = st.sampled_from(
    [" ", "\t", "\n", "\x00", "\x7f", "é", "\u00a0", "日", "\\", "/", ":", '"', "<", ">", "|",
     "?", "*", "${"]
)  # fmt: skip


@given(v=versions, bad=_BAD_INSERT, at=st.integers(0, 30))
def test_invalid_strings_raise_in_both_implementations(v: str, bad: str, at: int) -> None:
    """A banned character anywhere makes the string invalid, for key and compare, in both."""
    s = v[:at] + bad + v[at:]
    for mod in (load("maven", i) for i in _BOTH):
        with pytest.raises(InvalidVersion):
            mod.key(s)
        with pytest.raises(InvalidVersion):
            mod.compare(s, "1.0")
        with pytest.raises(InvalidVersion):
            mod.compare("1.0", s)
