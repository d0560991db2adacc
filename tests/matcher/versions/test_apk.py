"""The apk scheme (Alpine, Wolfi, Chainguard): apk-tools 3 semantics, validity, lossless keys.

The one extension of apk-tools 3's grammar, digits after the letter (``6.6.2p1-r0``, read as
apk-tools 2.10 read them), is held to osv-scalibr's vectors for it and to real secdb data.

Every test runs against both implementations (``impl`` fixture). There is no apk reference
tool on Debian, so the oracles are:

* apk-tools' own unit-test data, ``../shared/data/vectors/apk`` (GPL-2.0: read at test time,
  never copied): 754 comparisons (``<`` ``>`` ``=`` ``<=`` ``>=`` ``~`` and ``!``-negated
  forms, semantics of ``test/unit/version_test.c``) and 31 validity checks;
* google/osv-scalibr's alpine vectors (Apache-2.0), committed as
  ``tests/data/versions/apk-osv-scalibr.txt`` so they run without ``../shared``;
* the grammar as a regular expression (``_GRAMMAR``), written independently of both
  tokenisers, for validity;
* univers' ``AlpineLinuxVersion`` on real version strings (a second implementation, skipped
  where univers is not installed; it differs from apk-tools 3 on leading zeros and ``-r0``,
  so only strings without those are compared).

Strings that apk-tools would still order although they are invalid (``1.0bc``, ``23_foo``)
raise ``InvalidVersion`` here, by the scheme contract: the vector tests assert exactly that
for those rows, and count them so that none slips through as "skipped". apk-tools 3's
validity rows hold but one, pinned: ``0.1a1``, the apk-tools 2.10 form accepted here.
"""

from __future__ import annotations

import functools
import glob
import random
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule
from tests import paths
from tests.matcher.versions.conftest import load

DATA = paths.DATA / "versions"
SAMPLE = DATA / "apk-versions.txt"
SCALIBR = DATA / "apk-osv-scalibr.txt"

# The whole grammar of an apk-tools 3 version (src/version.c's token state machine, restated),
# with the digits apk-tools 2.10 also accepted after the letter ("[0-9]*" after "[a-z]").
_GRAMMAR = re.compile(
    r"[0-9]+(\.[0-9]+)*([a-z][0-9]*)?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*"
    r"(~[0-9a-f]+)?(-r[0-9]+)?"
)
# apk-tools 3's validity rows that this scheme answers otherwise, on purpose: a letter
# followed by digits, which apk-tools 2.10 accepted and Alpine's secdb uses (6.6.2p1-r0).
APK3_REJECTS_ACCEPTED_HERE = {"0.1a1"}

# apk_version_result_mask: each operator character is a bit; '~' is fuzzy and also "equal".
_LESS, _EQUAL, _GREATER, _FUZZY = 1, 2, 4, 8
_OP_BITS = {"<": _LESS, "=": _EQUAL, ">": _GREATER, "~": _FUZZY | _EQUAL}
_RESULT_BIT = {-1: _LESS, 0: _EQUAL, 1: _GREATER}


@pytest.fixture
def apk(impl: str) -> SchemeModule:
    """The apk module of the implementation under test."""
    return load("apk", impl)


def _valid(v: str) -> bool:
    return _GRAMMAR.fullmatch(v) is not None


def _key_cmp(mod: SchemeModule, a: str, b: str) -> int:
    ka, kb = mod.key(a), mod.key(b)
    return (ka > kb) - (ka < kb)


def _outcome(f: functools.partial[object]) -> object:
    """``f()``, or ("invalid", reason) when it raised InvalidVersion (for pure == compiled)."""
    try:
        return f()
    except InvalidVersion as e:
        assert e.scheme == "apk"
        return ("invalid", e.reason)


def _fuzzy_compare(mod: SchemeModule, a: str, b: str) -> int:
    """apk's fuzzy comparison: ``a`` equals ``b`` when b's tokens are a prefix of a's.

    The key is the token sequence followed by a one-byte end marker and every token is
    self-delimiting (module docstring), so the prefix test is a byte-prefix test on the keys.
    """
    if mod.key(a).startswith(mod.key(b)[:-1]):
        return 0
    return mod.compare(a, b)


