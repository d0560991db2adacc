"""The pep440 scheme: packaging's order, the 21.3 legacy fallback, validity, keys, batches.

Every test runs against both implementations (``impl`` fixture). The oracles:

* ``packaging.version.Version`` (the installed, current packaging) for PEP 440 strings,
  asked at test time on real PyPI versions (a committed sample, and the whole PyPA advisory
  database when ``../shared/data`` is present), on an adversarial grid and on Hypothesis
  strings;
* packaging 21.3's ``LegacyVersion`` for the rest, through the committed golden
  ``tests/data/versions/pep440-legacy-golden.txt`` (written by ``gen_pep440_legacy.py``
  next to it, which installs 21.3 into a temporary folder: the suite downloads nothing).

The packaging test vectors and osv-scalibr's pypi vectors in ``../shared/data/vectors`` are
read at test time only.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion as PackagingInvalid
from packaging.version import Version

from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule
from tests import paths
from tests.matcher.versions.conftest import IMPLEMENTATIONS, load, read_vectors

DATA = paths.DATA / "versions"
LEGACY_GOLDEN = DATA / "pep440-legacy-golden.txt"
PYPI_SAMPLE = DATA / "pep440-pypi-sample.txt"

#: The smallest PEP 440 version: every legacy string sorts below it.
SMALLEST = "0.dev0"
#: The InvalidVersion reasons, word for word (both implementations give the same ones).
EMPTY = "empty version string"
CONTROL = "not a PEP 440 version, and whitespace or control characters rule out the legacy ordering"
NON_ASCII = "not a PEP 440 version, and non-ASCII characters rule out the legacy ordering"


@pytest.fixture
def pep(impl: str) -> SchemeModule:
    """The pep440 module of the implementation under test."""
    return load("pep440", impl)


def _key_cmp(mod: SchemeModule, a: str, b: str) -> int:
    ka, kb = mod.key(a), mod.key(b)
    return (ka > kb) - (ka < kb)


def _packaging_cmp(a: str, b: str) -> int:
    va, vb = Version(a), Version(b)
    return (va > vb) - (va < vb)


def _packaging_valid(v: str) -> bool:
    try:
        Version(v)
    except PackagingInvalid:
        return False
    return True


def _is_pep440(mod: SchemeModule, v: str) -> bool:
    """Whether ``mod`` takes ``v`` as a PEP 440 version (not legacy, not invalid)."""
    try:
        return mod.key(v)[:1] == b"\x01"
    except InvalidVersion:
        return False


def _outcome(f: Callable[[], object]) -> object:
    """The result of ``f()``, or the InvalidVersion reason it raised (for pure == compiled)."""
    try:
        return f()
    except InvalidVersion as e:
        assert e.scheme == "pep440"
        return ("invalid", e.reason)


class PackagingOrder:
    """Versions sorted by packaging, with their parsed forms (built once per module)."""

    def __init__(self, versions: list[str]) -> None:
        self.parsed = {v: Version(v) for v in versions}
        self.versions = sorted(self.parsed, key=self.parsed.__getitem__)

    def expected(self, a: str, b: str) -> int:
        """packaging's verdict on ``a`` vs ``b``."""
        va, vb = self.parsed[a], self.parsed[b]
        return (va > vb) - (va < vb)


def _check_order_like_packaging(mod: SchemeModule, order: PackagingOrder, seed: int) -> None:
    """Adjacent pairs of packaging's order and random pairs must agree, keys too.

    Agreement on every adjacent pair of packaging's order (equal ones included), with keys
    in the same order, pins down the whole order; the random pairs check compare directly.
    """
    versions = order.versions
    keys = {v: mod.key(v) for v in versions}
    wrong = []
    for a, b in itertools.pairwise(versions):
        expected = order.expected(a, b)
        key_order = (keys[a] > keys[b]) - (keys[a] < keys[b])
        if mod.compare(a, b) != expected or key_order != expected:
            wrong.append((a, b, expected))
    rnd = random.Random(seed)
    for _ in range(3000):
        a, b = rnd.choice(versions), rnd.choice(versions)
        if mod.compare(a, b) != order.expected(a, b):
            wrong.append((a, b, order.expected(a, b)))
    assert wrong == []


