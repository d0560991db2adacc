"""Version schemes: compare versions and turn them into order-preserving byte keys.

Usage::

    from regsweep.matcher import versions

    versions.compare("dpkg", "1.0-1", "1.0~rc1-1")   # 1
    versions.key("pep440", "1.0rc1")                  # bytes; memcmp order == version order
    versions.dpkg.compare("1:2.0", "3.0")             # the fast path: no dispatch

``versions.<scheme>`` is the compiled (Cython) module. Setting ``REGSWEEP_PURE_PYTHON=1`` in
the environment before import swaps in the pure-Python reference implementations, which
have the same API and produce the same keys; the test suite runs under both. The variable is
read once, in ``regsweep.matcher._pure``, for the identity table and the index as well.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, assert_never

from regsweep.matcher._pure import PURE_PYTHON
from regsweep.matcher.versions.interface import InvalidVersion, Scheme, SchemeError, SchemeModule

if TYPE_CHECKING:
    from regsweep.matcher.versions.compiled import (
        apk,
        composer,
        dpkg,
        gem,
        maven,
        pep440,
        rpm,
        semver,
    )

__all__ = [
    "IMPLEMENTATION",
    "InvalidVersion",
    "Scheme",
    "SchemeError",
    "SchemeModule",
    "apk",
    "authoritative",
    "compare",
    "compare_many",
    "composer",
    "dpkg",
    "gem",
    "key",
    "key_many",
    "maven",
    "module",
    "pep440",
    "rpm",
    "semver",
]

#: ``"pure"`` or ``"compiled"``: which implementation ``versions.<scheme>`` resolves to.
IMPLEMENTATION = "pure" if PURE_PYTHON else "compiled"

_modules: dict[Scheme, SchemeModule] = {}


def _load(scheme: Scheme) -> SchemeModule:
    # Imported on first use: a CLI call that compares dpkg versions loads one extension only.
    match scheme:
        case (
            Scheme.DPKG
            | Scheme.RPM
            | Scheme.APK
            | Scheme.PEP440
            | Scheme.SEMVER
            | Scheme.MAVEN
            | Scheme.GEM
            | Scheme.COMPOSER
        ):
            name = f"regsweep.matcher.versions.{IMPLEMENTATION}.{scheme.value}"
        case _:
            assert_never(scheme)
    mod: SchemeModule = importlib.import_module(name)
    _modules[scheme] = mod
    return mod


def module(scheme: Scheme | str) -> SchemeModule:
    """Return the implementation module of ``scheme`` (compiled unless forced pure).

    Raises ``SchemeError`` for a name that is not a scheme.
    """
    try:
        s = Scheme(scheme)
    except ValueError:
        known = ", ".join(s.value for s in Scheme)
        raise SchemeError(f"unknown version scheme {scheme!r} (known: {known})") from None
    return _modules.get(s) or _load(s)


def compare(scheme: Scheme | str, a: str, b: str) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b`` under ``scheme``.

    Raises ``InvalidVersion`` when either string is not a version of the scheme.
    """
    return module(scheme).compare(a, b)


def key(scheme: Scheme | str, v: str) -> bytes:
    """Return the order-preserving byte key of ``v`` under ``scheme``."""
    return module(scheme).key(v)


def authoritative(scheme: Scheme | str) -> bool:
    """Whether ``key`` orders exactly as ``compare`` does (else re-check candidates)."""
    return module(scheme).AUTHORITATIVE


def compare_many(scheme: Scheme | str, a: Sequence[str], b: Sequence[str]) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i in one call."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return module(scheme).compare_many(a, b)


def key_many(scheme: Scheme | str, vs: Sequence[str]) -> list[bytes]:
    """Return the keys of all ``vs`` in one call."""
    return module(scheme).key_many(vs)


def __getattr__(name: str) -> SchemeModule:
    # ``versions.dpkg`` and friends: the per-scheme fast path, loaded on first access.
    try:
        scheme = Scheme(name)
    except ValueError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return module(scheme)