def _op_rows(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """``(line, a, op, b)`` for every ``A OP B`` row (trailing ``#`` comments dropped)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if body:
            a, op, b = body.split()
            yield n, a, op, b


def _check_row(mod: SchemeModule, a: str, op: str, b: str) -> bool:
    """Whether ``a OP b`` holds (version_test.c: any bit of the mask; '!' negates)."""
    negate = op.startswith("!")
    mask = 0
    for ch in op.lstrip("!"):
        mask |= _OP_BITS[ch]
    r = _fuzzy_compare(mod, a, b) if mask & _FUZZY else mod.compare(a, b)
    return bool(_RESULT_BIT[r] & mask) != negate


def _check_vector_file(mod: SchemeModule, path: Path) -> int:
    """Check every row of ``path``; return how many had an invalid side (those must raise)."""
    invalid = 0
    failures = []
    for n, a, op, b in _op_rows(path):
        if _valid(a) and _valid(b):
            if not _check_row(mod, a, op, b):
                failures.append(f"{path.name}:{n}: {a} {op} {b} (compare={mod.compare(a, b)})")
            continue
        invalid += 1
        with pytest.raises(InvalidVersion):
            mod.compare(a, b)
        with pytest.raises(InvalidVersion):
            mod.compare(b, a)
    assert not failures, "\n".join(failures)
    return invalid


def _sample() -> tuple[list[str], list[str]]:
    valid, invalid = [], []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("!"):
            invalid.append(line[1:])
        elif line:
            valid.append(line)
    return valid, invalid


SAMPLE_VALID, SAMPLE_INVALID = _sample()


# --- apk-tools' own vectors (../shared) -----------------------------------------------------


def test_apk_tools_comparisons_all_hold(apk: SchemeModule, shared_data: Path) -> None:
    """Every row of apk-tools' version.data whose versions are valid holds, incl. ~ and !.

    The 4 rows with an invalid side (apk-tools orders those by how far they parse) must
    raise InvalidVersion instead; the count pins that no other row is set aside.
    """
    path = shared_data / "vectors" / "apk" / "apk-version-compare.txt"
    rows = list(_op_rows(path))
    assert len(rows) == 754
    assert _check_vector_file(apk, path) == 4


def test_apk_tools_validity_all_hold(apk: SchemeModule, shared_data: Path) -> None:
    """apk-tools' validity rows: a bare version is valid, ``!version`` is invalid."""
    path = shared_data / "vectors" / "apk" / "apk-version-validity.txt"
    rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    assert len(rows) == 31
    accepted_anyway = set()
    for row in rows:
        v, expect_valid = (row[1:], False) if row.startswith("!") else (row, True)
        if not expect_valid and v in APK3_REJECTS_ACCEPTED_HERE:
            accepted_anyway.add(v)
            expect_valid = True
        assert _valid(v) == expect_valid, v  # the grammar oracle agrees with apk-tools
        if expect_valid:
            apk.key(v)
            assert apk.compare(v, v) == 0
        else:
            with pytest.raises(InvalidVersion):
                apk.key(v)
    assert accepted_anyway == APK3_REJECTS_ACCEPTED_HERE


def test_osv_scalibr_vectors_all_hold(apk: SchemeModule) -> None:
    """osv-scalibr's alpine rows (committed copy) hold; the 33 with an invalid side raise.

    Those 33 are the file's "technically invalid" rows (``1-r-0``, ``0..8``, ``0.8.21.r2``,
    ``1.2_blah``, ``.1``, ``a`` ...), whose order differs between apk-tools 2 and 3 anyway.
    Its four ``6.6.2p1`` rows (the abuild#10088 versions) are valid here and hold.
    """
    assert _check_vector_file(apk, SCALIBR) == 33


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        # osv-scalibr's alpine vectors (abuild issue 10088: OpenSMTPD's 6.6.2p1)
        ("6.6.2_p1", "6.6.2p1"),
        ("6.6.2_p2", "6.6.2p1"),
        ("6.6.2p1", "6.6.2p2"),
        # real secdb: Alpine 3.11's fix of CVE-2020-7247, above every 6.6.1 and 6.6.2 build
        ("6.6.1-r0", "6.6.2p1-r0"),
        ("6.6.1p1-r5", "6.6.2p1-r0"),
        ("6.6.2-r9", "6.6.2p1-r0"),
        ("6.6.2p1-r0", "6.6.2p1-r1"),
        ("6.6.2p1-r0", "6.6.3-r0"),
        ("6.6.2p1_rc1-r0", "6.6.2p1-r0"),
        # the number after the letter is numeric (apk-tools 2.10's TOKEN_DIGIT), u64 like
        # every apk number, and newer than anything else that can follow the letter
        ("5.1p9", "5.1p10"),
        ("1.0a", "1.0a0"),
        ("1.0a-r9", "1.0a0"),
        ("1.0a_p9", "1.0a0"),
        ("1.0a~ff", "1.0a0"),
        ("1.0a99", "1.0b"),
        ("1.0a99", "1.0.0"),
    ],
)
def test_number_after_the_letter(apk: SchemeModule, older: str, newer: str) -> None:
    """A letter followed by digits orders as apk-tools 2.10 ordered it (and the key agrees)."""
    assert apk.compare(older, newer) == -1
    assert apk.compare(newer, older) == 1
    assert apk.key(older) < apk.key(newer)


