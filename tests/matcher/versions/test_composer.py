"""The composer scheme: Composer's order, validity, keys, and agreement with PHP and Composer.

Every test runs against both implementations (``impl`` fixture). The reference is Composer
itself: ``Composer\\Semver\\VersionParser::normalize`` then PHP's ``version_compare``, from
Debian's ``composer`` package (``php-cli`` and ``php-composer-semver``, listed through
``composer`` in ``.ci/apt-packages.txt``), asked

* at test time, in one ``php`` process per batch and one long-lived process for Hypothesis
  examples (skipped, with the reason, where ``php`` or the library is missing), and
* through ``tests/data/versions/composer_golden.json``, Composer's verdicts written by
  ``gen_composer.py``, so the order is checked on machines without PHP too.

The osv-scalibr Packagist vectors (Apache-2.0) under ``../shared/data`` are read when present.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from regsweep.matcher import versions
from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule
from regsweep.matcher.versions.pure import composer as pure_composer
from tests import paths
from tests.matcher.versions.conftest import load, read_vectors
from tests.matcher.versions.properties import key_cmp, near_misses, outcome, scheme_properties

DATA = paths.DATA / "versions"
GOLDEN = DATA / "composer_golden.json"
AUTOLOAD = Path("/usr/share/php/Composer/Semver/autoload.php")
PHP_TRIM = " \t\n\r\0\x0b"


@pytest.fixture
def composer(impl: str) -> SchemeModule:
    """The composer module of the implementation under test."""
    return load("composer", impl)


_outcome = functools.partial(outcome, "composer")


def _valid(mod: SchemeModule, v: str) -> bool:
    try:
        mod.key(v)
    except InvalidVersion:
        return False
    return True


def refused_by_design(v: str) -> bool:
    """Strings Composer's normalize accepts and regsweep refuses (see pure/composer.py).

    Branches (``dev-x``, ``master`` …), a stability flag (any ``@``), whitespace or a
    control character inside, anything non-ASCII.
    """
    s = v.strip(PHP_TRIM)
    return (
        not v.isascii()
        or any(c <= " " or c == "\x7f" for c in s)
        or "@" in s
        or s[:4].lower() == "dev-"
        or s in ("master", "trunk", "default")
    )


_OP = {"<": -1, "=": 0, ">": 1}

# --------------------------------------------------------------------------------------
# PHP, the oracle

# One JSON [mode, a, b] per line in; out: [normalize(a), normalize(b), version_compare of
# the two] with null for a string normalize refuses. Mode "raw" skips normalize (plain
# version_compare on the strings as given).
PHP_LOOP = r"""
$parser = null;
if ($argv[1] !== "") { require $argv[1]; $parser = new Composer\Semver\VersionParser(); }
function norm($parser, $v) {
    try { return $parser->normalize($v); } catch (Exception $e) { return null; }
}
while (($line = fgets(STDIN)) !== false) {
    [$mode, $a, $b] = json_decode($line, true);
    if ($mode === "raw") {
        $na = $a; $nb = $b;
    } else {
        $na = norm($parser, $a); $nb = norm($parser, $b);
    }
    $r = ($na === null || $nb === null) ? null : version_compare($na, $nb);
    echo json_encode([$na, $nb, $r]), "\n";
    flush();
}
"""

Verdict = tuple[str | None, str | None, int | None]


def _php(*, parser: bool) -> list[str]:
    """The php command line for PHP_LOOP, or skip (the golden file covers the order)."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed (Debian's composer brings it); the golden still runs")
    if parser and not AUTOLOAD.is_file():
        pytest.skip(f"Composer's semver library is missing ({AUTOLOAD}); the golden still runs")
    return [php, "-r", PHP_LOOP, str(AUTOLOAD) if parser else ""]


def php_batch(pairs: Sequence[tuple[str, str]], *, mode: str = "composer") -> list[Verdict]:
    """PHP's verdicts on every pair, in one process."""
    data = "".join(json.dumps([mode, a, b]) + "\n" for a, b in pairs)
    proc = subprocess.run(
        _php(parser=mode != "raw"), input=data, capture_output=True, text=True, check=True
    )
    out: list[Verdict] = []
    for line in proc.stdout.splitlines():
        na, nb, r = json.loads(line)
        out.append((na, nb, r))
    assert len(out) == len(pairs)
    return out


