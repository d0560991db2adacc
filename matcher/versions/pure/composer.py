"""Composer (Packagist) versions: the pure-Python reference.

Ordering is Composer's: ``Composer\\Semver\\VersionParser::normalize`` reads the string,
then PHP's ``version_compare`` orders the normalized forms (what ``composer audit`` and the
solver do). Normalization:

* A ``v``/``V`` prefix is dropped; ``+build`` metadata is dropped (``1.0.0+b7 == 1.0.0``).
* Classical versions, ``[v]N[.N[.N[.N]]]`` (the first number at most 5 digits), are padded
  to four numbers with ``.0``: ``1.2 == 1.2.0 == 1.2.0.0 == v1.2``.
* A stability suffix may follow, after an optional ``.``, ``_`` or ``-``: ``alpha``/``a``,
  ``beta``/``b``, ``RC``, ``patch``/``pl``/``p`` (any case), then optional numbers
  (``-beta2``, ``-RC.1``, ``-alpha1.2``, ``-p1``), then an optional ``-dev`` (also
  ``.dev``/``dev``); a bare ``-dev`` is allowed too (``1.0-dev``).
* Date versions, when the classical reading fails: 4 digits then 1 to 6 pairs then an
  optional 1 to 3 digits, each piece optionally after ``.``, ``:`` or ``-``
  (``20230101``, ``2023-01-01``, ``202301011200``); they are *not* padded, every run of
  digits is one number. ``2023.01.01`` is classical, so ``2023-01-01 < 2023.01.01``
  (three numbers against four), as in Composer.
* Numeric branch aliases: ``1.2.x-dev`` (``x``, ``X`` or ``*``, up to four parts; also
  ``.dev``/``dev``) reads as ``1.2.9999999.9999999-dev``: above every ``1.2`` release, as
  Composer places a branch that will become the next ``1.2.z``. They are accepted because
  Composer orders them (an installed ``1.2.x-dev`` is outside a range fixed in ``1.2.5``,
  as ``composer audit`` has it), unlike named branches.

``version_compare`` then splits the normalized string into numbers and words and compares
them left to right: numbers numerically, and words by rank ``dev < alpha < beta < RC <
(number) < patch``. When one version runs out first, its end counts as a number below
every number (``1.0-beta < 1.0-beta1``, ``20230101 < 20230101.0``) and so ranks against
a word as a number does (``1.0 > 1.0-RC1``, ``1.0 < 1.0-p1``). So ``1.0-dev < 1.0-alpha1
< 1.0-beta < 1.0-beta.2 < 1.0-RC1-dev < 1.0-RC1 < 1.0 < 1.0-p1 < 1.0.1``. Two more
oddities, kept because Composer has them:

* Numbers are PHP ``long``s (``strtol``): anything from 2**63 - 1 up compares equal
  (``1.99999999999999999999 == 1.9223372036854775807``).
* ``stable`` in lower case is dropped with everything after it (``1.0-stable2-dev ==
  1.0``), but in any other case it stays as a word ``version_compare`` does not know,
  which sorts below ``dev`` (``1.0-STABLE < 1.0-dev``).

Validity is what ``normalize`` accepts, less what has no place in a version order:

* Branches are refused: ``dev-<name>`` and ``master``/``trunk``/``default`` (``normalize``
  keeps them as names; Composer compares them to nothing but themselves), and named
  ``<name>-dev`` (which ``normalize`` refuses too).
* Constraint syntax is refused: a stability flag (``1.0@dev``; any ``@``) and an alias
  (``1.0 as 2.0``); so is whitespace or any control character inside the version
  (``normalize`` would skip some, as in ``1.2.x -dev``), and anything non-ASCII
  (``normalize`` ignores bytes in build metadata). Surrounding whitespace is stripped as
  PHP's ``trim`` does (space, ``\\t\\n\\r\\0\\x0B``).
* Composer's own refusals: ``1.0.0.0.0``, ``1.0-foo``, ``1.0+`` …; an empty string.

Advisories on Packagist (GHSA, FriendsOfPHP) use plain versions (``5.4.12``, ``v2.0.0``,
``1.0.0-beta3``) and ``-dev`` rarely; installed packages carry Composer's pretty version
(``v5.4.0``, ``2.0.0-beta1``, ``dev-main``, ``4.4.x-dev``).

Key (``AUTHORITATIVE`` is True): the normalized elements in order, numbers as ``0x07`` +
``put_number`` (clamped to 2**63 - 1), words as one tag byte by rank (unknown ``0x01``,
dev ``0x02``, alpha ``0x03``, beta ``0x04``, RC ``0x05``, patch ``0x08``), then the end
``0x06``, which sorts between RC and a number as ``version_compare`` ranks a missing part.
Every element is prefix-free, so memcmp order is ``version_compare`` order.
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import cmp_bytes, put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The byte key orders exactly as ``compare`` (``version_compare`` is a lexicographic order).
AUTHORITATIVE = True

_SCHEME = "composer"

# Element tags, in version_compare's rank order; the end sits where a number's rank is.
_UNKNOWN = 0x01
_DEV = 0x02
_ALPHA = 0x03
_BETA = 0x04
_RC = 0x05
_END = 0x06
_NUM = 0x07
_PATCH = 0x08

# The InvalidVersion reasons, public so that tests can name them; the compiled module
# raises the same texts word for word (the tests compare the two).
E_NONASCII = "contains a non-ASCII character"
E_EMPTY = "empty version"
E_SPACE = "whitespace or a control character inside the version"
E_FLAG = "'@' marks a stability flag, which belongs to a constraint, not to a version"
E_BRANCH = "a branch (dev-<name>, master, trunk, default) has no place in the version order"
E_BUILD = "'+' must separate a version from non-empty build metadata"
E_NODIGIT = "does not start with a digit (after an optional 'v')"
E_FORM = (
    "not a Composer version: [v]N[.N[.N[.N]]] or a date, an optional stability suffix "
    "(-alpha1, -beta.2, -RC1, -p1) and -dev, or a numeric branch alias (1.2.x-dev)"
)

# PHP's trim() characters.
_TRIM = " \t\n\r\0\x0b"
_DIGITS = "0123456789"
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# strtol saturates here (PHP's long on 64-bit platforms).
_LONG_MAX = "9223372036854775807"
# Stability words (lower-cased) → tag; "stable" written in lower case is handled apart.
_STABILITY = {
    "stable": _UNKNOWN,
    "alpha": _ALPHA,
    "a": _ALPHA,
    "beta": _BETA,
    "b": _BETA,
    "rc": _RC,
    "patch": _PATCH,
    "pl": _PATCH,
    "p": _PATCH,
}
# A numeric branch alias's x (and a missing part): Composer's stand-in number.
_BRANCH_X = "9999999"


def _invalid(v: str, reason: str) -> InvalidVersion:
    return InvalidVersion(_SCHEME, v, reason)


def _put_num(out: bytearray, digits: str) -> None:
    d = digits.lstrip("0")
    if len(d) > len(_LONG_MAX) or (len(d) == len(_LONG_MAX) and d > _LONG_MAX):
        d = _LONG_MAX
    out.append(_NUM)
    put_number(out, d)


def _digits_end(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _DIGITS:
        i += 1
    return i


def _modifiers(s: str, i: int, out: bytearray) -> bool:
    """Parse the stability suffix ``s[i:]`` to the end, appending its elements to ``out``.

    The grammar is ``[._-]? (WORD NUMS)? ([.-]? dev)?`` with NUMS ``([.-]? digits)*``;
    returns False when ``s[i:]`` is not of that shape (``out`` is then garbage).
    """
    n = len(s)
    if i < n and s[i] in "._-":
        i += 1
    j = i
    while j < n and s[j] in _LETTERS:
        j += 1
    word = s[i:j].lower()
    if not word:
        # No word: the end, or a separated "dev" ("1.0.-dev", "1.0_-dev").
        if i == n:
            return True
        if s[i] in ".-" and s[i + 1 :].lower() == "dev":
            out.append(_DEV)
            return True
        return False
    if word == "dev":
        if j != n:
            return False
        out.append(_DEV)
        return True
    dev_glued = False
    if word not in _STABILITY:
        # A word glued to dev: "bdev", "RC1dev" is handled below, this is "betadev".
        if not (word.endswith("dev") and word[:-3] in _STABILITY and j == n):
            return False
        word = word[:-3]
        dev_glued = True
    if word == "stable" and s[i : i + 6] == "stable":
        # Composer returns the bare version for a lower-case "stable", whatever follows
        # (the rest must still parse).
        mark = len(out)
        ok = dev_glued or _nums_and_dev(s, j, out)
        del out[mark:]
        return ok
    out.append(_STABILITY[word])
    if dev_glued:
        out.append(_DEV)
        return True
    return _nums_and_dev(s, j, out)


def _nums_and_dev(s: str, i: int, out: bytearray) -> bool:
    """The numbers after a stability word, then an optional ``[.-]?dev``, to the end."""
    n = len(s)
    while i < n:
        if s[i] in _DIGITS:
            j = _digits_end(s, i)
        elif s[i] in ".-" and i + 1 < n and s[i + 1] in _DIGITS:
            i += 1
            j = _digits_end(s, i)
        else:
            break
        _put_num(out, s[i:j])
        i = j
    if i == n:
        return True
    if s[i] in ".-":
        i += 1
    if s[i:].lower() == "dev":
        out.append(_DEV)
        return True
    return False


def _classical(s: str, p: int, out: bytearray) -> bool:
    """``N(.N){0,3}`` (first N of 1 to 5 digits) padded to four numbers, then modifiers."""
    n = len(s)
    j = _digits_end(s, p)
    if j - p > 5:
        return False
    _put_num(out, s[p:j])
    parts = 1
    i = j
    while parts < 4 and i + 1 < n and s[i] == "." and s[i + 1] in _DIGITS:
        j = _digits_end(s, i + 1)
        _put_num(out, s[i + 1 : j])
        parts += 1
        i = j
    for _ in range(parts, 4):
        _put_num(out, "0")
    return _modifiers(s, i, out)


def _date(s: str, p: int, out: bytearray) -> bool:
    """A date version: digit runs split by single ``.``/``:``/``-``, then modifiers.

    The runs must fit ``\\d{4}([.:-]?\\d{2}){1,6}([.:-]?\\d{1,3})?``: 6 to 19 digits in all,
    and every separator after an even count of digits between 4 and 16.
    """
    n = len(s)
    runs: list[str] = []
    digits = 0
    i = p
    while True:
        j = _digits_end(s, i)
        if j == i:
            return False
        runs.append(s[i:j])
        digits += j - i
        if j + 1 < n and s[j] in ".:-" and s[j + 1] in _DIGITS:
            if digits % 2 or not 4 <= digits <= 16:
                return False
            i = j + 1
            continue
        i = j
        break
    if not 6 <= digits <= 19:
        return False
    for r in runs:
        _put_num(out, r)
    return _modifiers(s, i, out)


def _branch(s: str, p: int, out: bytearray) -> bool:
    """A numeric branch alias ``N(.N|.x){0,3}[.-]?dev``: x and missing parts are 9999999."""
    n = len(s)
    if n - p < 4 or s[n - 3 :].lower() != "dev":
        return False
    end = n - 3
    if s[end - 1] in ".-":
        end -= 1
    j = _digits_end(s, p)
    if j == p:
        return False
    _put_num(out, s[p:j])
    parts = 1
    i = j
    while i < end and parts < 4:
        if s[i] != "." or i + 1 >= end:
            return False
        if s[i + 1] in "xX*":
            _put_num(out, _BRANCH_X)
            i += 2
        else:
            j = _digits_end(s, i + 1)
            if j == i + 1:
                return False
            _put_num(out, s[i + 1 : j])
            i = j
        parts += 1
    if i != end:
        return False
    for _ in range(parts, 4):
        _put_num(out, _BRANCH_X)
    out.append(_DEV)
    return True


def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (memcmp order is Composer's order).

    Raises ``InvalidVersion`` when ``v`` is not a Composer version (see the module docstring).
    """
    if not v.isascii():
        raise _invalid(v, E_NONASCII)
    s = v.strip(_TRIM)
    if not s:
        raise _invalid(v, E_EMPTY)
    if any(c <= " " or c == "\x7f" for c in s):
        raise _invalid(v, E_SPACE)
    if "@" in s:
        raise _invalid(v, E_FLAG)
    if s[:4].lower() == "dev-" or s in ("master", "trunk", "default"):
        raise _invalid(v, E_BRANCH)
    head, plus, build = s.partition("+")
    if plus and not (head and build):
        raise _invalid(v, E_BUILD)
    s = head
    p = 1 if s[0] in "vV" else 0
    if p >= len(s) or s[p] not in _DIGITS:
        raise _invalid(v, E_NODIGIT)
    # Composer's three readings, in its order: the first that parses wins.
    for reading in (_classical, _date, _branch):
        out = bytearray()
        if reading(s, p, out):
            out.append(_END)
            return bytes(out)
    raise _invalid(v, E_FORM)


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a Composer version.
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
