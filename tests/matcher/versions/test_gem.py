"""The gem scheme: ``Gem::Version#<=>`` semantics, validity, keys, and agreement with Ruby.

Every test runs against both implementations (``impl`` fixture). The reference is Ruby's
own RubyGems (Debian's ``ruby``, listed in ``.ci/apt-packages.txt``): ``Gem::Version.correct?``
and ``<=>``, asked for thousands of pairs in one ``ruby`` process per batch, and for
Hypothesis examples through one long-lived ``ruby`` process.

Version strings: ``tests/data/versions/gem_versions.txt`` (installed gems' versions and
release-shaped strings, written by ``gen_gem.py``), the osv-scalibr RubyGems vectors
(Apache-2.0, read from ``../shared`` when present), adversarial strings below and seeded
random ones.
"""

from __future__ import annotations

import functools
import json
import random
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from regsweep.matcher import versions
from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule
from regsweep.matcher.versions.pure import gem as pure_gem
from tests import paths
from tests.conftest import SHARED
from tests.matcher.versions.conftest import load, read_vectors
from tests.matcher.versions.properties import key_cmp, near_misses, outcome, scheme_properties

DATA = paths.DATA / "versions"
SAMPLE = DATA / "gem_versions.txt"
RUBY_WS = " \t\n\v\f\r"


@pytest.fixture
def gem(impl: str) -> SchemeModule:
    """The gem module of the implementation under test."""
    return load("gem", impl)


_outcome = functools.partial(outcome, "gem")


def _valid(mod: SchemeModule, v: str) -> bool:
    try:
        mod.key(v)
    except InvalidVersion:
        return False
    return True


def _sample() -> list[str]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [v for v in lines if v and not v.startswith("#")]


_OP = {"<": -1, "=": 0, ">": 1}

# --------------------------------------------------------------------------------------
# Ruby, the oracle

# One JSON pair per line in, one [valid_a, valid_b, a <=> b or null] per line out.
RUBY_LOOP = r"""
require "json"
STDOUT.sync = true
STDIN.each_line do |line|
  a, b = JSON.parse(line)
  va = Gem::Version.correct?(a)
  vb = Gem::Version.correct?(b)
  r = va && vb ? (Gem::Version.new(a) <=> Gem::Version.new(b)) : nil
  puts JSON.generate([va, vb, r])
end
"""


def _ruby() -> str:
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.fail("ruby is not installed: apt-get install ruby (listed in .ci/apt-packages.txt)")
    return ruby


def ruby_batch(pairs: Sequence[tuple[str, str]]) -> list[tuple[bool, bool, int | None]]:
    """Ruby's verdicts on every pair, in one process."""
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    proc = subprocess.run(
        [_ruby(), "-e", RUBY_LOOP], input=data, capture_output=True, text=True, check=True
    )
    out: list[tuple[bool, bool, int | None]] = []
    for line in proc.stdout.splitlines():
        va, vb, r = json.loads(line)
        out.append((va, vb, r))
    assert len(out) == len(pairs)
    return out


class RubyProcess:
    """A long-lived ``ruby`` answering one pair at a time (for Hypothesis examples)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [_ruby(), "-e", RUBY_LOOP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, a: str, b: str) -> tuple[bool, bool, int | None]:
        """Ruby's ``[correct?(a), correct?(b), a <=> b]``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([a, b]) + "\n")
        self.proc.stdin.flush()
        va, vb, r = json.loads(self.proc.stdout.readline())
        return va, vb, r

    def close(self) -> None:
        """End the process (closing stdin ends its loop)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def ruby() -> Iterator[RubyProcess]:
    """One ruby process for the module's Hypothesis tests."""
    r = RubyProcess()
    yield r
    r.close()


def _blank(v: str) -> bool:
    return not v.strip(RUBY_WS)


def _letter_led_first_segment(v: str) -> bool:
    """regsweep's one widening of RubyGems' pattern: ``1beta``, ``2a.0`` (see pure/gem.py)."""
    return re.match(r"[0-9]+[A-Za-z]", v.strip(RUBY_WS)) is not None