class PhpProcess:
    """A long-lived ``php`` answering one pair at a time (for Hypothesis examples)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            _php(parser=True), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, a: str, b: str) -> Verdict:
        """Composer's ``[normalize(a), normalize(b), version_compare]``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(["composer", a, b]) + "\n")
        self.proc.stdin.flush()
        na, nb, r = json.loads(self.proc.stdout.readline())
        return na, nb, r

    def close(self) -> None:
        """End the process (closing stdin ends its loop)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def php() -> Iterator[PhpProcess]:
    """One php process for the module's Hypothesis tests."""
    p = PhpProcess()
    yield p
    p.close()


def assert_agrees_with_composer(mod: SchemeModule, a: str, b: str, verdict: Verdict) -> str:
    """Check one pair against Composer's verdict; return how it was checked (for counting)."""
    na, nb, want = verdict
    for v, norm in ((a, na), (b, nb)):
        ours = _valid(mod, v)
        if norm is not None and not ours:
            assert refused_by_design(v), f"Composer reads {v!r} as {norm!r}, regsweep refuses it"
        assert not (ours and norm is None), f"regsweep accepts {v!r}, Composer does not"
    if want is None or not (_valid(mod, a) and _valid(mod, b)):
        return "validity"
    assert mod.compare(a, b) == want, (a, b, na, nb)
    assert key_cmp(mod, a, b) == want, (a, b, na, nb)
    return "order"


# --------------------------------------------------------------------------------------
# Semantics, by example

SEMANTICS = [
    # normalize: v prefix, padding to four numbers, build metadata, leading zeros
    ("1", "=", "1.0.0.0"),
    ("v1.2", "=", "1.2.0"),
    ("V1.2.0", "=", "1.2"),
    ("01.002", "=", "1.2"),
    ("1.0.0+build.7", "=", "1.0.0"),
    (" 1.0\n", "=", "1.0"),
    ("1.0.", "=", "1.0"),
    ("1.2.3", "<", "1.2.3.1"),
    ("1.10", ">", "1.9"),
    # stability: dev < alpha < beta < RC < release < patch, any case and spelling
    ("1.0-dev", "<", "1.0-alpha"),
    ("1.0-alpha", "=", "1.0a"),
    ("1.0-ALPHA1", "=", "1.0-alpha.1"),
    ("1.0-alpha1", "<", "1.0-alpha2"),
    ("1.0-alpha", "<", "1.0-alpha1"),
    ("1.0-alpha9", "<", "1.0-beta"),
    ("1.0-b2", "=", "1.0-Beta2"),
    ("1.0-beta2", "<", "1.0-beta10"),
    ("1.0-beta.2", "<", "1.0-beta.2.1"),
    ("1.0-beta2-1", "=", "1.0-beta2.1"),
    ("1.0-beta", "<", "1.0-RC"),
    ("1.0-rc1", "=", "1.0-RC1"),
    ("1.0-RC1-dev", "<", "1.0-RC1"),
    ("1.0-RC1", "<", "1.0"),
    ("1.0", "<", "1.0-p1"),
    ("1.0-p", "=", "1.0-patch"),
    ("1.0-pl1", "=", "1.0-patch1"),
    ("2.4.6-p3", ">", "2.4.6"),
    ("2.4.6-p3", "<", "2.4.7-alpha1"),
    ("2.4.6-p3", "<", "2.4.6-p10"),
    ("1.0-p1", "<", "1.0.1"),
    ("1.0-dev", "=", "1.0dev"),
    ("1.0-bdev", "=", "1.0-beta-dev"),
    ("1.0-beta-dev", "<", "1.0-beta"),
    ("1.0-beta1-dev", ">", "1.0-beta"),
    # branch aliases: above every release of their line, below the next line
    ("1.2.x-dev", "=", "1.2.9999999.9999999-dev"),
    ("1.2.x-dev", ">", "1.2.99999"),
    ("1.2.x-dev", "<", "1.3.0-dev"),
    ("1.x-dev", "=", "1.*.X.dev"),
    # date versions are not padded: three numbers against four
    ("2023-01-01", "<", "2023.01.01"),
    ("20230101", "<", "20230102"),
    ("20230101", "<", "20230101.0"),
    # numbers are PHP longs: saturated at 2**63 - 1
    ("1.9223372036854775807", "=", "1.99999999999999999999"),
    ("1.9223372036854775806", "<", "1.9223372036854775807"),
    # lower-case "stable" is dropped with what follows; any other case is an unknown word
    ("1.0-stable2-dev", "=", "1.0"),
    ("1.0-STABLE", "<", "1.0-dev"),
    ("1.0-Stable2", "=", "1.0-STABLE2"),
]