# --------------------------------------------------------------------------------------
# Semantics, by example

SEMANTICS = [
    # epoch first, then release with trailing zeros ignored
    ("1!0.1", ">", "2.0"),
    ("0!1.0", "=", "1.0"),
    ("00!1.2", "=", "1.2"),
    ("1.0", "=", "1.0.0.0"),
    ("1.0", "<", "1.0.0.1"),
    ("0", "=", "0.0.0"),
    ("1.01", "=", "1.1"),
    ("1.9", "<", "1.10"),
    ("99999999999999999999999", "<", "100000000000000000000000"),
    # dev < pre < final < post; a dev-only version sorts before its alphas
    ("1.0.dev1", "<", "1.0a0"),
    ("1.0a1.dev1", "<", "1.0a1"),
    ("1.0a1", "<", "1.0b0"),
    ("1.0b2", "<", "1.0rc0"),
    ("1.0rc2", "<", "1.0"),
    ("1.0", "<", "1.0.post0.dev0"),
    ("1.0.post0.dev0", "<", "1.0.post0"),
    ("1.0.post1", "<", "1.0.1.dev0"),
    ("1.0a1.post1", "<", "1.0a2.dev0"),
    # spellings: alpha/beta/c/pre/preview, implicit and spelled post-releases, case, v
    ("1.0a1", "=", "1.0alpha1"),
    ("1.0b1", "=", "1.0-BETA.1"),
    ("1.0c1", "=", "1.0rc1"),
    ("1.0pre", "=", "1.0rc0"),
    ("1.0preview2", "=", "1.0_rc_2"),
    ("1.0-1", "=", "1.0.post1"),
    ("1.0r", "=", "1.0.post0"),
    ("1.0rev3", "=", "1.0-post3"),
    ("1.0.dev", "=", "1.0dev0"),
    ("V1.0", "=", "1.0"),
    ("1.0RC1", "=", "1.0rc1"),
    # local segments: after the public version, numbers above text, separators equal
    ("1.0", "<", "1.0+0"),
    ("1.0+abc", "<", "1.0+1"),
    ("1.0+abc", "=", "1.0+ABC"),
    ("1.0+a.b", "=", "1.0+a-b"),
    ("1.0+a.b", "=", "1.0+a_b"),
    ("1.0+01", "=", "1.0+1"),
    ("1.0+1", "<", "1.0+1.abc"),
    ("1.0+1.abc", "<", "1.0+1.1"),
    ("1.0+abc", "<", "1.0+abcd"),
    ("1.0+2", "<", "1.0+10"),
    ("1.0+1a", "<", "1.0+a"),
    ("1.0+local", "<", "1.0.post0"),
    # surrounding whitespace (Unicode too) is not part of the version
    (" 1.0\t\n", "=", "1.0"),
    ("\u3000v1.0\u2029", "=", "1.0"),
    ("\x1c1.0\x1f", "=", "1.0"),
    # legacy strings sort before every PEP 440 version, by 21.3's setuptools part list
    ("0.3m1", "<", SMALLEST),
    ("trunk", "<", "0"),
    ("99999999.x", "<", "0!0.dev0"),
    ("0.3m1", "<", "0.3m2"),
    ("0.3M1", "=", "0.3m1"),
    ("1.0.0x", "=", "1x"),  # trailing zeros of a number series are dropped
    ("1-rc-x", "=", "1c-x"),  # rc is c, and a "-" before a pre-release tag is dropped
    ("1.0-dev-x", "<", "1.0-a-x"),  # dev is "@", below every letter
    ("123456789.x", "<", "99999999.x"),  # numbers are padded to 8 and compared as text
    ("1.000000000.x", ">", "1.x"),  # nine zeros are not a padded zero, so not dropped
    ("2.0.0-final", ">", "2.0.0-beta-x"),
    ("2013-09-11T19-27-10", "<", "2013-12-23T17-51-15"),
]