def assert_agrees_with_ruby(
    mod: SchemeModule, a: str, b: str, verdict: tuple[bool, bool, int | None]
) -> str:
    """Check one pair against Ruby's verdict; return how it was checked (for counting)."""
    va, vb, want = verdict
    for v, ruby_ok in ((a, va), (b, vb)):
        ours = _valid(mod, v)
        if ruby_ok and not ours:
            assert _blank(v), f"Ruby accepts {v!r}, regsweep does not"
        elif ours and not ruby_ok:
            assert _letter_led_first_segment(v), f"regsweep accepts {v!r}, Ruby does not"
    if want is None or _blank(a) or _blank(b):
        return "validity"
    assert mod.compare(a, b) == want, (a, b)
    assert key_cmp(mod, a, b) == want, (a, b)
    return "order"


# --------------------------------------------------------------------------------------
# Semantics, by example

SEMANTICS = [
    # trailing zeros do not count, in either half of the canonical segments
    ("1.0", "=", "1"),
    ("1.0.0.0", "=", "1"),
    ("0", "=", "0.0"),
    ("1.0.a", "=", "1.a"),
    ("1.a.0", "=", "1.a"),
    ("1.0.a.0.0", "=", "1.a"),
    # segments are runs of digits or letters; '-' reads as ".pre."; dots only separate
    ("1.0a1", "=", "1.0.a.1"),
    ("1.0-rc1", "=", "1.0.pre.rc1"),
    ("1.0-1", "=", "1.0.pre.1"),
    ("1.0-beta", ">", "1.0.beta"),  # "pre" > "beta"
    ("01.002", "=", "1.2"),
    (" 1.2\n", "=", "1.2"),
    ("\v1.2\f", "=", "1.2"),
    # letters sort below any number, 0 (and a missing segment) included
    ("1.a", "<", "1"),
    ("0.a", "<", "0"),
    ("2.0.0.rc1", "<", "2.0.0"),
    ("2.0.0.rc1", "<", "2.0.0.0.1"),
    ("2.0.0.rc1", ">", "1.9.9.9"),
    ("1.a.0.b", "<", "1.a"),
    ("1.a", "<", "1.a.0.1"),
    ("1.a.0.0.b", ">", "1.a.0.b"),
    ("1.a.0.0.1", "<", "1.a.0.1"),
    # letters byte-wise (case-sensitive), numbers by value of any size
    ("1.0.A", "<", "1.0.a"),
    ("1.0.RC1", "<", "1.0.beta"),
    ("1.0.beta", "<", "1.0.rc"),
    ("1.0.b", "<", "1.0.ba"),
    ("1.0.rc9", "<", "1.0.rc10"),
    ("1.0.rc.9", "<", "1.0.rc10"),
    ("7.1.0.beta1", "<", "7.1.0.rc1"),
    ("4.2.11.3", ">", "4.2.11"),
    ("9" * 30, "<", "1" + "0" * 30),
    ("1." + "0" * 40 + "1", "=", "1.1"),
    # the widened first segment (regsweep only): 1beta reads as 1.beta
    ("1beta", "=", "1.beta"),
    ("1", ">", "1beta"),
]


@pytest.mark.parametrize(("a", "op", "b"), SEMANTICS)
def test_documented_orderings_hold_in_compare_and_key(
    gem: SchemeModule, a: str, op: str, b: str
) -> None:
    """Each documented ordering holds both ways, and the keys order the same."""
    want = _OP[op]
    assert gem.compare(a, b) == want
    assert gem.compare(b, a) == -want
    assert key_cmp(gem, a, b) == want