@pytest.mark.parametrize(("a", "op", "b"), SEMANTICS)
def test_documented_orderings_hold_in_compare_and_key(
    composer: SchemeModule, a: str, op: str, b: str
) -> None:
    """Each documented ordering holds both ways, and the keys order the same."""
    want = _OP[op]
    assert composer.compare(a, b) == want
    assert composer.compare(b, a) == -want
    assert key_cmp(composer, a, b) == want


@pytest.mark.oracle
def test_documented_orderings_are_composers() -> None:
    """Composer agrees with every documented ordering."""
    pairs = [(a, b) for a, _, b in SEMANTICS]
    for (a, op, b), (_, _, want) in zip(SEMANTICS, php_batch(pairs), strict=True):
        assert want == _OP[op], (a, op, b)


INVALID = [
    ("", pure_composer.E_EMPTY),
    (" \t\n\r\0\x0b", pure_composer.E_EMPTY),
    ("1.0\u00e9", pure_composer.E_NONASCII),
    ("1.0+\u00e9", pure_composer.E_NONASCII),
    ("1.\ud800", pure_composer.E_NONASCII),
    ("1.0 as 2.0", pure_composer.E_SPACE),
    ("2.1.x -dev", pure_composer.E_SPACE),
    ("1.0\f", pure_composer.E_SPACE),
    ("1.0\x7f", pure_composer.E_SPACE),
    ("1.0@dev", pure_composer.E_FLAG),
    ("1.0+a@dev", pure_composer.E_FLAG),
    ("dev-master", pure_composer.E_BRANCH),
    ("DEV-feature/x", pure_composer.E_BRANCH),
    ("master", pure_composer.E_BRANCH),
    ("trunk", pure_composer.E_BRANCH),
    ("default", pure_composer.E_BRANCH),
    ("1.0+", pure_composer.E_BUILD),
    ("+1.0", pure_composer.E_BUILD),
    ("v", pure_composer.E_NODIGIT),
    ("vv1.0", pure_composer.E_NODIGIT),
    (".1", pure_composer.E_NODIGIT),
    ("x-dev", pure_composer.E_NODIGIT),
    ("Master", pure_composer.E_NODIGIT),
    ("1.0.0.0.0", pure_composer.E_FORM),
    ("1..0", pure_composer.E_FORM),
    ("1.0-foo", pure_composer.E_FORM),
    ("1.0-beta-", pure_composer.E_FORM),
    ("1.0-beta1.", pure_composer.E_FORM),
    ("1.0-.beta", pure_composer.E_FORM),
    ("1.0-dev1", pure_composer.E_FORM),
    ("1.0-alpha_1", pure_composer.E_FORM),
    ("123456.0.0", pure_composer.E_FORM),
    ("12345-01", pure_composer.E_FORM),
    ("20230101123456789012", pure_composer.E_FORM),
    ("1.2.3.4.x-dev", pure_composer.E_FORM),
    ("1.xx-dev", pure_composer.E_FORM),
    ("1.x", pure_composer.E_FORM),
    ("1,0", pure_composer.E_FORM),
    ("1.0~rc1", pure_composer.E_FORM),
    ("^1.0", pure_composer.E_NODIGIT),
]


