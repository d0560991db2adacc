"""RubyGems versions (``Gem::Version``): the pure-Python reference.

Ordering is ``Gem::Version#<=>`` (RubyGems 3.3, the ``rubygems`` of Debian's ``ruby``):

* Every ``-`` first becomes ``.pre.`` (``1.0-rc1`` reads as ``1.0.pre.rc1``), then the
  string splits into segments, the maximal runs of ASCII digits or of ASCII letters
  (``1.0a1`` is ``1 . 0 . a . 1``); dots only separate.
* Digit runs are integers (any size, leading zeros ignored); letter runs stay strings
  and compare byte-wise, so case-sensitively (``1.0.A < 1.0.a``).
* Canonical segments: the segments before the first letter segment lose their trailing
  zeros, and so do the segments from it on (``1.0.a == 1.a``, ``1.a.0 == 1.a``).
* The canonical lists compare position by position, a missing segment reading as 0; a
  letter segment sorts below any number, 0 included, so ``1.a < 1 == 1.0`` and
  ``1.a.0.b < 1.a < 1.a.0.1``. A version is a pre-release when it holds any letter.

Key (``AUTHORITATIVE`` is True): the canonical list is a sequence of non-zero items, each
after ``k`` zeros, and an end standing for zeros forever. An item decides against anything
that has more zeros before its next item: a letter item loses, a number wins. So items
are tagged ``0x01`` letters (then ``k`` ascending, the bytes, ``0x00``), ``0x02`` end,
``0x03`` number (then ``k`` descending, ``put_number``), where ``k`` is one byte below 255,
else ``0xFF`` plus four big-endian bytes (complemented for numbers). Two keys first differ
exactly where the two segment lists first differ, so memcmp order is ``<=>`` order.

Validity is ``Gem::Version::ANCHORED_VERSION_PATTERN``::

    \\A\\s*([0-9]+(?>\\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?)?\\s*\\z

with two decisions of regsweep's:

* A blank string is refused. RubyGems reads it as ``"0"``, but a blank version in an
  advisory is missing data, and reading a blank "fixed" version as 0 would clear every
  installed version of the package.
* The first segment may carry letters after its leading digit (``1beta``, ``2a.0``).
  RubyGems' pattern refuses those, yet its ``<=>`` orders them well (``1beta`` reads as
  ``1.beta``) and the OSV test vectors compare such strings (``1 > 1beta``). RubyGems
  will not build a gem with such a version, so no published gem has one: accepting the
  shape only keeps other tools' hand-written data readable.

Whitespace is Ruby's ``\\s`` (ASCII space, ``\\t\\n\\v\\f\\r``), stripped at both ends only;
anything non-ASCII is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import cmp_bytes, put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The byte key orders exactly as ``compare`` (``<=>`` is a lexicographic segment order).
AUTHORITATIVE = True

_SCHEME = "gem"

# Item tags: a letter item < the end < a number item, as ``<=>`` orders them against 0.
_ALPHA = 0x01
_END = 0x02
_NUM = 0x03

# The InvalidVersion reasons, public so that tests can name them; the compiled module
# raises the same texts word for word (the tests compare the two).
E_EMPTY = "empty version (RubyGems reads a blank string as 0; regsweep refuses it)"
E_NONASCII = "contains a non-ASCII character"
E_NODIGIT = "does not start with a digit"
E_EMPTYSEG = "empty segment: a '.' must be followed by letters or digits"
E_BADCHAR = "unexpected character: segments hold only ASCII letters and digits"
E_EMPTYPRE = "empty identifier in the part after '-'"
E_BADPRE = "the part after '-' may hold only ASCII letters, digits, '-' and '.'"

# Ruby's \s, not Python's str.strip() default (which adds \x1c-\x1f and Unicode spaces).
_WS = " \t\n\v\f\r"
_DIGITS = frozenset("0123456789")
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_PRE_CHARS = _ALNUM | {"-"}


def _invalid(v: str, reason: str) -> InvalidVersion:
    return InvalidVersion(_SCHEME, v, reason)


def _validate(v: str) -> str:
    """Check ``v`` against the version pattern; return it with the whitespace stripped."""
    if not v.isascii():
        raise _invalid(v, E_NONASCII)
    s = v.strip(_WS)
    if not s:
        raise _invalid(v, E_EMPTY)
    if s[0] not in _DIGITS:
        raise _invalid(v, E_NODIGIT)
    n = len(s)
    i = 0
    # The dotted segments before any '-'.
    while True:
        j = i
        while j < n and s[j] in _ALNUM:
            j += 1
        if j == i:
            if i < n and s[i] != "." and s[i] != "-":
                raise _invalid(v, E_BADCHAR)
            raise _invalid(v, E_EMPTYSEG)
        i = j
        if i < n and s[i] == ".":
            i += 1
            continue
        break
    if i == n:
        return s
    if s[i] != "-":
        raise _invalid(v, E_BADCHAR)
    # The part after the first '-': dot-separated identifiers that may hold '-' too.
    i += 1
    while True:
        j = i
        while j < n and s[j] in _PRE_CHARS:
            j += 1
        if j == i:
            if i < n and s[i] != ".":
                raise _invalid(v, E_BADPRE)
            raise _invalid(v, E_EMPTYPRE)
        i = j
        if i == n:
            return s
        if s[i] != ".":
            raise _invalid(v, E_BADPRE)
        i += 1


def _put_k(out: bytearray, k: int, invert: bool) -> None:
    # The count of zeros before an item: ascending for letters, descending for numbers.
    enc = bytes((k,)) if k < 0xFF else b"\xff" + k.to_bytes(4, "big")
    out += bytes(0xFF - c for c in enc) if invert else enc


def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (memcmp order is ``<=>`` order).

    Raises ``InvalidVersion`` when ``v`` is not a RubyGems version.
    """
    s = _validate(v)
    out = bytearray()
    zeros = 0  # zero segments seen since the last item, not yet known to be trailing
    in_letters = False  # past the first letter segment (the "string segments" half)
    n = len(s)
    i = 0
    while i < n:
        c = s[i]
        if c == "-":
            # gsub("-", ".pre."): the dash is a segment "pre" between separators.
            seg, j, letters = "pre", i + 1, True
        elif c == ".":
            i += 1
            continue
        else:
            letters = c not in _DIGITS
            j = i + 1
            while j < n and s[j] != "." and s[j] != "-" and (s[j] not in _DIGITS) == letters:
                j += 1
            seg = s[i:j]
        i = j
        if letters:
            if not in_letters:
                # Zeros right before the first letter segment are the numeric half's
                # trailing zeros, which canonical_segments drops.
                zeros = 0
                in_letters = True
            out.append(_ALPHA)
            _put_k(out, zeros, invert=False)
            out += seg.encode("ascii")
            out.append(0)
            zeros = 0
        elif not seg.strip("0"):
            zeros += 1
        else:
            out.append(_NUM)
            _put_k(out, zeros, invert=True)
            put_number(out, seg)
            zeros = 0
    # Zeros still pending are trailing zeros: dropped, the end stands for them.
    out.append(_END)
    return bytes(out)


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a RubyGems version.
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