def test_number_after_the_letter_ignores_leading_zeros(apk: SchemeModule) -> None:
    """It is read as a number, not as a dotted part (whose leading 0 makes it a string)."""
    assert apk.compare("6.6.2p01-r0", "6.6.2p1-r0") == 0
    assert apk.key("6.6.2p01-r0") == apk.key("6.6.2p1-r0")
    assert apk.compare("1a18446744073709551617", "1a1") == 0  # uint64_t wraps


# --- semantics ----------------------------------------------------------------------------

# Each version is older than the next: every suffix, the end, revision, hash, letter, dots.
_CHAIN = [
    "1.0_alpha",
    "1.0_alpha1",
    "1.0_alpha1_p",
    "1.0_alpha2",
    "1.0_beta",
    "1.0_pre",
    "1.0_rc",
    "1.0_rc1",
    "1.0_rc1~ab",
    "1.0",
    "1.0-r1",
    "1.0-r2",
    "1.0~0",
    "1.0~0-r1",
    "1.0~1",
    "1.0~10",
    "1.0~a",
    "1.0_cvs",
    "1.0_svn",
    "1.0_git",
    "1.0_git20240101",
    "1.0_hg",
    "1.0_p_alpha",
    "1.0_p",
    "1.0_p1",
    "1.0_p2",
    "1.0_p10",
    "1.0a_rc1",
    "1.0a",
    "1.0a_p1",
    "1.0a0",
    "1.0a1_rc1",
    "1.0a1",
    "1.0a1-r1",
    "1.0a1_p1",
    "1.0a2",
    "1.0a10",
    "1.0z",
    "1.0.0",
    "1.0.1",
    "1.00",
    "1.000",
    "1.01",
    "1.05",
    "1.1",
    "1.2",
    "1.10",
    "2",
]


def test_order_chain(apk: SchemeModule) -> None:
    """Pre-release suffixes < plain < revision < hash < post suffixes < letter (then the
    number after it) < more dots."""
    for i, a in enumerate(_CHAIN):
        for b in _CHAIN[i + 1 :]:
            assert apk.compare(a, b) == -1, (a, b)
            assert apk.compare(b, a) == 1, (b, a)
            assert apk.key(a) < apk.key(b), (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("01", "1"),  # the first number is always numeric
        ("007.1", "7.1"),
        ("1.2-r01", "1.2-r1"),  # revision and suffix numbers too
        ("1.2_p007", "1.2_p7"),
        ("1.18446744073709551617", "1.1"),  # uint64_t wraps, as in apk-tools
        ("18446744073709551616", "0"),
        ("1_p18446744073709551626", "1_p10"),
    ],
)
def test_equal_spellings(apk: SchemeModule, a: str, b: str) -> None:
    """Numbers apk reads as equal compare 0 and get identical keys (the key is lossless)."""
    assert apk.compare(a, b) == 0
    assert apk.key(a) == apk.key(b)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0", "1.00"),  # a dotted number starting with 0 compares as a string
        ("1.05", "1.1"),
        ("1.09", "1.1"),
        ("1.010", "1.09"),
        ("1.0", "1.0-r0"),  # an explicit -r0 is still "more" than no revision
        ("1", "18446744073709551615"),  # 2**64 - 1: the largest value before the wrap
    ],
)
def test_distinct_spellings(apk: SchemeModule, older: str, newer: str) -> None:
    """Leading zeros after a dot and an explicit ``-r0`` are significant."""
    assert apk.compare(older, newer) == -1
    assert apk.compare(newer, older) == 1
    assert apk.key(older) < apk.key(newer)


