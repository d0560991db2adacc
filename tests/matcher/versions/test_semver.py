"""The semver scheme: SemVer 2.0.0 precedence, validity, keys, and agreement with node-semver.

Every test runs against both implementations (``impl`` fixture). The reference is node's
``semver`` package (what npm uses), through ``tests/data/versions/semver_golden.json``:
its verdicts on real advisory versions (Go, crates.io, Docker Hardened Images, GHSA), npm
and NuGet version strings and adversarial ones, written by ``gen_semver.py`` beside it
(the suite never downloads anything). The node-semver (ISC) and osv-scalibr (Apache-2.0)
vectors under ``../shared/data`` are read at test time when present.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher import versions
from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule
from regsweep.matcher.versions.pure import semver as pure_semver
from tests import paths
from tests.matcher.versions.conftest import load, read_vectors
from tests.matcher.versions.properties import key_cmp, near_misses, outcome, scheme_properties

DATA = paths.DATA / "versions"
GOLDEN = DATA / "semver_golden.json"
ASCII_WS = " \t\n\v\f\r"


@pytest.fixture
def semver(impl: str) -> SchemeModule:
    """The semver module of the implementation under test."""
    return load("semver", impl)


_outcome = functools.partial(outcome, "semver")


def _valid(mod: SchemeModule, v: str) -> bool:
    try:
        mod.key(v)
    except InvalidVersion:
        return False
    return True


_OP = {"<": -1, "=": 0, ">": 1}

# --------------------------------------------------------------------------------------
# Semantics, by example

SEMANTICS = [
    # SemVer 2.0.0 section 11's example chain, and numeric components
    ("1.0.0-alpha", "<", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "<", "1.0.0-beta"),
    ("1.0.0-beta", "<", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "<", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "<", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "<", "1.0.0"),
    ("1.9.0", "<", "1.10.0"),
    ("1.10.0", "<", "2.0.0"),
    ("0.0.0", "<", "0.0.1"),
    # pre-release identifiers: numeric < alphanumeric, ASCII (case-sensitive), prefix first
    ("1.0.0-1", "<", "1.0.0-a"),
    ("1.0.0-999", "<", "1.0.0-0a"),
    ("1.0.0-R2", "<", "1.0.0-r100"),
    ("1.0.0-Beta", "<", "1.0.0-beta"),
    ("1.0.0-a", "<", "1.0.0-a.0"),
    ("1.0.0-a-", ">", "1.0.0-a.b"),  # identifier by identifier: "a-" > "a"
    ("1.0.0--", "<", "1.0.0-0a"),
    ("1.0.0-rc.9", "<", "1.0.0-rc.10"),
    ("1.0.0-rc9", ">", "1.0.0-rc10"),
    # build metadata never orders
    ("1.0.0+a", "=", "1.0.0+b"),
    ("1.0.0-rc.1+build.1", "=", "1.0.0-rc.1+build.2"),
    ("1.0.0+zzz", "<", "1.0.1+aaa"),
    ("2.0.0+incompatible", "=", "v2.0.0"),
    # prefixes and whitespace (node-semver loose)
    ("v1.2.3", "=", "1.2.3"),
    ("=1.2.3", "=", "1.2.3"),
    (" = v 1.2.3\n", "=", "1.2.3"),
    # leading zeros read numerically
    ("01.02.03", "=", "1.2.3"),
    ("1.2.3-beta.01", "=", "1.2.3-beta.1"),
    ("1.2.3-00", "=", "1.2.3-0"),
    ("1.2.3-0a", ">", "1.2.3-00"),
    # any number of components, missing ones 0, trailing zeros ignored (Go, NuGet, OSV)
    ("0", "=", "0.0.0"),
    ("1", "=", "1.0.0"),
    ("v1.2", "=", "v1.2.0"),
    ("1.0", "=", "1.0.0.0"),
    ("4.3.0", "<", "4.3.0.1"),
    ("4.3.0.1", "<", "4.3.1"),
    ("4.3.0.1-beta", "<", "4.3.0.1"),
    ("4.3.0.1-beta", ">", "4.3.0"),
    ("1.2-rc.1", "=", "1.2.0-rc.1"),
    ("1.0.0.0.0.1", ">", "1"),
    # numbers of any size, exactly (node-semver stops at 2**53 - 1)
    ("9007199254740992.0.0", ">", "9007199254740991.0.0"),
    ("1.0.0-99999999999999999", ">", "1.0.0-99999999999999998"),
    ("1.0.0-99999999999999999", "<", "1.0.0-a"),
    ("999999999999999999999999999991", "<", "999999999999999999999999999999"),
    # Go pseudo-versions
    ("v0.0.0-20210101000000-abcdef123456", "<", "v0.0.0"),
    ("v0.0.0-20210101000000-abcdef123456", "<", "v0.0.0-20210102000000-000000000000"),
    ("v1.2.3", "<", "v1.2.4-0.20210101000000-abcdef123456"),
    ("v1.2.4-0.20210101000000-abcdef123456", "<", "v1.2.4-pre"),
    ("v1.2.4-pre.0.20210101000000-abcdef123456", "<", "v1.2.4-pre.1"),
    # OSV's ``introduced: "0"`` is 0.0.0 here, which is *above* 0.0.0 pre-releases: the
    # range evaluator must read that sentinel as "everything", not compare it.
    ("0", ">", "0.0.0-20190927203648-9ce6eca90e73"),
]


@pytest.mark.parametrize(("a", "op", "b"), SEMANTICS)
def test_documented_orderings_hold_in_compare_and_key(
    semver: SchemeModule, a: str, op: str, b: str
) -> None:
    """Each documented ordering holds both ways, and the keys order the same."""
    want = _OP[op]
    assert semver.compare(a, b) == want
    assert semver.compare(b, a) == -want
    assert key_cmp(semver, a, b) == want


INVALID = [
    ("", pure_semver.E_EMPTY),
    (" \t\n", pure_semver.E_EMPTY),
    ("v", pure_semver.E_NODIGIT),
    ("=v ", pure_semver.E_NODIGIT),
    ("V1.2.3", pure_semver.E_NODIGIT),
    ("latest", pure_semver.E_NODIGIT),
    ("x.1.2", pure_semver.E_NODIGIT),
    (".1.2", pure_semver.E_NODIGIT),
    ("1..2", pure_semver.E_EMPTYCOMP),
    ("1.2.", pure_semver.E_EMPTYCOMP),
    ("1.2.x", pure_semver.E_EMPTYCOMP),
    ("1.2.3.beta", pure_semver.E_EMPTYCOMP),
    ("1.2.3beta", pure_semver.E_TRAILING),
    ("1.2.3 4", pure_semver.E_TRAILING),
    ("1.2.3~rc1", pure_semver.E_TRAILING),
    ("1:1.2.3", pure_semver.E_TRAILING),
    ("1.2.3\x00", pure_semver.E_TRAILING),
    ("1.2.3-", pure_semver.E_EMPTYPRE),
    ("3.1.1-", pure_semver.E_EMPTYPRE),  # a real Docker Hardened Images "versions" entry
    ("1.2.3-+b", pure_semver.E_EMPTYPRE),
    ("1.2.3-.a", pure_semver.E_EMPTYPRE),
    ("1.2.3-a.", pure_semver.E_EMPTYPRE),
    ("1.2.3-a..b", pure_semver.E_EMPTYPRE),
    ("1.2.3-a_b", pure_semver.E_BADPRE),
    ("1.2.3-a b", pure_semver.E_BADPRE),
    ("1.2.3-a.$", pure_semver.E_BADPRE),
    ("1.2.3+", pure_semver.E_EMPTYBUILD),
    ("1.2.3+a..b", pure_semver.E_EMPTYBUILD),
    ("1.2.3+a+b", pure_semver.E_BADBUILD),
    ("1.2.3-a+b_c", pure_semver.E_BADBUILD),
    ("1.2.3-α", pure_semver.E_NONASCII),
    ("１.2.3", pure_semver.E_NONASCII),
    ("\u00a01.2.3", pure_semver.E_NONASCII),
    ("1.2.3-\ud800", pure_semver.E_NONASCII),
]


@pytest.mark.parametrize(("v", "reason"), INVALID)
def test_invalid_versions_raise_with_their_reason(
    semver: SchemeModule, v: str, reason: str
) -> None:
    """Strings outside the grammar raise InvalidVersion (never compare), with a clear reason."""
    with pytest.raises(InvalidVersion) as e:
        semver.key(v)
    assert (e.value.scheme, e.value.version, e.value.reason) == ("semver", v, reason)
    # A comparison with an invalid side raises whichever side it is, and never returns 0.
    for a, b in ((v, "1.0.0"), ("1.0.0", v), (v, v)):
        with pytest.raises(InvalidVersion):
            semver.compare(a, b)


def test_batch_calls_match_single_calls(semver: SchemeModule) -> None:
    """compare_many/key_many equal the single calls, raise on invalid and on unequal lengths."""
    a = ["1.0.0", "v2", "1.0.0-rc.1", "1.0.0+x"]
    b = ["1.0.1", "2.0.0", "1.0.0", "1.0.0+y"]
    assert semver.compare_many(a, b) == [semver.compare(x, y) for x, y in zip(a, b, strict=True)]
    assert semver.key_many(a) == [semver.key(x) for x in a]
    assert semver.compare_many([], []) == []
    with pytest.raises(ValueError, match="equal lengths"):
        semver.compare_many(a, b[:2])
    with pytest.raises(InvalidVersion):
        semver.compare_many(["1.0.0", "nope"], ["1.0.0", "1.0.0"])
    with pytest.raises(InvalidVersion):
        semver.key_many(["1.0.0", "1.2.3-"])


def test_dispatch_reaches_this_scheme() -> None:
    """The public dispatch routes "semver" here, and the module is authoritative."""
    assert versions.compare("semver", "v1.2.3", "1.2.4") == -1
    assert versions.key("semver", "1.2") == versions.key("semver", "1.2.0")
    assert versions.authoritative("semver") is True


def test_long_inputs_build_long_keys(semver: SchemeModule) -> None:
    """Keys past the 512-byte inline buffer (and numbers of 255+ digits) stay exact."""
    big = "9" * 300
    a = ".".join(["1"] * 400) + "-" + ".".join(["x1"] * 300)
    assert semver.compare(a, a + ".x1") == -1
    assert semver.compare(f"{big}.0.0", f"{big[:-1]}8.0.0") == 1
    assert semver.compare(f"1.0.0-{big}", f"1.0.0-{big[:-1]}8") == 1
    assert semver.compare(f"1.0.0-{big}", "1.0.0-" + "1" * 254) == 1
    assert semver.key(a + "+" + "b" * 1000) == semver.key(a)


# --------------------------------------------------------------------------------------
# Reference vectors (read from ../shared when present)

SCALIBR = "vectors/osv-scalibr"


def test_osv_scalibr_semver_vectors(semver: SchemeModule, shared_data: Path) -> None:
    """Every osv-scalibr SemVer vector (incl. the bare 30-digit numbers) holds."""
    cases = list(read_vectors(shared_data / SCALIBR / "semver-versions.txt"))
    assert len(cases) > 80
    for a, want, b, line in cases:
        assert semver.compare(a, b) == want, f"line {line}: {a} vs {b}"
        assert key_cmp(semver, a, b) == want, f"line {line}: keys of {a} vs {b}"


def test_osv_scalibr_nuget_vectors_with_case_folded(
    semver: SchemeModule, shared_data: Path
) -> None:
    """NuGet vectors hold once the caller lower-cases (NuGet labels are case-insensitive).

    Without folding, exactly the vectors that equate labels differing only in case fail:
    this scheme is SemVer's, case-sensitive.
    """
    cases = list(read_vectors(shared_data / SCALIBR / "nuget-versions.txt"))
    assert len(cases) > 30
    case_only = 0
    for a, want, b, line in cases:
        assert semver.compare(a.lower(), b.lower()) == want, f"line {line}: {a} vs {b}"
        if semver.compare(a, b) != want:
            assert a.lower().split("+")[0] == b.lower().split("+")[0], f"line {line}"
            case_only += 1
    assert case_only == 4


def _node_rows(shared_data: Path, name: str) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(
        (shared_data / "vectors/semver/node-semver" / name).read_text(encoding="utf-8")
    )["rows"]
    return rows


def test_node_semver_comparisons(semver: SchemeModule, shared_data: Path) -> None:
    """node-semver's comparisons.js: every first version is greater than the second."""
    rows = _node_rows(shared_data, "comparisons.json")
    assert len(rows) == 31
    for a, b, *_ in rows:
        assert semver.compare(a, b) == 1, (a, b)
        assert key_cmp(semver, a, b) == 1, (a, b)