@pytest.mark.parametrize(("a", "op", "b"), SEMANTICS)
def test_semantics_by_example(pep: SchemeModule, a: str, op: str, b: str) -> None:
    """Each documented rule holds in compare, both ways round, and in key order."""
    expected = {"<": -1, "=": 0, ">": 1}[op]
    assert pep.compare(a, b) == expected
    assert pep.compare(b, a) == -expected
    assert _key_cmp(pep, a, b) == expected
    if a.strip().isascii() and _packaging_valid(a) and _packaging_valid(b):
        assert _packaging_cmp(a, b) == expected  # the examples themselves are right


def test_equal_versions_have_identical_keys(pep: SchemeModule) -> None:
    """Versions that compare equal share one key byte for byte (an index finds either)."""
    for a, op, b in SEMANTICS:
        if op == "=":
            assert pep.key(a) == pep.key(b), (a, b)


# --------------------------------------------------------------------------------------
# Validity

INVALID = [
    ("", EMPTY),
    (" ", EMPTY),
    ("\t\n\r\x0b\x0c", EMPTY),
    ("\u3000\u2029", EMPTY),
    ("\x1c", EMPTY),
    ("french toast", CONTROL),
    ("1.0 beta", CONTROL),
    ("1. 0", CONTROL),
    (" foo", CONTROL),  # legacy strings keep their whitespace, so none is allowed
    ("foo\n", CONTROL),
    ("1.0\x00", CONTROL),
    ("1.0\x7f", CONTROL),
    ("\x1b[0m", CONTROL),
    ("\u0661\u0662\u0663", NON_ASCII),
    ("1.0\u00e9", NON_ASCII),
    ("1.0+\u0130", NON_ASCII),  # a Unicode letter that case-folds to ASCII
    ("1.0+\u212a", NON_ASCII),  # the Kelvin sign, likewise
    ("1.0\u200b", NON_ASCII),  # zero-width space is not whitespace
    ("\u00a01.0 x", NON_ASCII),
    ("\ud800", NON_ASCII),  # a lone surrogate has no UTF-8 form
    ("1.0\udfff", NON_ASCII),
]


@pytest.mark.parametrize(("v", "reason"), INVALID)
def test_invalid_strings_raise_with_their_reason(pep: SchemeModule, v: str, reason: str) -> None:
    """Empty strings, and non-PEP 440 strings outside printable ASCII, are InvalidVersion.

    Everywhere: key, compare on either side, and the batch calls; never a 0 result.
    """
    with pytest.raises(InvalidVersion) as info:
        pep.key(v)
    assert (info.value.scheme, info.value.version, info.value.reason) == ("pep440", v, reason)
    with pytest.raises(InvalidVersion):
        pep.compare(v, "1.0")
    with pytest.raises(InvalidVersion):
        pep.compare("1.0", v)
    with pytest.raises(InvalidVersion):
        pep.compare(v, v)
    with pytest.raises(InvalidVersion):
        pep.compare_many(["1.0", v], ["1.0", "1.0"])
    with pytest.raises(InvalidVersion):
        pep.key_many(["1.0", v])


def test_only_unicode_whitespace_may_surround_a_version(pep: SchemeModule) -> None:
    """A non-ASCII character is accepted exactly when packaging's ``\\s`` matches it.

    Every BMP code point (surrogates included) and some astral ones, before and after "1".
    """
    space = re.compile(r"\s")
    one = pep.key("1")
    wrong = []
    for c in [*range(0x80, 0x10000), 0x10000, 0x1F600, 0xE0020, 0x10FFFF]:
        ch = chr(c)
        expected = one if space.fullmatch(ch) else ("invalid", NON_ASCII)
        wrong += [
            hex(c)
            for v in (ch + "1", "1" + ch)
            if _outcome(functools.partial(pep.key, v)) != expected
        ]
    assert wrong == []


