"""What every scheme with a compiled and a pure implementation must satisfy, and the
near-miss strategy it is tested with: shared by the gem, semver and composer tests, which
pass their own grammar strategy."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.versions.interface import InvalidVersion, SchemeModule


def key_cmp(mod: SchemeModule, a: str, b: str) -> int:
    """-1, 0 or 1 as ``mod.key(a)`` sorts before, equal to or after ``mod.key(b)``."""
    ka, kb = mod.key(a), mod.key(b)
    return (ka > kb) - (ka < kb)


def outcome(scheme: str, f: Callable[[], object]) -> object:
    """The result of ``f()``, or the InvalidVersion reason it raised (for pure == compiled)."""
    try:
        return f()
    except InvalidVersion as e:
        assert e.scheme == scheme
        return ("invalid", e.reason)


def near_misses(
    valid: st.SearchStrategy[str], junk: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    """Valid versions with one character inserted, deleted or replaced by ``junk``."""
    return st.builds(
        lambda v, i, c, mode: (
            (v[:i] + c + v[i:])
            if mode == 0
            else (v[:i] + v[i + 1 :])
            if mode == 1
            else (v[:i] + c + v[i + 1 :])
        ),
        valid,
        st.integers(0, 30),
        junk,
        st.integers(0, 2),
    )


def scheme_properties(
    scheme: str,
    compiled: SchemeModule,
    pure: SchemeModule,
    valid_versions: st.SearchStrategy[str],
    any_versions: st.SearchStrategy[str],
) -> tuple[Callable[..., None], ...]:
    """The five property tests of one scheme, for its test module to bind to test_ names."""

    @given(valid_versions)
    def test_generated_versions_are_valid(v: str) -> None:
        """Everything the grammar strategy builds is valid in both implementations, same
        key."""
        assert compiled.key(v) == pure.key(v)

    @given(any_versions)
    def test_pure_and_compiled_agree_on_validity_reason_and_key(v: str) -> None:
        """Both implementations accept the same strings, with byte-identical keys or
        reasons."""
        assert outcome(scheme, lambda: compiled.key(v)) == outcome(scheme, lambda: pure.key(v))

    @given(any_versions, any_versions)
    def test_pure_and_compiled_agree_on_compare(a: str, b: str) -> None:
        """compare gives the same result or the same InvalidVersion in both implementations."""
        assert outcome(scheme, lambda: compiled.compare(a, b)) == outcome(
            scheme, lambda: pure.compare(a, b)
        )

    @given(valid_versions, valid_versions)
    def test_key_order_is_compare_order_and_antisymmetric(a: str, b: str) -> None:
        """key(a) < key(b) exactly when compare(a, b) < 0, equal keys exactly when equal;
        compare(a, b) == -compare(b, a), and a version equals itself."""
        for mod in (compiled, pure):
            assert key_cmp(mod, a, b) == mod.compare(a, b)
        assert compiled.compare(a, b) == -compiled.compare(b, a)
        assert compiled.compare(a, a) == 0

    @given(st.lists(valid_versions, min_size=3, max_size=4))
    def test_transitivity(vs: list[str]) -> None:
        """Sorted by key, every pair is ordered by compare (a <= b <= c implies a <= c)."""
        ordered = sorted(vs, key=compiled.key)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                assert compiled.compare(a, b) <= 0

    return (
        test_generated_versions_are_valid,
        test_pure_and_compiled_agree_on_validity_reason_and_key,
        test_pure_and_compiled_agree_on_compare,
        test_key_order_is_compare_order_and_antisymmetric,
        test_transitivity,
    )