def test_compare_validates_past_the_decision(apk: SchemeModule) -> None:
    """An invalid tail raises even when the first tokens already decide the order."""
    for a, b in [("1", "2.0bc"), ("2.0bc", "1"), ("1.0", "1.0_foo"), ("3-r1", "1-r1-r2")]:
        with pytest.raises(InvalidVersion) as info:
            apk.compare(a, b)
        assert info.value.version in (a, b)
        assert info.value.scheme == "apk"


@pytest.mark.parametrize("v", SAMPLE_INVALID)
def test_invalid_sample_raises(apk: SchemeModule, v: str) -> None:
    """Broken secfixes-style strings raise InvalidVersion from key, compare and the batches."""
    assert not _valid(v)
    with pytest.raises(InvalidVersion, match="invalid apk version"):
        apk.key(v)
    with pytest.raises(InvalidVersion):
        apk.compare("1.0", v)
    with pytest.raises(InvalidVersion):
        apk.key_many(["1.0", v])
    with pytest.raises(InvalidVersion):
        apk.compare_many([v], ["1.0"])


def test_none_is_a_type_error(apk: SchemeModule) -> None:
    """A non-string is a caller bug (TypeError), not an invalid version, in every entry point."""
    with pytest.raises(TypeError):
        apk.compare(None, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apk.key_many(["1", None])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        apk.compare_many(["1"], [None])  # type: ignore[list-item]


def test_batches_match_single_calls(apk: SchemeModule) -> None:
    """compare_many / key_many give the per-pair results; unequal lengths are a ValueError."""
    rng = random.Random(3)
    a = [rng.choice(SAMPLE_VALID) for _ in range(300)]
    b = [rng.choice(SAMPLE_VALID) for _ in range(300)]
    assert apk.compare_many(a, b) == [apk.compare(x, y) for x, y in zip(a, b, strict=True)]
    assert apk.key_many(a) == [apk.key(x) for x in a]
    with pytest.raises(ValueError):
        apk.compare_many(a, b[:-1])


def test_authoritative(apk: SchemeModule) -> None:
    """The key is declared lossless (the properties below hold it to that)."""
    assert apk.AUTHORITATIVE is True


# --- real version strings -----------------------------------------------------------------


def _check_total_order(mod: SchemeModule, versions: list[str]) -> None:
    """Sorting by key equals sorting by compare, and neighbours compare as their keys do."""
    by_key = sorted(versions, key=mod.key)
    by_cmp = sorted(versions, key=functools.cmp_to_key(mod.compare))
    assert [mod.key(v) for v in by_key] == [mod.key(v) for v in by_cmp]
    for x, y in zip(by_key, by_key[1:], strict=False):
        assert mod.compare(x, y) == _key_cmp(mod, x, y) <= 0, (x, y)


def test_sample_is_valid_and_totally_ordered(apk: SchemeModule) -> None:
    """The committed real-looking sample is valid, and key order is compare order on it."""
    assert len(SAMPLE_VALID) > 150
    for v in SAMPLE_VALID:
        assert _valid(v), v
    _check_total_order(apk, SAMPLE_VALID)


def test_sample_pure_equals_compiled() -> None:
    """On every pair of the sample, pure and compiled compare alike and keys are identical."""
    pure, comp = load("apk", "pure"), load("apk", "compiled")
    assert pure.key_many(SAMPLE_VALID) == comp.key_many(SAMPLE_VALID)
    for a in SAMPLE_VALID:
        assert pure.compare_many([a] * len(SAMPLE_VALID), SAMPLE_VALID) == comp.compare_many(
            [a] * len(SAMPLE_VALID), SAMPLE_VALID
        )
    for v in SAMPLE_INVALID:
        assert _outcome(functools.partial(pure.key, v)) == _outcome(functools.partial(comp.key, v))


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_WOLFI_FIXED = re.compile(r"^\s+fixed-version:\s*[\"']?([^\"'\s]+)", re.M)


def _advisory_versions(root: Path) -> set[str]:
    """Fixed versions of Alpine secdb YAML/JSON, Wolfi/Chainguard secdb JSON and Wolfi YAML."""
    out: set[str] = set()
    for f in glob.glob(str(root / "alpine-secdb" / "v*" / "*.yaml")):
        for p in yaml.load(Path(f).read_text(), Loader=_YAML_LOADER).get("packages") or []:
            out.update(str(k) for k in p["pkg"].get("secfixes") or {})
    jsons = glob.glob(str(root / "alpine-secdb" / "current-sample" / "*" / "*" / "*.json"))
    for f in jsons + glob.glob(str(root / "secdb-json" / "*.json")):
        doc = msgspec.json.decode(Path(f).read_bytes())
        for p in doc.get("packages") or [{"pkg": doc}]:
            out.update(str(k) for k in p["pkg"].get("secfixes") or {})
    for f in glob.glob(str(root / "wolfi-yaml" / "*.advisories.yaml")):
        # Only "fixed" events carry this field; a line match is 50x faster than YAML here.
        out.update(_WOLFI_FIXED.findall(Path(f).read_text()))
    return out


@pytest.fixture(scope="module")
def advisory_versions(shared_data: Path) -> list[str]:
    """Every fixed version in ../shared's apk advisories (about 7,700 strings)."""
    return sorted(_advisory_versions(shared_data / "advisories"))


def test_advisory_versions_validity_matches_grammar(
    apk: SchemeModule, advisory_versions: list[str]
) -> None:
    """Validity equals the grammar on real data; real secfixes typos (about 16) are refused."""
    assert len(advisory_versions) > 7000
    invalid = []
    for v in advisory_versions:
        outcome = _outcome(functools.partial(apk.key, v))
        assert (not isinstance(outcome, tuple)) == _valid(v), v
        if isinstance(outcome, tuple):
            invalid.append(v)
    # A handful of typos ("1.18.-r2", "2.7.16-33"); many more would mean a parser bug.
    assert 0 < len(invalid) < 40, invalid


def test_advisory_versions_total_order_and_agreement(advisory_versions: list[str]) -> None:
    """On real data: identical keys in both implementations, key order == compare order."""
    pure, comp = load("apk", "pure"), load("apk", "compiled")
    valid = [v for v in advisory_versions if _valid(v)]
    assert pure.key_many(valid) == comp.key_many(valid)
    _check_total_order(comp, valid)
    rng = random.Random(11)
    a = [rng.choice(valid) for _ in range(20000)]
    b = [rng.choice(valid) for _ in range(20000)]
    assert pure.compare_many(a, b) == comp.compare_many(a, b)


def test_univers_agrees_on_real_versions(apk: SchemeModule) -> None:
    """univers' AlpineLinuxVersion orders the sample as we do, where it follows apk-tools 3.

    Left out: strings univers cannot parse (it rejects a leading "0" and some ``_git``
    suffixes), numbers past 2**64
    (univers does not wrap), dotted numbers with a leading zero (univers compares those as
    numbers, apk-tools 3 as strings) and a plain version against its ``-r0`` (equal there).
    """
    versions_mod = pytest.importorskip("univers.versions")
    parsed = {}
    for v in SAMPLE_VALID:
        if re.search(r"^0|\.0[0-9]|[0-9]{19}", v):
            continue
        try:
            parsed[v] = versions_mod.AlpineLinuxVersion(v)
        except ValueError:  # univers also rejects some valid suffixes ("_git20241214")
            continue
    assert len(parsed) > 100
    vs = sorted(parsed)
    rng = random.Random(5)
    for _ in range(3000):
        a, b = rng.choice(vs), rng.choice(vs)
        if re.sub(r"-r0$", "", a) == re.sub(r"-r0$", "", b):
            continue
        ua, ub = parsed[a], parsed[b]
        assert apk.compare(a, b) == (ua > ub) - (ua < ub), (a, b)


# --- properties ---------------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.sampled_from(
        ["0", "1", "2", "9", "10", "00", "01", "007", "010", "20240101"]
        + ["18446744073709551615", "18446744073709551616"]  # 2**64 - 1, 2**64 (wraps to 0)
    ),
    st.integers(0, 2**70).map(str),
)
_SUFFIX = st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"])
_SUFFIX_NUMBER = st.sampled_from(["", "", "0", "1", "2", "01", "10", "18446744073709551617"])
_HASH = st.sampled_from(["", "", "", "", "~0", "~00", "~0a", "~a", "~ab", "~b", "~ff"])