def test_ascii_whitespace_and_control_characters(pep: SchemeModule) -> None:
    """Each ASCII character around "1": stripped if ``\\s``, else PEP 440 or legacy or invalid.

    Legacy takes printable ASCII only; packaging decides what is PEP 440.
    """
    space = re.compile(r"\s")
    for c in range(128):
        ch = chr(c)
        for v in (ch + "1", "1" + ch, ch + "1" + ch):
            if space.fullmatch(ch):
                assert pep.key(v) == pep.key("1")
            elif _packaging_valid(v):
                assert pep.compare(v, v.strip()) == 0 and _is_pep440(pep, v)
            elif "!" <= ch <= "~":
                assert pep.key(v)[:1] == b"\x00", v  # legacy
            else:
                with pytest.raises(InvalidVersion):
                    pep.key(v)


def test_numbers_of_any_size_compare_numerically(pep: SchemeModule) -> None:
    """Components past 255 digits (the long length form) and past int's 4300 digits order."""
    for digits in (254, 255, 256, 5000):
        big = "9" * digits
        bigger = "1" + "0" * digits
        assert pep.compare("1." + big, "1." + bigger) == -1
        assert pep.compare(big + "!1", bigger + "!0") == -1
        assert pep.compare("1a" + big, "1a" + bigger) == -1
        assert pep.compare("1+" + big, "1+" + bigger) == -1
        assert pep.compare("0" * digits + "1", "1") == 0
        assert pep.key("1.0" + "0" * digits) == pep.key("1")
        assert _key_cmp(pep, "1." + big, "1." + bigger) == -1
    # Legacy numbers are text padded to eight digits, whatever their size.
    assert pep.compare("9" * 300 + ".x", "1" + "0" * 300 + ".x") == 1


# --------------------------------------------------------------------------------------
# The shared vectors (read at test time: not copied into the repo)


def test_shared_sorted_versions_ascend(shared_data: Path, pep: SchemeModule) -> None:
    """packaging's VERSIONS list: each version is strictly older than the next, keys too."""
    path = shared_data / "vectors" / "pep440" / "packaging-VERSIONS-sorted.txt"
    versions = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(versions) > 80
    for a, b in itertools.pairwise(versions):
        assert pep.compare(a, b) == -1, (a, b)
    assert sorted(versions, key=pep.key) == versions
    shuffled = random.Random(5).sample(versions, len(versions))
    assert sorted(shuffled, key=functools.cmp_to_key(pep.compare)) == versions


def test_shared_adjacent_pairs(shared_data: Path, pep: SchemeModule) -> None:
    """packaging's adjacent pairs hold in compare and in key order."""
    path = shared_data / "vectors" / "pep440" / "packaging-adjacent-lt.txt"
    cases = list(read_vectors(path))
    assert len(cases) > 80
    for a, expected, b, line in cases:
        assert (pep.compare(a, b), _key_cmp(pep, a, b)) == (expected, expected), line


def test_shared_normalized_forms_are_equal(shared_data: Path, pep: SchemeModule) -> None:
    """Each spelling equals its normal form (same key).

    The file was written without escaping, so the inputs holding a tab or newline span
    lines there; such a fragment (one side blank) still checks that its whitespace-wrapped
    side equals its stripped self.
    """
    path = shared_data / "vectors" / "pep440" / "packaging-normalized.txt"
    checked = 0
    for line in path.read_text(encoding="utf-8").split("\n"):
        if "\t" not in line or line.startswith("#"):
            continue
        given_, normal = line.rsplit("\t", 1)
        if not given_.strip() or not normal.strip():
            given_ = given_ if given_.strip() else normal
            normal = given_.strip()
        assert pep.compare(given_, normal) == 0, (given_, normal)
        assert pep.key(given_) == pep.key(normal)
        assert _is_pep440(pep, normal)
        checked += 1
    assert checked > 100


def test_shared_invalid_strings_are_not_pep440(shared_data: Path, pep: SchemeModule) -> None:
    """packaging's invalid strings are never taken as PEP 440: invalid, or legacy (below
    ``0.dev0``) when they are printable ASCII."""
    path = shared_data / "vectors" / "pep440" / "packaging-invalid.txt"
    seen = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith('"'):
            continue
        v = json.loads(line)
        seen += 1
        if v.isascii() and v and all("!" <= c <= "~" for c in v):
            assert pep.compare(v, SMALLEST) == -1, v
        else:
            with pytest.raises(InvalidVersion):
                pep.key(v)
    assert seen >= 20