@pytest.mark.oracle
def test_documented_orderings_are_rubys() -> None:
    """Ruby agrees with every documented ordering (and refuses only the widened ones)."""
    pairs = [(a, b) for a, _, b in SEMANTICS]
    for (a, op, b), verdict in zip(SEMANTICS, ruby_batch(pairs), strict=True):
        if verdict[2] is None:
            assert _letter_led_first_segment(a) or _letter_led_first_segment(b), (a, b)
        else:
            assert verdict[2] == _OP[op], (a, op, b)


INVALID = [
    ("", pure_gem.E_EMPTY),
    (" \t\n", pure_gem.E_EMPTY),
    ("a", pure_gem.E_NODIGIT),
    ("v1.0", pure_gem.E_NODIGIT),
    (".1", pure_gem.E_NODIGIT),
    ("-1", pure_gem.E_NODIGIT),
    ("1.", pure_gem.E_EMPTYSEG),
    ("1..2", pure_gem.E_EMPTYSEG),
    ("1.-2", pure_gem.E_EMPTYSEG),
    ("1 0", pure_gem.E_BADCHAR),
    ("1.0_1", pure_gem.E_BADCHAR),
    ("1.0+1", pure_gem.E_BADCHAR),
    ("1.0~rc1", pure_gem.E_BADCHAR),
    ("1\x00", pure_gem.E_BADCHAR),
    ("1.0-", pure_gem.E_EMPTYPRE),
    ("1.0-.a", pure_gem.E_EMPTYPRE),
    ("1.0-a.", pure_gem.E_EMPTYPRE),
    ("1.0-a..b", pure_gem.E_EMPTYPRE),
    ("1.0-a_b", pure_gem.E_BADPRE),
    ("1.0-a+b", pure_gem.E_BADPRE),
    ("1.0-a b", pure_gem.E_BADPRE),
    ("1.é", pure_gem.E_NONASCII),
    ("\u00a01.0", pure_gem.E_NONASCII),
    ("1.\ud800", pure_gem.E_NONASCII),
]


@pytest.mark.parametrize(("v", "reason"), INVALID)
def test_invalid_versions_raise_with_their_reason(gem: SchemeModule, v: str, reason: str) -> None:
    """Strings outside the pattern raise InvalidVersion (never compare), with a clear reason."""
    with pytest.raises(InvalidVersion) as e:
        gem.key(v)
    assert (e.value.scheme, e.value.version, e.value.reason) == ("gem", v, reason)
    for a, b in ((v, "1.0"), ("1.0", v), (v, v)):
        with pytest.raises(InvalidVersion):
            gem.compare(a, b)


@pytest.mark.oracle
def test_invalid_versions_are_rubys_except_blank() -> None:
    """Ruby refuses every string refused here, but the blank ones (it reads those as 0)."""
    plain = [v for v, _ in INVALID if "\ud800" not in v]
    for v, (ok, _, _) in zip(plain, ruby_batch([(v, "1") for v in plain]), strict=True):
        assert ok == _blank(v), v


def test_batch_calls_match_single_calls(gem: SchemeModule) -> None:
    """compare_many/key_many equal the single calls, raise on invalid and on unequal lengths."""
    a = ["1.0", "2.0.0.rc1", "1.0-1", "1.a"]
    b = ["1.0.1", "2.0.0", "1.0.pre.1", "1"]
    assert gem.compare_many(a, b) == [gem.compare(x, y) for x, y in zip(a, b, strict=True)]
    assert gem.key_many(a) == [gem.key(x) for x in a]
    assert gem.compare_many([], []) == []
    with pytest.raises(ValueError, match="equal lengths"):
        gem.compare_many(a, b[:1])
    with pytest.raises(InvalidVersion):
        gem.compare_many(["1.0", ""], ["1.0", "1.0"])
    with pytest.raises(InvalidVersion):
        gem.key_many(["1.0", "1.0-"])


def test_dispatch_reaches_this_scheme() -> None:
    """The public dispatch routes "gem" here, and the module is authoritative."""
    assert versions.compare("gem", "1.0.0.rc1", "1.0.0") == -1
    assert versions.key("gem", "1.0") == versions.key("gem", "1")
    assert versions.authoritative("gem") is True


