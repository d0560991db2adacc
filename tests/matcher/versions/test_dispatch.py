"""The public ``versions`` facade: dispatch, the pure switch, and the shared error types."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from regsweep.matcher import versions
from regsweep.matcher.versions import InvalidVersion, Scheme, SchemeError
from tests.matcher.versions.conftest import IMPLEMENTATIONS, load

# One ordered triple per scheme (old < mid < new), and one string each scheme rejects.
ORDERED = {
    Scheme.DPKG: ("1.0~rc1-1", "1.0-1", "1:0.9-1"),
    Scheme.RPM: ("1.0-1.el8", "1.0-2.el8", "1:0.9-1.el8"),
    Scheme.APK: ("1.0_rc1-r0", "1.0-r0", "1.0-r1"),
    Scheme.PEP440: ("1.0rc1", "1.0", "1.0.post1"),
    Scheme.SEMVER: ("1.0.0-rc.1", "1.0.0", "1.0.1"),
    Scheme.MAVEN: ("1.0", "1.0.1", "1.1"),
    Scheme.GEM: ("1.0.0.rc1", "1.0.0", "1.0.1"),
    Scheme.COMPOSER: ("1.0.0-RC1", "1.0.0", "1.0.0-p1"),
}
INVALID = {
    Scheme.DPKG: "1:",
    Scheme.RPM: "",
    Scheme.APK: "",
    Scheme.PEP440: "",
    Scheme.SEMVER: "",
    Scheme.MAVEN: "",
    Scheme.GEM: "1..2 x",
    Scheme.COMPOSER: "dev-main",
}


@pytest.mark.parametrize("scheme", list(Scheme))
def test_facade_orders_like_the_module_under_every_scheme(scheme: Scheme) -> None:
    """versions.compare/key dispatch to the scheme module and agree with it."""
    old, mid, new = ORDERED[scheme]
    assert versions.compare(scheme, old, mid) == -1
    assert versions.compare(scheme.value, new, mid) == 1
    assert versions.compare(scheme, mid, mid) == 0
    assert versions.key(scheme, old) < versions.key(scheme, mid) < versions.key(scheme, new)
    assert versions.compare_many(scheme, [old, new], [mid, mid]) == [-1, 1]
    assert versions.key_many(scheme, [old, new]) == [versions.key(scheme, v) for v in (old, new)]
    assert getattr(versions, scheme.value) is versions.module(scheme)
    assert isinstance(versions.authoritative(scheme), bool)


@pytest.mark.parametrize("scheme", list(Scheme))
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_every_implementation_has_the_whole_api_and_rejects_invalid(
    scheme: Scheme, impl: str
) -> None:
    """Both implementations of every scheme expose the protocol and raise InvalidVersion."""
    mod = load(scheme.value, impl)
    assert isinstance(mod.AUTHORITATIVE, bool)
    old, mid, _ = ORDERED[scheme]
    assert mod.compare_many([old], [mid]) == [mod.compare(old, mid)]
    assert mod.key_many([old]) == [mod.key(old)]
    bad = INVALID[scheme]
    with pytest.raises(InvalidVersion):
        mod.compare(bad, mid)
    with pytest.raises(InvalidVersion):
        mod.compare(mid, bad)
    with pytest.raises(InvalidVersion):
        mod.key(bad)


def test_unknown_scheme_is_a_scheme_error_naming_the_known_ones() -> None:
    """An unknown scheme name fails loudly rather than falling back to string order."""
    with pytest.raises(SchemeError, match="dpkg"):
        versions.compare("nope", "1", "2")
    with pytest.raises(AttributeError):
        _ = versions.nope  # type: ignore[attr-defined]


def test_compare_many_rejects_unequal_lengths() -> None:
    """A batch with a missing partner is an error, not a silently shorter result."""
    with pytest.raises(ValueError, match="equal lengths"):
        versions.compare_many("dpkg", ["1"], ["1", "2"])


def test_invalid_version_is_a_value_error_that_survives_pickling() -> None:
    """Workers report InvalidVersion across processes with its fields intact."""
    err = InvalidVersion("dpkg", "1:", "empty upstream version")
    assert isinstance(err, ValueError) and isinstance(err, SchemeError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.scheme, back.version, back.reason) == ("dpkg", "1:", "empty upstream version")


@pytest.mark.parametrize(("flag", "expected"), [("1", "pure"), ("0", "compiled"), ("", "compiled")])
def test_environment_switch_selects_the_implementation(flag: str, expected: str) -> None:
    """REGSWEEP_PURE_PYTHON=1 makes versions.<scheme> the pure reference module."""
    code = (
        "from regsweep.matcher import versions as v;"
        "print(v.IMPLEMENTATION, v.dpkg.__name__, v.compare('dpkg', '1.0~', '1.0'))"
    )
    env = {**os.environ, "REGSWEEP_PURE_PYTHON": flag}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [expected, f"regsweep.matcher.versions.{expected}.dpkg", "-1"]