@st.composite
def versions(draw: st.DrawFn) -> str:
    """Valid apk versions, every part of the grammar, with adversarial numbers.

    Few, coarse draws: Hypothesis' cost is per draw, and the suite must stay fast.
    """
    v = draw(_NUMBERS)
    for n in draw(st.lists(_NUMBERS, max_size=3)):
        v += "." + n
    v += draw(st.sampled_from(["", "", "a", "b", "z", "p1", "p01", "a10", "z0"]))
    for s, n in draw(st.lists(st.tuples(_SUFFIX, _SUFFIX_NUMBER), max_size=2)):
        v += "_" + s + n
    v += draw(_HASH)
    if draw(st.booleans()):
        v += "-r" + draw(_NUMBERS)
    return v


# Near-versions: the grammar's characters (and a few it rejects) in any order.
_noise = st.text(alphabet="0123456789.abpr_-~zA\x00é", max_size=12)
_any_version = st.one_of(versions(), _noise)


@given(versions(), versions())
def test_antisymmetry(a: str, b: str) -> None:
    """compare(a, b) == -compare(b, a) in both implementations."""
    for impl in ("compiled", "pure"):
        mod = load("apk", impl)
        assert mod.compare(a, b) == -mod.compare(b, a)


@given(st.lists(versions(), min_size=3, max_size=4))
def test_transitivity(vs: list[str]) -> None:
    """Sorted by compare, every earlier version is <= every later one (compiled)."""
    mod = load("apk", "compiled")
    ordered = sorted(vs, key=functools.cmp_to_key(mod.compare))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            assert mod.compare(a, b) <= 0, (a, b)