def test_node_semver_equality(semver: SchemeModule, shared_data: Path) -> None:
    """node-semver's equality.js (loose rows included): each pair is equal, keys too."""
    rows = _node_rows(shared_data, "equality.json")
    assert len(rows) == 37
    for a, b, *_ in rows:
        assert semver.compare(a, b) == 0, (a, b)
        assert semver.key(a) == semver.key(b), (a, b)


def test_node_semver_valid_versions(semver: SchemeModule, shared_data: Path) -> None:
    """node-semver's valid-versions.js parse, with the release and pre-release it lists."""
    rows = _node_rows(shared_data, "valid-versions.json")
    assert len(rows) == 22
    for v, major, minor, patch, pre, _build in rows:
        spelled = f"{major}.{minor}.{patch}" + ("-" + ".".join(map(str, pre)) if pre else "")
        assert semver.key(v) == semver.key(spelled), v


def test_node_semver_invalid_versions(semver: SchemeModule, shared_data: Path) -> None:
    """node-semver's invalid-versions.js: junk is invalid here too; size limits are not.

    node-semver refuses strings over 256 characters and numbers over 2**53 - 1 (JavaScript
    number limits); this scheme compares numbers of any size exactly, by decision.
    """
    rows = [r for r in _node_rows(shared_data, "invalid-versions.json") if isinstance(r[0], str)]
    junk = [v for v, why, *_ in rows if "too" not in why and not v.startswith("<")]
    sized = [v for v, why, *_ in rows if why in ("too long", "too big")]
    assert junk == ["hello, world", "hello, world", "xyz"]
    assert len(sized) == 4
    for v in junk:
        with pytest.raises(InvalidVersion):
            semver.key(v)
    for v in sized:
        # Past node's limit, still ordered exactly: one more digit is a bigger number.
        smaller = v.replace("90071992547409910", "9007199254740991").replace("1" * 200, "1")
        assert smaller != v
        assert semver.compare(v, smaller) == 1, v


