"""Maven versions (GHSA/OSV ``Maven`` ranges, Maven Central): the pure-Python reference.

**Which order.** The order is that of ``org.apache.maven.artifact.versioning.ComparableVersion``
as maven-artifact 3.8.6 has it, not as Maven 3.9 has it, because OSV's Maven ranges are
written and evaluated in that order: OSV's own tooling (osv-scanner's semantic package, now
osv-scalibr's, and the comparison fixtures its generator sorts with maven-artifact 3.8.6)
orders versions as 3.8.6 did. A range means what the tools it was written for say it
means, so a finding here is a finding there. Between 3.8.6 and Maven 3.8.7/3.9 the class
changed, for what this scheme models, by MNG-7644: a qualifier that follows other items of
its list and ends the version or runs into digits (``1.0.0.RC8``, ``1.2.8.sec10``) gets a
sub-list of its own there, as if written after ``-``. Without it, as here::

    1.0.0-RC16 < 1.0.0.RC8-beta   (3.9: >)    1.2.8.sec10 < 1.2.8_noneautotype   (3.9: >)
    1.0.0.RC1  > 1.0.0-RC2        (3.9: <)    0.x > 0-x, 1.x < 1-x, 1.alpha < 1-alpha (3.9: =)

(the last ones are MNG-7644's own "actual" and the 3.8.6 column of MNG-7701). Maven 3.9
and later disagree with this scheme, and with OSV, on such pairs.

The rules, checked against a literal port of the 3.8.6 class and, on every pair where
MNG-7644 makes no difference, against the real class (Debian's maven-artifact 3.8.7):

* The string is lower-cased and cut into *items*: ``.`` ends an item, ``-`` ends an item
  and opens a nested *sub-list* that holds everything after it, and a change between
  digits and non-digits also cuts and opens a sub-list after the cut (``1alpha2`` is
  ``1``, then ``[alpha, [2]]``). An empty item (``1..2``, a leading ``.`` or ``-``) is the
  number 0.
* A digit run is a number (leading zeros ignored, any size); anything else is a
  *qualifier* string. Known qualifiers order ``alpha < beta < milestone < rc = cr <
  snapshot < "" = ga = final = release < sp``; a single ``a``, ``b`` or ``m`` directly
  followed by a digit means alpha, beta, milestone. Unknown qualifiers sort after all
  known ones, among themselves by (lower-cased) string order.
* Each list is *normalised* from the innermost out: trailing "null" items (the number 0,
  the release qualifier ``""``, an empty sub-list) are dropped, also just before a
  sub-list (``1.0-1`` is ``[1, [1]]``).
* Lists compare item by item. A missing item is "null": a number is above null unless
  it is 0, a qualifier is above or below it by its rank against ``""``, a list by its first
  item that is not null-like (MNG-6964, in since 3.8.2). Between kinds: number > sub-list
  > qualifier.

Because a sub-list is always the last item of its list, a normalised version is a chain of
lists and is kept here as one flat token sequence, levels joined by an OPEN token; the
comparison is a single merge walk over two such sequences (``_compare_tokens``).

**This order is not transitive** (a property of Maven itself, not of this port), so no key
can be exact and ``AUTHORITATIVE`` is False. With the real class::

    1.sp.2 < 1-alpha < 1 < 1.sp.2          (qualifier < sub-list, yet sp > null > alpha)
    1 < 1-1 < 1.0.Beta-1 < 1               (number 0 > sub-list, yet 0.Beta < null < [1])
    1-SNAPSHOT < 1 < 1.foo-1 < 1-SNAPSHOT

Such cycles appear as soon as a qualifier is followed by more items in its own list
(``.Beta-1``, ``.sp.2``), which real versions do. A monotone key (``a < b`` implies
``key(a) <= key(b)``, ``a = b`` implies equal keys) must give every member of a cycle the
same key, and the cycles above tie, for every numeric prefix ``P``, the version ``P`` itself
to every ``P-<anything>`` and ``P.<qualifier>…``. So the key is the leading run of numbers
of the top-level list with its trailing zeros dropped (only rare shapes such as ``1.beta.2``
could be split finer, not worth a special case): ``1.0``,
``1.0-SNAPSHOT``, ``1-1`` and ``1.0.0.RELEASE`` all have the key of ``1``, while ``1.0.1``,
``1.1`` and ``2`` get larger keys. Layout: per number, 0x01 and ``put_number``; then 0x00.
An index narrows by key with *closed* bounds and re-checks with ``compare``.

Validity (``InvalidVersion``) is stricter than ComparableVersion, which accepts any string:

* the empty string, or more than 256 characters (Maven 4's ``ComparableVersion`` limit);
* a non-ASCII character (Maven Central versions are ASCII; Java's Unicode lower-casing and
  UTF-16 order are left out rather than half-ported), whitespace or a control character;
* a character that Maven's model validator bans in versions (``\\ / : " < > | ? *``), or an
  unresolved ``${`` property expression;
* no ASCII letter or digit at all (``.``, ``-``, ``_``).

Differences with other implementations (the tests pin this side): Maven 3.8.7 and 3.9
(MNG-7644, above); Maven 4's class (``compat/maven-artifact``) also adds "combination" items
(``1-a-1`` reads as ``1-alpha1``), compares a sub-list with a qualifier by its items, and
puts ``1.0.final-redhat`` below ``1.0-sp1-redhat`` (MNG-7714). osv-scanner's own Go port
follows the POM reference's prose in one place no Maven implements, its hand-written
vector ``1-1 = 1-ga-1``: here, as in maven-artifact 3.8.6, 3.8.7, 3.9.6 and 4,
``1-ga-1 < 1-1``.
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: False: Maven's order has cycles, so the key is only monotone (see the module docstring).
AUTHORITATIVE = False

_SCHEME = "maven"

#: Maven 4 refuses longer strings; it also bounds every loop and the key size here.
MAX_LENGTH = 256

# Token kinds of the flat normalised form.
_INT = 0  # (_INT, 0, digits without leading zeros; "" is zero)
_STR = 1  # (_STR, rank, lower-cased text)
_OPEN = 2  # (_OPEN, 0, ""): the rest of the sequence is a nested sub-list

# Qualifier ranks: the index in Maven's QUALIFIERS list after aliasing; unknown is 7.
_RELEASE_RANK = 5
_UNKNOWN_RANK = 7
_RANKS = {
    "alpha": 0,
    "beta": 1,
    "milestone": 2,
    "rc": 3,
    "cr": 3,
    "snapshot": 4,
    "": 5,
    "ga": 5,
    "final": 5,
    "release": 5,
    "sp": 6,
}
# Only when the letter is directly followed by a digit: "a1" is alpha-1, "a-1" is "a" -1.
_SHORT = {"a": 0, "b": 1, "m": 2}

# Maven's DefaultModelValidator rejects these in a <version> (its ILLEGAL_VERSION_CHARS).
_BANNED = frozenset('\\/:"<>|?*')

# Key tags.
_K_END = 0x00
_K_NUM = 0x01

#: (kind, qualifier rank, text): one item of the flat normalised form.
Token = tuple[int, int, str]

_ZERO: Token = (_INT, 0, "")
_OPEN_TOKEN: Token = (_OPEN, 0, "")


def _invalid(v: str, reason: str) -> InvalidVersion:
    return InvalidVersion(_SCHEME, v, reason)


def _validate(v: str) -> None:
    """Raise InvalidVersion unless ``v`` is a version string this scheme accepts.

    Checks run in a fixed order (emptiness, length, ASCII, then the first offending
    character from the left, then the letter-or-digit rule) so that the compiled module,
    which scans once, reports the same reason for the same string.
    """
    # Exactly str, as the compiled module's typed arguments demand (subclasses included).
    if type(v) is not str:
        raise TypeError(f"maven version must be str, not {type(v).__name__}")
    if not v:
        raise _invalid(v, "empty string")
    if len(v) > MAX_LENGTH:
        raise _invalid(v, f"longer than {MAX_LENGTH} characters")
    if not v.isascii():
        raise _invalid(v, "contains a non-ASCII character")
    alnum = False
    for i, c in enumerate(v):
        if c <= " " or c == "\x7f":
            raise _invalid(v, "contains whitespace or a control character")
        if c in _BANNED:
            raise _invalid(v, f"contains {c!r}, which Maven forbids in a version")
        if c == "$" and v.startswith("{", i + 1):
            raise _invalid(v, "contains an unresolved '${' expression")
        if c.isalnum():
            alnum = True
    if not alnum:
        raise _invalid(v, "has no letter or digit")


def _string_token(text: str, followed_by_digit: bool) -> Token:
    if followed_by_digit and text in _SHORT:
        return (_STR, _SHORT[text], text)
    return (_STR, _RANKS.get(text, _UNKNOWN_RANK), text)


def _int_token(digits: str) -> Token:
    return (_INT, 0, digits.lstrip("0"))


def _is_null(tok: Token) -> bool:
    # What ListItem.normalize drops: the number 0 and the release qualifier "".
    if tok[0] == _INT:
        return tok[2] == ""
    return tok[0] == _STR and tok[1] == _RELEASE_RANK


def _parse(v: str) -> list[Token]:
    """Validate ``v`` and return its normalised flat token sequence.

    The scan follows ``ComparableVersion.parseVersion`` of maven-artifact 3.8.6 step by
    step; the sub-lists it pushes (at ``-`` and at each change between digits and other
    characters) become OPEN tokens. Not MNG-7644's extra sub-list before a qualifier that
    follows an item of the same list (see the module docstring).
    """
    _validate(v)
    s = v.lower()
    raw: list[Token] = []
    start = 0
    is_digit = False
    for i, c in enumerate(s):
        if c == "." or c == "-":
            if i == start:
                raw.append(_ZERO)
            elif is_digit:
                raw.append(_int_token(s[start:i]))
            else:
                raw.append(_string_token(s[start:i], False))
            start = i + 1
            if c == "-":
                raw.append(_OPEN_TOKEN)
        elif "0" <= c <= "9":
            if not is_digit and i > start:
                raw.append(_string_token(s[start:i], True))
                raw.append(_OPEN_TOKEN)
                start = i
            is_digit = True
        else:
            if is_digit and i > start:
                raw.append(_int_token(s[start:i]))
                raw.append(_OPEN_TOKEN)
                start = i
            is_digit = False
    if len(s) > start:
        raw.append(_int_token(s[start:]) if is_digit else _string_token(s[start:], False))
    return _normalize(raw)


def _normalize(raw: list[Token]) -> list[Token]:
    """Apply ListItem.normalize to every level, innermost first, in one backward pass.

    Walking backwards, ``trimming`` is true while the tokens seen so far in the current
    level are droppable: trailing nulls go, and an OPEN whose sub-list came out empty goes
    too (an empty list is itself null), trimming carrying on into the parent level. A kept
    OPEN restarts trimming, since ListItem.normalize also drops the nulls just before a
    sub-list (it steps over a non-empty list and stops only at a non-null scalar).
    """
    out: list[Token] = []
    trimming = True
    for tok in reversed(raw):
        if tok[0] == _OPEN:
            # Everything kept so far lies inside this sub-list: none kept means it is empty.
            if out:
                out.append(tok)
            trimming = True
            continue
        if trimming and _is_null(tok):
            continue
        trimming = False
        out.append(tok)
    out.reverse()
    return out


def _null_sign(tok: Token) -> int:
    """``item.compareTo(null)`` for a scalar item: how it orders against a missing item."""
    if tok[0] == _INT:
        return 0 if tok[2] == "" else 1
    rank = tok[1]
    return (rank > _RELEASE_RANK) - (rank < _RELEASE_RANK)


def _rest_sign(toks: list[Token], i: int) -> int:
    # The remaining items against nothing: the first one that is not null-like decides
    # (MNG-6964: a sub-list looks past its first item too).
    for tok in toks[i:]:
        if tok[0] != _OPEN:
            r = _null_sign(tok)
            if r:
                return r
    return 0


def _cmp_scalar(x: Token, y: Token) -> int:
    if x[0] == _INT:
        if y[0] != _INT:
            return 1  # number > qualifier
        dx, dy = x[2], y[2]
        if len(dx) != len(dy):
            return 1 if len(dx) > len(dy) else -1
        return (dx > dy) - (dx < dy)
    if y[0] == _INT:
        return -1
    rx, ry = x[1], y[1]
    if rx != ry:
        return 1 if rx > ry else -1
    if rx != _UNKNOWN_RANK:
        return 0
    tx, ty = x[2], y[2]
    return (tx > ty) - (tx < ty)


def _compare_tokens(x: list[Token], y: list[Token]) -> int:
    """ListItem.compareTo on two flat chains: one merge walk, descending level by level."""
    i = j = 0
    nx, ny = len(x), len(y)
    while True:
        if i == nx:
            return -_rest_sign(y, j) if j < ny else 0
        if j == ny:
            return _rest_sign(x, i)
        kx, ky = x[i][0], y[j][0]
        if kx == _OPEN or ky == _OPEN:
            if kx == ky:
                # Both lists go on in a sub-list, their last item: compare those instead.
                i += 1
                j += 1
                continue
            # sub-list vs scalar: a number beats a sub-list, a sub-list beats a qualifier.
            if kx == _OPEN:
                return -1 if ky == _INT else 1
            return 1 if kx == _INT else -1
        r = _cmp_scalar(x[i], y[j])
        if r:
            return r
        i += 1
        j += 1


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a valid Maven version.
    """
    x = _parse(a)
    y = _parse(b)
    return _compare_tokens(x, y)


def key(v: str, /) -> bytes:
    """Return the monotone byte key of ``v`` (the top-level numeric prefix; see above)."""
    toks = _parse(v)
    out = bytearray()
    keep = 0
    for tok in toks:
        if tok[0] != _INT:
            break
        digits = tok[2]
        out.append(_K_NUM)
        put_number(out, digits)
        if digits:
            keep = len(out)
    # Zeros that end the numeric prefix are dropped: 1.0.alpha.1 sits in the cycle of 1.
    del out[keep:]
    out.append(_K_END)
    return bytes(out)


def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