def test_shared_specifier_checks_that_are_plain_ordering(
    shared_data: Path, pep: SchemeModule
) -> None:
    """The specifier cases whose operator is a plain comparison (>=, <=, ==, != without a
    wildcard, version without a local part: packaging compares the keys directly there)."""
    path = shared_data / "vectors" / "pep440" / "packaging-specifier-contains.txt"
    ops: dict[str, Callable[[int], bool]] = {
        ">=": lambda c: c >= 0,
        "<=": lambda c: c <= 0,
        "==": lambda c: c == 0,
        "!=": lambda c: c != 0,
    }
    checked = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.count("\t") != 2:
            continue
        version, spec, expected = line.split("\t")
        m = re.fullmatch(r"(>=|<=|==|!=)([^=*]+)", spec)
        if not m or "+" in version:
            continue
        assert ops[m.group(1)](pep.compare(version, m.group(2))) == (expected == "True"), line
        checked += 1
    assert checked > 40


def test_shared_osv_scalibr_pypi_vectors(shared_data: Path, pep: SchemeModule) -> None:
    """osv-scalibr's pypi comparisons (legacy strings included); ``//`` lines are comments."""
    path = shared_data / "vectors" / "osv-scalibr" / "pypi-versions.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    cases = [c for c in read_vectors(path) if not lines[c[3] - 1].lstrip().startswith("//")]
    assert len(cases) > 30
    for a, expected, b, line in cases:
        assert (pep.compare(a, b), _key_cmp(pep, a, b)) == (expected, expected), (line, a, b)


# --------------------------------------------------------------------------------------
# Differential: real PyPI versions against packaging

_BLOCK = re.compile(r"^( *)versions:\n((?:\1 *- .*\n)+)", re.M)
_ITEM = re.compile(r"""^ *- (?:'([^']*)'|"([^"\\]*)"|(.*?))[ \t]*$""", re.M)


def _osv_versions(root: Path) -> Iterator[str]:
    """The ``versions`` list entries of the OSV YAML records under ``root``.

    A line scan rather than a YAML load (a third of the time); it reads these files the
    same as PyYAML does (checked when the scan was written: the same 12,956 strings).
    """
    for path in root.rglob("*.yaml"):
        for block in _BLOCK.finditer(path.read_text(encoding="utf-8")):
            for m in _ITEM.finditer(block.group(2)):
                yield next(g for g in m.groups() if g is not None)


@pytest.fixture(scope="module")
def pypi_sample() -> PackagingOrder:
    """The committed sample of real PyPI versions, in packaging's order."""
    lines = PYPI_SAMPLE.read_text(encoding="utf-8").splitlines()
    return PackagingOrder([line for line in lines if line[:1] != "#"])


@pytest.fixture(scope="module")
def osv_pypi(shared_data: Path) -> tuple[PackagingOrder, list[str]]:
    """All versions of the PyPA advisory database: the PEP 440 ones in packaging's order,
    and the others."""
    found = sorted(set(_osv_versions(shared_data / "advisories" / "osv" / "pypi")))
    valid = {v for v in found if _packaging_valid(v)}
    return PackagingOrder(sorted(valid)), [v for v in found if v not in valid]


def test_pypi_sample_orders_like_packaging(pypi_sample: PackagingOrder, pep: SchemeModule) -> None:
    """The committed sample of real PyPI versions orders exactly as packaging orders it."""
    assert len(pypi_sample.versions) > 2000
    _check_order_like_packaging(pep, pypi_sample, seed=1)


def test_osv_pypi_versions_order_like_packaging(
    osv_pypi: tuple[PackagingOrder, list[str]], pep: SchemeModule
) -> None:
    """Every version in the PyPA advisory database: packaging's order for the PEP 440 ones,
    and the rest (legacy) below all of them."""
    valid, legacy = osv_pypi
    assert len(valid.versions) > 10000 and len(legacy) > 50
    _check_order_like_packaging(pep, valid, seed=2)
    smallest = pep.key(SMALLEST)
    assert [v for v in legacy if not pep.key(v) < smallest] == []