def test_long_inputs_build_long_keys(gem: SchemeModule) -> None:
    """Keys past the 512-byte inline buffer, long numbers and 255+ zero runs stay exact."""
    zeros = ".0" * 300
    a = "1.a" + zeros + ".b"
    assert gem.compare(a, "1.a") == -1
    assert gem.compare(a, "1.a" + zeros[:-2] + ".b") == 1  # one zero more: "b" comes later
    assert gem.compare("1.a" + zeros + ".1", "1.a" + zeros[:-2] + ".1") == -1
    assert gem.compare("1-" + "-" * 500, "1-" + "-" * 499) == -1  # one more "pre": lower
    assert gem.compare("9" * 400, "9" * 399) == 1
    assert gem.key("1" + zeros) == gem.key("1")


# --------------------------------------------------------------------------------------
# Reference vectors (read from ../shared when present)


def test_osv_scalibr_rubygems_vectors(gem: SchemeModule, shared_data: Path) -> None:
    """Every osv-scalibr RubyGems vector holds (``1beta`` needs the widened first segment)."""
    path = shared_data / "vectors/osv-scalibr/rubygems-versions.txt"
    cases = list(read_vectors(path))
    assert len(cases) == 25
    for a, want, b, line in cases:
        assert gem.compare(a, b) == want, f"line {line}: {a} vs {b}"
        assert key_cmp(gem, a, b) == want, f"line {line}: keys of {a} vs {b}"


# --------------------------------------------------------------------------------------
# Differential against Ruby

# fmt: off
ADVERSARIAL = [
    "0", "00", "0.0", "0.0.0.0", "0.a", "0.0.a", "0.a.0", "1", "1.0", "1.00", "01", "1.01",
    "1.a", "1.A", "1.z", "1.Z", "1.aa", "1.a.a", "1.a.0.a", "1.a.0.0.a", "1.a.0.1", "1.a.1",
    "1.0.a", "1.0.0.a", "1.0.a.0", "1.a0", "1.a01", "1.0a", "1.0a0", "1.0a.0", "1.0A",
    "1-a", "1.0-a", "1.0-0", "1.0-a-b", "1.0-a.b", "1.0--", "1.0-a-", "1.0---1", "1.0-A",
    "1.0.pre", "1.0.pre.a", "1.0.pre.0", "1.0-pre", "1.0.PRE", "1.0.pre-a", "1.0-1-1",
    "2.0.0.rc1", "2.0.0.rc.1", "2.0.0-rc1", "2.0.0-rc.1", "2.0.0.rc10", "2.0.0.beta",
    "2.0.0.b", "2.0.0.dev", "2.0.0.dev0", "2.0.0.0.1", "2.0.0.0.0.0.1", "2.0.0.a.0.0.1",
    "9999999999999999999999", "1.9999999999999999999999", "1.0.99999999999999999999.rc",
    " 1.0", "1.0 ", "\t1.0\n", "\v1\f", " ", "", "1beta", "1beta.2", "2a.0", "1.0.b1",
    "1.0.b.1", "1.0.b10", "1.0.b01", "10.0", "1.10", "1.1.1.1.1.1.1.1", "3.2.pre.20230101",
]
# fmt: on

# fmt: off
_ALPHABET = ["0", "00", "1", "01", "2", "10", "99", "a", "b", "A", "z", "pre", "rc", "beta", "-",
             ".", ".", ".", ".", " ", "9" * 20]
# fmt: on


