"""The version-scheme interface: the closed set of schemes, their errors and module protocol.

Every scheme exists twice with the same API: a Cython module in ``compiled/`` (the fast
path) and a pure-Python reference in ``pure/``. Both raise the errors defined here, so a
caller never needs to know which one it got.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol


class Scheme(enum.StrEnum):
    """A version ordering. Ecosystems map onto these (Debian and Ubuntu onto ``DPKG`` …)."""

    DPKG = "dpkg"
    RPM = "rpm"
    APK = "apk"
    PEP440 = "pep440"
    SEMVER = "semver"
    MAVEN = "maven"
    GEM = "gem"
    COMPOSER = "composer"


class SchemeError(Exception):
    """Base of every error raised by a version scheme."""


class InvalidVersion(SchemeError, ValueError):
    """A string that is not a version under the scheme.

    It is a ``ValueError`` so that generic callers can catch it; it is never turned into an
    "equal" comparison, and implementations never cache it.
    """

    def __init__(self, scheme: str, version: str, reason: str) -> None:
        self.scheme = scheme
        self.version = version
        self.reason = reason
        super().__init__(f"invalid {scheme} version {version!r}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidVersion], tuple[str, str, str]]:
        # Keep the three fields across pickling (multiprocessing workers report these).
        return (type(self), (self.scheme, self.version, self.reason))


class SchemeModule(Protocol):
    """What ``compiled.<scheme>`` and ``pure.<scheme>`` both provide.

    ``key(v)`` is an order-preserving byte key: ``key(a) < key(b)`` exactly when
    ``compare(a, b) < 0``, and equal keys exactly when the versions compare equal. When a
    scheme cannot promise that (``AUTHORITATIVE`` is False), the key still never orders two
    versions against the comparator (``a < b`` implies ``key(a) <= key(b)``), so an index
    can narrow candidates by key and re-check them with ``compare``.
    """

    AUTHORITATIVE: bool

    def compare(self, a: str, b: str, /) -> int:
        """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
        ...

    def key(self, v: str, /) -> bytes:
        """Return the order-preserving byte key of ``v``."""
        ...

    def compare_many(self, a: Sequence[str], b: Sequence[str], /) -> list[int]:
        """Compare ``a[i]`` with ``b[i]`` for every i (both sequences the same length)."""
        ...

    def key_many(self, vs: Sequence[str], /) -> list[bytes]:
        """Return ``[key(v) for v in vs]``."""
        ...