# --------------------------------------------------------------------------------------
# Differential: the legacy fallback against packaging 21.3


def test_legacy_golden_orders_like_packaging_21_3(pep: SchemeModule) -> None:
    """Every pair of the golden (real and adversarial non-PEP 440 strings, PEP 440 anchors)
    compares as packaging 21.3's parse() compared it, in compare and in key order."""
    cases = list(read_vectors(LEGACY_GOLDEN))
    assert len(cases) > 5000
    strings = {s for a, _, b, _ in cases for s in (a, b)}
    keys = {s: pep.key(s) for s in strings}
    wrong = [
        (line, a, b, expected)
        for a, expected, b, line in cases
        if pep.compare(a, b) != expected or (keys[a] > keys[b]) - (keys[a] < keys[b]) != expected
    ]
    assert wrong == []


# --------------------------------------------------------------------------------------
# Differential: an adversarial grid against packaging


def _words(text: str) -> list[str]:
    return text.split()


_EPOCHS = ["", "0!", "1!", "00!", "10!", "9999999999999999999999!"]
_RELEASES = [
    *_words("0 0.0 1 1.0 1.0.0 01.00 1.2 1.10 1.9 1.0.0.0.0.1 999999999999999999999 2024.10.10"),
    "1." + "0" * 40,
    "1." + "7" * 300,
]
_PRES = ["", *_words("a a1 A01 alpha2 b beta c c3 rc1 RC1 pre preview3 -rc.1 _b_2 .A5 -alpha-0")]
_POSTS = ["", *_words(".post -1 post2 rev r3 .post-4 _r_5 -POST6 -0")]
_DEVS = ["", *_words(".dev dev1 -dev2 _DEV_3 .dev00")]
_LOCALS = ["", *_words("+abc +1 +1.abc +abc.1 +0 +00 +a-b_c +ubuntu.1.2 +1a +ABC +a.b.c.d.e.f")]
_LOCALS.append("+" + "9" * 300)


