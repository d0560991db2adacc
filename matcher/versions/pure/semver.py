"""Semantic versions (npm, crates.io, Go modules, NuGet, OSV ``SEMVER`` ranges): pure Python.

Ordering is SemVer 2.0.0 precedence, as node's ``semver`` package computes it:

* The numeric components compare numerically, left to right (``1.10.0 > 1.9.0``).
* A pre-release sorts before its release (``1.0.0-rc.1 < 1.0.0``).
* Pre-release identifiers compare left to right: all-digit identifiers numerically, others
  in ASCII order (so case-sensitively: ``1.0.0-R2 < 1.0.0-r100``), a numeric identifier
  below an alphanumeric one, and a shorter list below a longer one it prefixes
  (``1.0.0-a < 1.0.0-a.b``).
* Build metadata (``+...``) never orders: ``1.0.0+a`` and ``1.0.0+b`` compare equal and
  have equal keys (Go's ``v2.0.0+incompatible`` equals ``v2.0.0``).

Validity: the grammar is node-semver's *loose* grammar, widened where advisory data needs
it and narrowed where loose mode only accepts regex accidents::

    ws* [v=ws]* NUM ('.' NUM)* ('-' ID ('.' ID)*)? ('+' ID ('.' ID)*)? ws*
    NUM = [0-9]+        ID = [0-9A-Za-z-]+        ws = ASCII whitespace

* Accepted as node-semver's loose mode does: surrounding whitespace, any run of ``v``,
  ``=`` and whitespace before the number (``v1.2.3``, ``=1.2.3``, `` = v1.2.3``), leading
  zeros (``01.2.3 == 1.2.3``, ``1.2.3-beta.01 == 1.2.3-beta.1``).
* Wider than node-semver, for advisory data:

  - Any number of numeric components, missing ones reading as 0: ``1`` and ``1.2`` (Go's
    ``v1``/``v1.2`` shorthands, OSV's ``introduced: "0"``) equal ``1.0.0`` and ``1.2.0``;
    NuGet's fourth component orders after the third (``4.3.0 < 4.3.0.1``), and trailing
    zero components are ignored (``1.0 == 1.0.0.0``, as NuGet has it).
  - Numbers of any size compare exactly. node-semver refuses components above 2**53 - 1
    and strings over 256 characters, and compares pre-release numbers at or above 2**53
    as JavaScript doubles (losing digits); neither limit is in SemVer 2.0.0.

* Narrower than node-semver's loose mode: a pre-release must follow a ``-`` (loose mode
  reads ``1.2.3beta`` as ``1.2.3-beta``; no npm, crates.io, Go or NuGet version has that
  shape) and may not be empty (loose mode reads ``1.2.3-`` as pre-release ``-``; such a
  string in advisory data is a truncated version, so it is refused with a reason).
  The same '-'-less reading makes loose mode backtrack into four-part versions
  (``1.0.4191.47`` becomes ``1.0.419-1.47``); here that is four numbers, as NuGet means.
* Whitespace means ASCII whitespace only; anything non-ASCII is refused.

OSV's ``introduced: "0"`` means "every version"; as a version, ``0`` is ``0.0.0``, which
sorts *above* ``0.0.0-20210101000000-abcdef123456`` (Go pseudo-versions of untagged
modules). The range evaluator must treat that sentinel as unbounded, not compare it.

NuGet compares pre-release labels case-insensitively (``1.0.0-BETA == 1.0.0-beta``), which
SemVer 2.0.0, node-semver and the OSV vectors do not: this scheme is case-sensitive. A
NuGet caller folds case first, ``compare(a.lower(), b.lower())``; identifiers hold only
``[0-9A-Za-z-]`` and ``-`` sorts below every letter, so lower-casing orders exactly as
NuGet's ``OrdinalIgnoreCase`` (which upper-cases).

Key layout (``AUTHORITATIVE`` is True): the numeric components with trailing zeros dropped,
each ``0x03`` + ``put_number``; then ``0x02`` for a release, or ``0x01`` followed by the
pre-release identifiers (numeric ``0x01`` + ``put_number``, alphanumeric ``0x02`` + the
bytes + ``0x00``). A further component (0x03) outranks both ends, and a release's end
(0x02) outranks a pre-release (0x01); every part is prefix-free, so memcmp order is
precedence order.
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import cmp_bytes, put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The byte key orders exactly as ``compare`` (precedence is a lexicographic order).
AUTHORITATIVE = True

_SCHEME = "semver"

# Key tags. Release end (0x02) above pre-release start (0x01): a pre-release sorts first.
_PRE = 0x01
_FINAL = 0x02
_COMPONENT = 0x03
_ID_NUM = 0x01
_ID_ALNUM = 0x02

# The InvalidVersion reasons, public so that tests can name them; the compiled module
# raises the same texts word for word (the tests compare the two).
E_EMPTY = "empty version"
E_NONASCII = "contains a non-ASCII character"
E_NODIGIT = "does not start with a number (after an optional 'v' or '=')"
E_EMPTYCOMP = "empty numeric component: a '.' must be followed by digits"
E_TRAILING = "unexpected character after the numbers (expected '.', '-', '+' or the end)"
E_EMPTYPRE = "empty pre-release identifier"
E_BADPRE = "pre-release identifiers may hold only ASCII letters, digits and '-'"
E_EMPTYBUILD = "empty build-metadata identifier"
E_BADBUILD = "build metadata may hold only ASCII letters, digits, '-' and '.'"

# Python's str.strip() default also strips \x1c-\x1f and Unicode spaces; be explicit.
_WS = " \t\n\v\f\r"
_PREFIX = frozenset("v=" + _WS)
_DIGITS = frozenset("0123456789")
_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _invalid(v: str, reason: str) -> InvalidVersion:
    return InvalidVersion(_SCHEME, v, reason)


def _identifiers(v: str, s: str, i: int, stop: str, empty: str, bad: str) -> tuple[list[str], int]:
    """Read ``ID ('.' ID)*`` from ``s[i:]`` up to ``stop`` or the end; return (ids, index)."""
    ids: list[str] = []
    n = len(s)
    while True:
        j = i
        while j < n and s[j] in _IDENT:
            j += 1
        if j == i:
            # Also a bad character right where an identifier should start ("1.0.0-a.$"):
            # report what is there, not an "empty" identifier.
            if i < n and s[i] not in stop and s[i] != ".":
                raise _invalid(v, bad)
            raise _invalid(v, empty)
        ids.append(s[i:j])
        i = j
        if i < n and s[i] == ".":
            i += 1
            continue
        if i == n or s[i] in stop:
            return ids, i
        raise _invalid(v, bad)


def _parse(v: str) -> tuple[list[str], list[str]]:
    """Validate ``v``; return its numeric components and pre-release identifiers."""
    if not v.isascii():
        raise _invalid(v, E_NONASCII)
    s = v.strip(_WS)
    if not s:
        raise _invalid(v, E_EMPTY)
    n = len(s)
    i = 0
    while i < n and s[i] in _PREFIX:
        i += 1
    release: list[str] = []
    while True:
        j = i
        while j < n and s[j] in _DIGITS:
            j += 1
        if j == i:
            raise _invalid(v, E_EMPTYCOMP if release else E_NODIGIT)
        release.append(s[i:j])
        i = j
        if i < n and s[i] == ".":
            i += 1
            continue
        break
    pre: list[str] = []
    if i < n and s[i] == "-":
        pre, i = _identifiers(v, s, i + 1, "+", E_EMPTYPRE, E_BADPRE)
    if i < n and s[i] == "+":
        _, i = _identifiers(v, s, i + 1, "", E_EMPTYBUILD, E_BADBUILD)
    if i < n:
        raise _invalid(v, E_TRAILING)
    return release, pre


def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (memcmp order is precedence order).

    Raises ``InvalidVersion`` when ``v`` is not a version under this scheme.
    """
    release, pre = _parse(v)
    # Trailing zero components are padding (1.2 == 1.2.0 == 1.2.0.0): drop them so that
    # "more components" in the key always means "greater".
    last = len(release)
    while last > 0 and not release[last - 1].strip("0"):
        last -= 1
    out = bytearray()
    for digits in release[:last]:
        out.append(_COMPONENT)
        put_number(out, digits)
    if not pre:
        out.append(_FINAL)
        return bytes(out)
    out.append(_PRE)
    for ident in pre:
        if ident.isdigit():
            out.append(_ID_NUM)
            put_number(out, ident)
        else:
            out.append(_ID_ALNUM)
            out += ident.encode("ascii")
            out.append(0)
    return bytes(out)


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a version under this scheme.
    """
    return cmp_bytes(key(a), key(b))


def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