@given(versions(), versions())
def test_key_order_is_compare_order(a: str, b: str) -> None:
    """key(a) < / == / > key(b) exactly when compare(a, b) is -1 / 0 / 1 (both impls)."""
    for impl in ("compiled", "pure"):
        mod = load("apk", impl)
        assert _key_cmp(mod, a, b) == mod.compare(a, b)
    assert load("apk", "compiled").key(a) == load("apk", "pure").key(a)


@given(versions())
def test_leading_zeros_of_the_first_number_are_ignored(a: str) -> None:
    """The first number is numeric (unlike dotted ones): ``0`` + a equals a, key included."""
    for impl in ("compiled", "pure"):
        mod = load("apk", impl)
        assert mod.compare(a, "0" + a) == 0
        assert mod.key(a) == mod.key("0" + a)


@given(_any_version, _any_version)
def test_pure_equals_compiled(a: str, b: str) -> None:
    """Same compare result, same key, same validity and same reason in both implementations."""
    pure, comp = load("apk", "pure"), load("apk", "compiled")
    assert _outcome(functools.partial(pure.compare, a, b)) == _outcome(
        functools.partial(comp.compare, a, b)
    )
    assert _outcome(functools.partial(pure.key, a)) == _outcome(functools.partial(comp.key, a))


@given(_any_version)
def test_validity_is_the_grammar(v: str) -> None:
    """A string is accepted exactly when it matches the grammar; else both raise InvalidVersion."""
    for impl in ("compiled", "pure"):
        mod = load("apk", impl)
        if _valid(v):
            assert mod.compare(v, v) == 0
        else:
            with pytest.raises(InvalidVersion):
                mod.key(v)
            with pytest.raises(InvalidVersion):
                mod.compare(v, "1")
            with pytest.raises(InvalidVersion):
                mod.compare("1", v)