@pytest.mark.parametrize(("v", "reason"), INVALID)
def test_invalid_versions_raise_with_their_reason(
    composer: SchemeModule, v: str, reason: str
) -> None:
    """Strings outside the grammar raise InvalidVersion (never compare), with a clear reason."""
    with pytest.raises(InvalidVersion) as e:
        composer.key(v)
    assert (e.value.scheme, e.value.version, e.value.reason) == ("composer", v, reason)
    for a, b in ((v, "1.0"), ("1.0", v), (v, v)):
        with pytest.raises(InvalidVersion):
            composer.compare(a, b)


@pytest.mark.oracle
def test_invalid_versions_are_composers_or_refused_by_design() -> None:
    """Composer refuses every string refused here, but the documented kinds."""
    plain = [v for v, _ in INVALID if "\ud800" not in v]
    for v, (norm, _, _) in zip(plain, php_batch([(v, "1") for v in plain]), strict=True):
        assert norm is None or refused_by_design(v), (v, norm)


def test_batch_calls_match_single_calls(composer: SchemeModule) -> None:
    """compare_many/key_many equal the single calls, raise on invalid and on unequal lengths."""
    a = ["1.0", "2.0.0-RC1", "1.0-p1", "1.x-dev"]
    b = ["1.0.1", "2.0.0", "1.0", "1.0.0"]
    assert composer.compare_many(a, b) == [
        composer.compare(x, y) for x, y in zip(a, b, strict=True)
    ]
    assert composer.compare_many(a, b) == [-1, -1, 1, 1]
    assert composer.key_many(a) == [composer.key(x) for x in a]
    assert composer.compare_many([], []) == []
    with pytest.raises(ValueError, match="equal lengths"):
        composer.compare_many(a, b[:1])
    with pytest.raises(InvalidVersion):
        composer.compare_many(["1.0", "dev-main"], ["1.0", "1.0"])
    with pytest.raises(InvalidVersion):
        composer.key_many(["1.0", "1.0+"])


def test_dispatch_reaches_this_scheme() -> None:
    """The public dispatch routes "composer" here, and the module is authoritative."""
    assert versions.compare("composer", "1.0.0-RC1", "1.0.0") == -1
    assert versions.key("composer", "v1.0") == versions.key("composer", "1.0.0.0")
    assert versions.authoritative("composer") is True


def test_long_inputs_build_long_keys(composer: SchemeModule) -> None:
    """Keys past the 512-byte inline buffer stay exact; long numbers saturate as in PHP."""
    many = "1.0-beta" + ".7" * 400
    assert len(composer.key(many)) > 512
    assert composer.compare(many, many + ".1") == -1
    assert composer.compare(many + "-dev", many) == -1
    assert composer.compare("1." + "9" * 400, "1.9223372036854775807") == 0
    assert composer.compare("1." + "0" * 400 + "1", "1.1") == 0


# --------------------------------------------------------------------------------------
# Reference vectors (read from ../shared when present)

# osv-scalibr compares the strings as written (a version_compare port, no normalize);
# Composer pads classical versions first, so these read as equal here.
SCALIBR_PADDED = {("1.0.0", "1.0")}


def test_osv_scalibr_packagist_vectors(composer: SchemeModule, shared_data: Path) -> None:
    """Every osv-scalibr Packagist vector over Composer versions holds, padding aside.

    Vectors over strings ``normalize`` refuses (``4.3-2RC1``, ``1.2.3.#``, 30-digit numbers)
    or that are branches (``dev-foo``) must be refused here too.
    """
    path = shared_data / "vectors/osv-scalibr/packagist-versions.txt"
    checked = refused = 0
    for a, want, b, line in read_vectors(path):
        if not (_valid(composer, a) and _valid(composer, b)):
            refused += 1
            continue
        checked += 1
        expected = 0 if (a, b) in SCALIBR_PADDED else want
        assert composer.compare(a, b) == expected, f"line {line}: {a} vs {b}"
        assert key_cmp(composer, a, b) == expected, f"line {line}: keys of {a} vs {b}"
    assert (checked, refused) == (82, 13)


# --------------------------------------------------------------------------------------
# Differential against Composer, through the committed golden file