def _random_strings(rnd: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        s = "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(1, 8)))
        # Most random strings should be valid: start with a digit, tidy the dots.
        if rnd.random() < 0.8:
            s = str(rnd.randint(0, 3)) + "." + s.strip(". -")
            s = re.sub(r"\.{2,}", ".", s).rstrip(".-")
        out.append(s)
    return out


@pytest.mark.oracle
def test_order_and_validity_match_ruby(gem: SchemeModule, shared_data_optional: list[str]) -> None:
    """Thousands of pairs from real and adversarial strings: Ruby's validity and order.

    Pairs: every string against its neighbours in regsweep's own order (the close calls)
    and against random others. Validity differs only by the documented decisions (blank
    refused, letter-led first segment accepted).
    """
    rnd = random.Random(7)
    strings = list(
        dict.fromkeys(
            [*_sample(), *ADVERSARIAL, *shared_data_optional, *_random_strings(rnd, 1500)]
        )
    )
    valid = sorted((v for v in strings if _valid(gem, v)), key=gem.key)
    pairs = [(a, b) for a, b in zip(valid, valid[1:], strict=False)]
    pairs += [(b, a) for a, b in zip(valid, valid[2:], strict=False)]
    pairs += [(rnd.choice(strings), rnd.choice(strings)) for _ in range(4000)]
    counts = {"order": 0, "validity": 0}
    for (a, b), verdict in zip(pairs, ruby_batch(pairs), strict=True):
        counts[assert_agrees_with_ruby(gem, a, b, verdict)] += 1
    assert counts["order"] > 5000


@pytest.fixture(scope="module")
def shared_data_optional() -> list[str]:
    """The osv-scalibr RubyGems vector strings when ../shared is present, else nothing."""
    path = SHARED / "data/vectors/osv-scalibr/rubygems-versions.txt"
    if not path.is_file():
        return []
    return sorted({v for a, _, b, _ in read_vectors(path) for v in (a, b)})


def test_sample_is_sorted_consistently(gem: SchemeModule) -> None:
    """The committed sample parses, and its key order is compare order on neighbours."""
    sample = _sample()
    assert len(sample) > 900
    ordered = sorted(sample, key=gem.key)
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert gem.compare(a, b) <= 0


# --------------------------------------------------------------------------------------
# Properties

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_seg = st.one_of(
    st.sampled_from(["0", "1", "2", "9", "10", "00", "01", "a", "b", "A", "pre", "rc1", "beta2"]),
    st.integers(0, 10**25).map(str),
    st.text(_ALNUM, min_size=1, max_size=5),
)
_pre = st.one_of(st.sampled_from(["-", "a-b", "1-"]), st.text(_ALNUM + "-", min_size=1, max_size=5))
valid_versions = st.builds(
    lambda lead, first, segs, pre, ws: (
        ws
        + lead
        + first
        + "".join("." + s for s in segs)
        + ("-" + ".".join(pre) if pre else "")
        + ws
    ),
    st.integers(0, 12).map(str),
    st.sampled_from(["", "", "", "", "a", "0b1"]),
    st.lists(_seg, max_size=6),
    st.lists(_pre, max_size=3),
    st.sampled_from(["", "", " ", "\t"]),
)
_junk_chars = st.sampled_from(list(".-+ _~0a\x00é\ud800\v"))
mutated = near_misses(valid_versions, _junk_chars)
any_versions = st.one_of(valid_versions, mutated, st.text(max_size=10))

COMPILED = load("gem", "compiled")
PURE = load("gem", "pure")


# The properties every compiled/pure scheme pair must have (``tests/matcher/versions/properties``).
(
    test_generated_versions_are_valid,
    test_pure_and_compiled_agree_on_validity_reason_and_key,
    test_pure_and_compiled_agree_on_compare,
    test_key_order_is_compare_order_and_antisymmetric,
    test_transitivity,
) = scheme_properties("gem", COMPILED, PURE, valid_versions, any_versions)


@pytest.mark.oracle
@given(st.one_of(valid_versions, mutated), st.one_of(valid_versions, mutated))
def test_hypothesis_pairs_match_ruby(ruby: RubyProcess, a: str, b: str) -> None:
    """Generated and near-miss pairs: Ruby's validity and order (documented decisions aside)."""
    assume("\ud800" not in a + b)  # not valid UTF-8: nothing Ruby can be asked about
    assert_agrees_with_ruby(COMPILED, a, b, ruby.ask(a, b))