def _grid(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    parts = (_EPOCHS, _RELEASES, _PRES, _POSTS, _DEVS, _LOCALS)
    out = {"".join(rnd.choice(p) for p in parts) for _ in range(count)}
    # And each component alone on a plain base, so every spelling meets its neighbours.
    for i, p in enumerate(parts):
        for x in p:
            base = ["", "1.0", "", "", "", ""]
            base[i] = x
            out.add("".join(base))
    return sorted(out)


def test_adversarial_grid_orders_like_packaging(pep: SchemeModule) -> None:
    """Epochs, leading zeros, huge numbers, every pre/post/dev spelling and local shape."""
    versions = _grid(seed=3, count=4000)
    rejected = [v for v in versions if not _packaging_valid(v)]
    assert rejected == []  # the grid is built from valid pieces only
    _check_order_like_packaging(pep, PackagingOrder(versions), seed=4)


def test_every_pre_post_dev_local_combination_orders_like_packaging(pep: SchemeModule) -> None:
    """The full product of suffix shapes (absent, zero, spelled, numbered) on two releases."""
    pres = ["", "a", "a1", "b2", "rc0", "c1", "pre2", "preview"]
    posts = ["", "-0", ".post", ".post1", "r2", "-3"]
    devs = ["", ".dev", ".dev0", ".dev1"]
    locals_ = ["", "+0", "+1", "+a", "+a.0", "+0.a"]
    versions = [
        "".join(parts)
        for parts in itertools.product(["1.0", "1.0.0.1"], pres, posts, devs, locals_)
    ]
    _check_order_like_packaging(pep, PackagingOrder(versions), seed=6)


# --------------------------------------------------------------------------------------
# Hypothesis properties

_NUMS = ["0", "1", "2", "9", "10", "00", "01", "007", "123", "4294967296", "9" * 25]
_SEPS = ["", ".", "-", "_"]
_SPACES = ["", "", "", " ", "\t\n", "\u3000", "\x1c"]
_PRE_WORDS = ["a", "A", "alpha", "b", "beta", "Beta", "c", "rc", "RC", "pre", "preview"]
_LOCAL_TEXT = ["abc", "x", "ubuntu", "1a", "A0", "zz9", "deadbeef"]
_num = st.one_of(st.sampled_from(_NUMS), st.integers(0, 10**6).map(str))
_opt_num = st.one_of(st.just(""), _num)
_sep = st.sampled_from(_SEPS)


@st.composite
def _pep440_like(draw: st.DrawFn) -> str:
    """Strings shaped like PEP 440 versions (a few are not valid: the tests ask packaging)."""
    out = [draw(st.sampled_from(_SPACES)), draw(st.sampled_from(["", "", "v", "V"]))]
    if draw(st.booleans()):
        out.append(draw(_num) + "!")
    out.append(".".join(draw(st.lists(_num, min_size=1, max_size=5))))
    if draw(st.booleans()):
        out += [draw(_sep), draw(st.sampled_from(_PRE_WORDS)), draw(_sep), draw(_opt_num)]
    post = draw(st.integers(0, 2))
    if post == 1:
        out += ["-", draw(_num)]
    elif post == 2:
        out += [draw(_sep), draw(st.sampled_from(["post", "rev", "r", "POST"])), draw(_sep)]
        out.append(draw(_opt_num))
    if draw(st.booleans()):
        out += [draw(_sep), draw(st.sampled_from(["dev", "DEV"])), draw(_sep), draw(_opt_num)]
    if draw(st.booleans()):
        segs = draw(st.lists(st.one_of(_num, st.sampled_from(_LOCAL_TEXT)), min_size=1, max_size=4))
        out.append("+" + "".join(draw(st.sampled_from(".-_")) + x for x in segs)[1:])
    out.append(draw(st.sampled_from(_SPACES)))
    return "".join(out)


pep440_like = _pep440_like()
_LEGACY_TOKENS = _words("""
    0 1 2 00 10 123456789 00000000 . - _ + ! ~ @ * : a b c rc pre preview dev post final FINAL
    fin x Z v
""")
#: Printable-ASCII strings that are mostly not PEP 440: the legacy fallback.
legacy_like = st.lists(st.sampled_from(_LEGACY_TOKENS), min_size=1, max_size=8).map("".join)
versions = st.one_of(pep440_like, legacy_like)
#: Anything at all: ASCII noise near the grammar, any Unicode (lone surrogates included).
anything = st.one_of(
    st.text(
        st.sampled_from("0123456789.-_+!vVaAbBcCrRpPoOsStTdD \t\n\x00\u3000\u00e9"), max_size=16
    ),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
    pep440_like,
    legacy_like,
)
_BOTH = [load("pep440", impl) for impl in IMPLEMENTATIONS]


@given(a=pep440_like, b=pep440_like)
def test_pep440_pairs_order_like_packaging(a: str, b: str) -> None:
    """Generated PEP 440 strings: same validity as packaging, same order where valid."""
    va, vb = _packaging_valid(a), _packaging_valid(b)
    for pep in _BOTH:
        assert (_is_pep440(pep, a), _is_pep440(pep, b)) == (va, vb)
        if va and vb:
            assert pep.compare(a, b) == _packaging_cmp(a, b)


@given(v=anything)
def test_pep440_classification_equals_packaging(v: str) -> None:
    """Any string is taken as PEP 440 exactly when packaging's Version accepts it."""
    for pep in _BOTH:
        assert _is_pep440(pep, v) == _packaging_valid(v)


@given(a=versions, b=versions)
def test_antisymmetry(a: str, b: str) -> None:
    """compare(a, b) == -compare(b, a), and compare(a, a) == 0."""
    for pep in _BOTH:
        assert pep.compare(a, b) == -pep.compare(b, a)
        assert pep.compare(a, a) == 0


@given(a=versions, b=versions, c=versions)
def test_transitivity(a: str, b: str, c: str) -> None:
    """Sorted by compare, every earlier element is <= every later one."""
    for pep in _BOTH:
        x, y, z = sorted((a, b, c), key=functools.cmp_to_key(pep.compare))
        assert pep.compare(x, y) <= 0 and pep.compare(y, z) <= 0 and pep.compare(x, z) <= 0


@given(a=versions, b=versions)
def test_key_order_is_compare_order(a: str, b: str) -> None:
    """key(a) < key(b) exactly when compare(a, b) < 0; equal keys exactly when equal."""
    for pep in _BOTH:
        assert _key_cmp(pep, a, b) == pep.compare(a, b)


@given(v=anything, w=versions)
def test_pure_and_compiled_agree(v: str, w: str) -> None:
    """Same key bytes, same compare result, same validity and reason, for any string."""
    compiled, pure = _BOTH
    assert _outcome(lambda: compiled.key(v)) == _outcome(lambda: pure.key(v))
    assert _outcome(lambda: compiled.compare(v, w)) == _outcome(lambda: pure.compare(v, w))
    assert _outcome(lambda: compiled.compare(w, v)) == _outcome(lambda: pure.compare(w, v))


@given(v=anything)
def test_invalid_strings_raise_in_both(v: str) -> None:
    """Whatever one implementation rejects, the other rejects too, everywhere it is used."""
    outcomes = [_outcome(functools.partial(pep.key, v)) for pep in _BOTH]
    assert outcomes[0] == outcomes[1]
    if isinstance(outcomes[0], tuple):
        for pep in _BOTH:
            with pytest.raises(InvalidVersion):
                pep.compare(v, "1.0")
            with pytest.raises(InvalidVersion):
                pep.compare_many(["1.0"], [v])


# --------------------------------------------------------------------------------------
# Batches and the module surface


def test_batches_equal_single_calls(pep: SchemeModule) -> None:
    """compare_many / key_many return exactly the per-item results, in order."""
    a = ["1.0", "1.0a1", "0.3m1", " 2.0 ", "1!0", "1.0+local"]
    b = ["1.0.0", "1.0", "0.3m2", "2", "9", "1.0"]
    assert pep.compare_many(a, b) == [pep.compare(x, y) for x, y in zip(a, b, strict=True)]
    assert pep.key_many(a) == [pep.key(x) for x in a]
    assert pep.key_many(tuple(b)) == [pep.key(x) for x in b]
    assert pep.compare_many([], []) == [] and pep.key_many([]) == []


def test_compare_many_rejects_unequal_lengths(pep: SchemeModule) -> None:
    """A batch with a missing partner is a ValueError, not a shorter result."""
    with pytest.raises(ValueError, match="equal lengths"):
        pep.compare_many(["1.0"], ["1.0", "2.0"])


def test_keys_are_authoritative(pep: SchemeModule) -> None:
    """The key is lossless (the index needs no re-check with compare)."""
    assert pep.AUTHORITATIVE is True


def test_long_inputs_use_heap_buffers_correctly(pep: SchemeModule) -> None:
    """Keys longer than the compiled module's inline buffer (512 bytes) are still exact."""
    many = ".".join(str(i) for i in range(1, 400))
    assert pep.compare(many, many + ".1") == -1
    assert pep.compare(many + "+" + "a." * 200 + "b", many + "+" + "a." * 200 + "c") == -1
    legacy = "-".join(["1"] * 300) + "x"
    assert pep.compare(legacy, legacy + "y") == -1
    assert pep.compare_many([many] * 3, [many, many + ".0", many + ".1"]) == [0, 0, -1]
    assert pep.key_many([legacy, many]) == [pep.key(legacy), pep.key(many)]


class _Tagged(str):
    """A str subclass, as StrEnum members and some decoders produce."""


def test_non_strings_are_type_errors_and_str_subclasses_are_versions(pep: SchemeModule) -> None:
    """Anything but a str is a TypeError in every entry point; a str subclass is a str."""
    for bad in (None, 1, b"1.0"):
        with pytest.raises(TypeError):
            pep.compare(bad, "1.0")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pep.compare("1.0", bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pep.key(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pep.compare_many(["1.0"], [bad])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            pep.key_many(["1.0", bad])  # type: ignore[list-item]
    assert pep.key(_Tagged(" 1.0a1 ")) == pep.key("1.0a1")
    assert pep.compare(_Tagged("0.3m1"), _Tagged("0.3m2")) == -1
    assert pep.compare_many([_Tagged("1")], ["1.0"]) == [0]