@functools.cache
def golden() -> dict[str, Any]:
    """``composer_golden.json``, parsed once."""
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def test_golden_validity_is_composers(composer: SchemeModule) -> None:
    """Each golden string is valid here exactly when normalize accepts it, but by design."""
    counts = {"valid": 0, "invalid": 0, "by design": 0}
    for v, norm in golden()["versions"].items():
        ours = _valid(composer, v)
        if norm is None:
            assert not ours, f"regsweep accepts {v!r}, Composer does not"
            counts["invalid"] += 1
        elif not ours:
            assert refused_by_design(v), f"Composer reads {v!r} as {norm!r}, regsweep refuses it"
            counts["by design"] += 1
        else:
            counts["valid"] += 1
    assert counts["valid"] > 1000 and counts["invalid"] > 50 and counts["by design"] > 5


def test_golden_order_is_composers(composer: SchemeModule) -> None:
    """compare and key agree with ``version_compare(normalize(a), normalize(b))``."""
    checked = 0
    for a, b, want in golden()["pairs"]:
        if not (_valid(composer, a) and _valid(composer, b)):
            assert refused_by_design(a) or refused_by_design(b), (a, b)
            continue
        assert composer.compare(a, b) == want, (a, b)
        assert key_cmp(composer, a, b) == want, (a, b)
        checked += 1
    assert checked > 4000


def test_golden_sorts_as_a_chain_of_keys(composer: SchemeModule) -> None:
    """Sorted by key, the golden's valid strings are in compare order, neighbour to neighbour."""
    valid = sorted((v for v in golden()["versions"] if _valid(composer, v)), key=composer.key)
    for a, b in zip(valid, valid[1:], strict=False):
        assert composer.compare(a, b) <= 0


# --------------------------------------------------------------------------------------
# Differential against live PHP

# fmt: off
_ALPHABET = ["0", "1", "2", "01", "10", "99", "12345", "123456", "2023", "x", "X", "*", "v",
             ".", ".", ".", "-", "-", "_", ":", "+", "a", "b", "p", "pl", "rc", "RC", "beta",
             "alpha", "patch", "stable", "STABLE", "dev", "DEV", "foo", "9" * 20]
# fmt: on


def _random_strings(rnd: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        s = "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(1, 8)))
        if rnd.random() < 0.7:
            s = rnd.choice(["", "v", "1.", "2.3.", "1.0.0", "20230101", "2023-01-", "4.4."]) + s
        out.append(s)
    return out


@pytest.mark.oracle
def test_order_and_validity_match_composer(composer: SchemeModule) -> None:
    """Thousands of golden, adversarial and random strings: Composer's validity and order.

    Pairs: every valid string against its neighbours in regsweep's own order (the close
    calls), random pairs of any strings and random pairs of valid ones.
    """
    rnd = random.Random(11)
    strings = list(dict.fromkeys([*golden()["versions"], *_random_strings(rnd, 3000)]))
    valid = sorted((v for v in strings if _valid(composer, v)), key=composer.key)
    pairs = [(a, b) for a, b in zip(valid, valid[1:], strict=False)]
    pairs += [(b, a) for a, b in zip(valid, valid[2:], strict=False)]
    pairs += [(rnd.choice(strings), rnd.choice(strings)) for _ in range(4000)]
    pairs += [(rnd.choice(valid), rnd.choice(valid)) for _ in range(2000)]
    counts = {"order": 0, "validity": 0}
    for (a, b), verdict in zip(pairs, php_batch(pairs), strict=True):
        counts[assert_agrees_with_composer(composer, a, b, verdict)] += 1
    assert counts["order"] > 5000


def _normalized_shapes(rnd: random.Random, n: int) -> list[str]:
    """Strings in the form normalize writes (``1.2.0.0-beta3-dev``), for plain PHP."""
    out = []
    for _ in range(n):
        v = ".".join(str(rnd.choice([0, 1, 2, 9, 10, 11, 99])) for _ in range(4))
        word = rnd.choice(["", "", "alpha", "beta", "RC", "patch"])
        if word:
            v += "-" + word + rnd.choice(["", "1", "2", "10", "1.2", "2-1"])
        if rnd.random() < 0.3:
            v += "-dev"
        out.append(v)
    return out


@pytest.mark.oracle
def test_order_of_normalized_forms_is_version_compares(composer: SchemeModule) -> None:
    """On strings already in normalize's form, plain ``php`` ``version_compare`` agrees.

    This needs only PHP (not Composer's library): it pins the ``version_compare`` half.
    """
    rnd = random.Random(3)
    strings = list(dict.fromkeys(_normalized_shapes(rnd, 600)))
    ordered = sorted(strings, key=composer.key)
    pairs = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False)]
    pairs += [(rnd.choice(strings), rnd.choice(strings)) for _ in range(2000)]
    for (a, b), (_, _, want) in zip(pairs, php_batch(pairs, mode="raw"), strict=True):
        assert composer.compare(a, b) == want, (a, b)
        assert key_cmp(composer, a, b) == want, (a, b)