@functools.cache
def _osv_semver_ranges(shared_data: Path, folder: str) -> list[tuple[str, list[dict[str, str]]]]:
    # Read once for both implementations: the Go folder alone is 4,000 files.
    out = []
    for path in sorted((shared_data / "advisories/osv" / folder).rglob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        for aff in rec.get("affected", []):
            out += [
                (path.name, rng["events"])
                for rng in aff.get("ranges", [])
                if rng.get("type") == "SEMVER"
            ]
    return out


@pytest.mark.parametrize("folder", ["go", "crates", "dhi"])
def test_every_real_osv_semver_version_parses(
    semver: SchemeModule, shared_data: Path, folder: str
) -> None:
    """Every version in the real OSV SEMVER ranges of Go, crates.io and DHI is valid."""
    ranges = _osv_semver_ranges(shared_data, folder)
    assert len(ranges) > 500
    seen = {v for _, events in ranges for event in events for v in event.values()}
    assert seen
    for v in sorted(seen):
        semver.key(v)


def test_go_vulndb_intervals_are_nonempty(semver: SchemeModule, shared_data: Path) -> None:
    """golang/vulndb's curated ranges (``introduced`` other than "0") start before they end."""
    checked = 0
    for name, events in _osv_semver_ranges(shared_data, "go"):
        start = None
        for event in events:
            ((kind, v),) = event.items()
            if kind == "introduced":
                start = None if v == "0" else v
            elif kind == "fixed" and start is not None:
                assert semver.compare(start, v) == -1, (name, start, v)
                checked += 1
    assert checked > 1000


# --------------------------------------------------------------------------------------
# Differential: node-semver's verdicts (tests/data/versions/semver_golden.json)

_ID = r"[0-9A-Za-z-]+"
_OURS = re.compile(rf"[v=\s]*(\d+(?:\.\d+)*)(?:-{_ID}(?:\.{_ID})*)?(?:\+{_ID}(?:\.{_ID})*)?")
# node-semver loose mode's own shapes that this scheme refuses (see the pure docstring):
# a pre-release without its '-' (1.2.3beta), an empty one (1.2.3-, 1.2.3-+b, 1.2.3-.a).
_NODE_LOOSE_ONLY = re.compile(r"[v=\s]*\d+\.\d+\.\d+(?:[A-Za-z]|-$|-[+.])")
_MAX_SAFE = 2**53 - 1


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    """The committed node-semver verdicts."""
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert data["node_semver"].startswith("7.")
    assert len(data["versions"]) > 2000 and len(data["pairs"]) > 4000
    return data


def _extension(v: str) -> bool:
    """Valid here but not in node-semver by decision: not 3 components, or past its limits."""
    m = _OURS.fullmatch(v.strip(ASCII_WS))
    assert m is not None, v
    numbers = m.group(1).split(".")
    return len(numbers) != 3 or any(int(x) > _MAX_SAFE for x in numbers) or len(v.strip()) > 256


def test_validity_matches_node_semver_except_documented_decisions(
    semver: SchemeModule, golden: dict[str, Any]
) -> None:
    """Valid exactly when node-semver's loose mode accepts, but for the documented decisions.

    Everything strict node-semver accepts is valid here; loose-only shapes refused here are
    only the '-'-less or empty pre-releases; strings valid here only are only the
    component-count and size extensions.
    """
    widened = narrowed = 0
    for v, (strict, loose, _reading) in golden["versions"].items():
        ours = _valid(semver, v)
        if strict:
            assert ours, v
        if ours and not loose:
            assert _extension(v), v
            widened += 1
        elif loose and not ours:
            assert _NODE_LOOSE_ONLY.match(v.strip(ASCII_WS)), v
            narrowed += 1
    assert widened > 10 and narrowed >= 4


def test_reading_matches_node_semver(semver: SchemeModule, golden: dict[str, Any]) -> None:
    """Where both accept a string, node's normalised reading of it equals ours.

    The one documented exception: node's loose regex backtracks into a string of four or
    more components, reading ``1.0.4191.47`` as ``1.0.419-1.47``; here it is four numbers.
    """
    backtracked = 0
    for v, (_strict, loose, reading) in golden["versions"].items():
        if not loose or not _valid(semver, v):
            continue
        node = v if reading is True else reading
        if semver.compare(v, node) != 0:
            assert _extension(v), (v, node)
            backtracked += 1
    assert backtracked < 20


def test_order_matches_node_semver(semver: SchemeModule, golden: dict[str, Any]) -> None:
    """compare and key agree with ``semver.compare(a, b, loose)`` on every golden pair.

    Pairs with a string node reads differently (the backtracking above) or that is refused
    here are the only ones left out, and there are few.
    """
    readings = golden["versions"]
    skipped = checked = 0
    for a, b, want in golden["pairs"]:
        if not (_valid(semver, a) and _valid(semver, b)) or _extension(a) or _extension(b):
            assert not (readings[a][0] and readings[b][0]), (a, b)  # strict pairs never skip
            skipped += 1
            continue
        assert semver.compare(a, b) == want, (a, b)
        assert key_cmp(semver, a, b) == want, (a, b)
        checked += 1
    assert checked > 4000 and skipped < checked // 20


def test_golden_order_is_a_chain_of_keys(semver: SchemeModule, golden: dict[str, Any]) -> None:
    """Sorting the golden's strict-valid versions by key is consistent with compare."""
    strict = sorted((v for v, (s, _, _) in golden["versions"].items() if s), key=semver.key)
    for a, b in zip(strict, strict[1:], strict=False):
        assert semver.compare(a, b) <= 0, (a, b)


# --------------------------------------------------------------------------------------
# Properties

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_num = st.one_of(
    st.sampled_from(["0", "1", "2", "9", "10", "00", "01", "007"]),
    st.integers(0, 10**25).map(str),
)
_ident = st.one_of(
    _num,
    st.sampled_from(["a", "A", "alpha", "beta", "rc", "RC", "-", "a-b", "0a", "x1", "z", "pre"]),
    st.text(_ALNUM + "-", min_size=1, max_size=6),
)
_prefix = st.sampled_from(["", "", "", "v", "=", "v=", " ", "\tv "])
valid_versions = st.builds(
    lambda p, rel, pre, build, tail: (
        p
        + ".".join(rel)
        + ("-" + ".".join(pre) if pre else "")
        + ("+" + ".".join(build) if build else "")
        + tail
    ),
    _prefix,
    st.lists(_num, min_size=1, max_size=5),
    st.lists(_ident, max_size=4),
    st.lists(_ident, max_size=2),
    st.sampled_from(["", "", " ", "\n"]),
)
# Near-misses: valid versions with a character inserted, deleted or swapped.
_junk_chars = st.sampled_from(list(".-+v= _~^:*xX0\x00é\ud800"))
mutated = near_misses(valid_versions, _junk_chars)
any_versions = st.one_of(valid_versions, mutated, st.text(max_size=12))

COMPILED = load("semver", "compiled")
PURE = load("semver", "pure")


# The properties every compiled/pure scheme pair must have (``tests/matcher/versions/properties``).
(
    test_generated_versions_are_valid,
    test_pure_and_compiled_agree_on_validity_reason_and_key,
    test_pure_and_compiled_agree_on_compare,
    test_key_order_is_compare_order_and_antisymmetric,
    test_transitivity,
) = scheme_properties("semver", COMPILED, PURE, valid_versions, any_versions)


@given(valid_versions, st.lists(_ident, min_size=1, max_size=2), st.sampled_from(["", ".0"]))
def test_build_metadata_and_trailing_zeros_never_order(v: str, build: list[str], z: str) -> None:
    """Appending build metadata, or a zero component to a release, keeps the version equal."""
    base = v.strip(ASCII_WS).split("+")[0]
    assert COMPILED.key(base + "+" + ".".join(build)) == COMPILED.key(base)
    release, dash, pre = base.partition("-")
    assert COMPILED.key(release + z + dash + pre) == COMPILED.key(base)


@given(valid_versions, _ident)
def test_a_prerelease_sorts_below_its_release(v: str, ident: str) -> None:
    """Adding a pre-release to a release makes it smaller; extending a pre-release, larger."""
    base = v.strip(ASCII_WS).split("+")[0]
    if "-" not in base:
        assert COMPILED.compare(base + "-" + ident, base) == -1
    else:
        assert COMPILED.compare(base + "." + ident, base) == 1