# --------------------------------------------------------------------------------------
# Properties

_word = st.sampled_from(
    ["alpha", "a", "ALPHA", "beta", "b", "Beta", "RC", "rc", "patch", "pl", "p", "P", "STABLE"]
)
_nums = st.lists(
    st.tuples(st.sampled_from(["", ".", "-"]), st.integers(0, 10**21).map(str)), max_size=3
).map(lambda xs: "".join(s + d for s, d in xs))
_modifier = st.one_of(
    st.just(""),
    st.builds(
        lambda sep, w, nums, dev: sep + w + nums + dev,
        st.sampled_from(["", "-", ".", "_"]),
        _word,
        _nums,
        st.sampled_from(["", "", "-dev", ".dev", "dev", "-DEV"]),
    ),
    st.sampled_from(["-dev", "dev", ".dev", "_dev", "-"]),
)
_classical = st.builds(
    lambda first, rest: ".".join([first, *rest]),
    st.integers(0, 99999).map(str),
    st.lists(st.integers(0, 10**20).map(str), max_size=3),
)
_date = st.builds(
    lambda y, pairs, sep: y + "".join(sep + p for p in pairs),
    st.integers(1000, 9999).map(str),
    st.lists(st.integers(0, 99).map(lambda n: f"{n:02}"), min_size=1, max_size=6),
    st.sampled_from(["", "-", ":", "."]),
)
_alias = st.builds(
    lambda first, rest, tail: ".".join([first, *rest]) + tail,
    st.integers(0, 999).map(str),
    st.lists(st.sampled_from(["x", "X", "*", "0", "3", "12"]), min_size=1, max_size=3),
    st.sampled_from(["-dev", ".dev", "dev", "-DEV"]),
)
valid_versions = st.one_of(
    st.builds(
        lambda v, core, mod, build, ws: ws + v + core + mod + build + ws,
        st.sampled_from(["", "", "v", "V"]),
        st.one_of(_classical, _classical, _date),
        _modifier,
        st.sampled_from(["", "", "", "+b1", "+exp.sha.5114f85"]),
        st.sampled_from(["", "", " ", "\t"]),
    ),
    st.builds(lambda v, a: v + a, st.sampled_from(["", "v"]), _alias),
)
_junk_chars = st.sampled_from(list(".-_+:@ x0aé\x00\ud800\x0bv*"))
mutated = near_misses(valid_versions, _junk_chars)
any_versions = st.one_of(valid_versions, mutated, st.text(max_size=10))

COMPILED = load("composer", "compiled")
PURE = load("composer", "pure")


# The properties every compiled/pure scheme pair must have (``tests/matcher/versions/properties``).
(
    test_generated_versions_are_valid,
    test_pure_and_compiled_agree_on_validity_reason_and_key,
    test_pure_and_compiled_agree_on_compare,
    test_key_order_is_compare_order_and_antisymmetric,
    test_transitivity,
) = scheme_properties("composer", COMPILED, PURE, valid_versions, any_versions)


@pytest.mark.oracle
@given(st.one_of(valid_versions, mutated), st.one_of(valid_versions, mutated))
def test_hypothesis_pairs_match_composer(php: PhpProcess, a: str, b: str) -> None:
    """Generated and near-miss pairs: Composer's validity and order (documented refusals aside)."""
    assume("\ud800" not in a + b)  # not valid UTF-8: nothing PHP can be asked about
    assert_agrees_with_composer(COMPILED, a, b, php.ask(a, b))
