"""Alpine / Wolfi / Chainguard package versions, as apk-tools 3 orders them (pure Python).

The grammar is apk-tools 3's ``digits{.digits}[letter]{_suffix[digits]}[~hex][-rdigits]``
plus one form it has rejected since 2.12 (its ``version.data`` lists ``0.1a1`` as invalid)
but Alpine's own data still uses: digits right after the letter, ``6.6.2p1-r0``. apk-tools
up to 2.10 (Alpine 3.12 and older) accepted that form and read the digits as one more
number of the version; packages were published under such versions (OpenSMTPD's
``6.6.2p1-r0`` in Alpine 3.11, whose secdb names it as the fix of CVE-2020-7247), so
images still carry them and advisories bound ranges with them. Here the digits are that
number again, compared numerically, as apk-tools 2.10 did and as osv-scalibr's alpine
vectors have it (``6.6.2p1 < 6.6.2p2``, ``6.6.2p1 > 6.6.2_p1``).

The suffixes are ``alpha``, ``beta``, ``pre`` and ``rc`` (pre-releases, older than the
plain version) and ``cvs``, ``svn``, ``git``, ``hg`` and ``p`` (newer). Anything else, and
an empty string, is invalid and raises ``InvalidVersion``. apk-tools would still order such
strings by how far they parse, but for the misspellings that occur in real data
(``4.8.0.-r1``, ``2.7.16-33``, ``0.8.21.r2``) that order puts a fix on the wrong side of the
very versions it was written for (apk-tools 3 reads ``4.8.0.-r1`` as older than ``4.8.0``),
so a scanner must not act on it: the advisory loaders list such versions as not indexed.

Comparison walks both versions token by token (the semantics of apk-tools 3's
``apk_version_compare``, not copied code):

* Two tokens of the same kind compare by value. The first number, the number after the
  letter and suffix and revision numbers compare as unsigned 64-bit integers: apk parses
  them into a ``uint64_t`` without an overflow check, so a number of 2**64 or more wraps,
  and this module does the same. A number after a dot compares numerically too, unless
  either side starts with ``0``: then both compare as strings (Gentoo's rule, so
  ``1.05 < 1.1`` and ``1.0 < 1.00``). Letters compare by character, suffixes by the list
  above, ``~hash`` as strings.
* When the kinds differ, the version whose next token is a pre-release suffix is older;
  otherwise the one that goes on with an earlier part of the grammar is newer (``1.0.1 >
  1.0a > 1.0_p1 > 1.0~ab > 1.0-r1 > 1.0 > 1.0_rc1``, and after a letter ``1.0a1 > 1.0a_p1
  > 1.0a``: the number after the letter is the earliest thing that can follow it, as in
  apk-tools 2.10). So ``1.0 < 1.0-r0``: an explicit revision is never equal to none, which
  matters when secdb says ``1.0-r0`` and an image has ``1.0``.

``key`` encodes the same walk as bytes, one token after another, so the key is lossless
(``AUTHORITATIVE``): each token is a kind byte chosen so that bytes order the way the
walk decides between differing kinds, followed by a self-delimiting value:

======  =======================================  ===========================================
byte    token                                    value bytes
======  =======================================  ===========================================
(none)  first number                             number
01-04   ``_alpha`` ``_beta`` ``_pre`` ``_rc``     none (the kind byte is the suffix)
05      end of the version                       none
06      ``-r`` revision                          number
07      ``~`` hash                               the hex characters, then 00
08      suffix number                            number
09-0D   ``_cvs`` ``_svn`` ``_git`` ``_hg`` ``_p`` none
0E      letter                                   the letter
0F      ``.`` number                             00, the digits, 00 when it starts with 0;
                                                 else 01 then number
10      number after the letter                  number
======  =======================================  ===========================================

"number" is one length byte (0 to 8) then the value's big-endian bytes without leading
zero bytes, so longer means larger. Every value is prefix-free and equal exactly when the
walk calls the tokens equal, so the first byte where two keys differ is where the walk
decides, and the key ends with 05: a version ``a`` matches apk's fuzzy ``~ b`` exactly when
``key(a)`` starts with ``key(b)`` minus that last byte. (0E and 0F do meet, as in ``1.0a``
against ``1.0.1``, where 0F > 0E makes ``1.0.1`` the newer. 10 never meets either: the
number after a letter follows only that letter, which neither a letter nor a ``.`` number
can follow, so 10 is only ever compared with 01-0D, all of which it must exceed.)
"""

from __future__ import annotations

from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The key orders exactly as ``compare`` does (see the module docstring for the encoding).
AUTHORITATIVE = True

_SCHEME = "apk"
_MASK64 = (1 << 64) - 1

# Token kinds, in grammar order. When two versions differ in kind at the same position,
# the later kind is the older version (except a pre-release suffix, older still).
# _LETTER_NO is the apk-tools 2.10 number after the letter (see the module docstring).
_INITIAL, _DIGIT, _LETTER, _LETTER_NO, _SUFFIX, _SUFFIX_NO, _HASH, _REVISION, _END = range(9)

# Suffix name -> rank; ranks below _SUFFIX_NONE are pre-releases. The rank doubles as the
# key's kind byte for the suffix (01-04 pre, 09-0D post), hence the gap.
_SUFFIX_NONE = 5
_SUFFIXES = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 9,
    "svn": 10,
    "git": 11,
    "hg": 12,
    "p": 13,
}

# Key kind bytes of the other tokens (see the table in the module docstring).
_K_END = 0x05
_K_REVISION = 0x06
_K_HASH = 0x07
_K_SUFFIX_NO = 0x08
_K_LETTER = 0x0E
_K_DIGIT = 0x0F
_K_LETTER_NO = 0x10

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")

# A token: (kind, value). The value is an int for numbers (already reduced mod 2**64), the
# suffix rank for suffixes, and the raw text for letters, hashes and dotted numbers (whose
# comparison depends on a leading zero).
_Token = tuple[int, int | str]


def _invalid(v: str, reason: str, at: int) -> InvalidVersion:
    # The offset is in characters; the compiled module reports the same offsets for the
    # (ASCII-only) prefixes that can be valid before an error.
    return InvalidVersion(_SCHEME, v, f"{reason} at offset {at}")


def _u64(digits: str) -> int:
    """The value of an ASCII digit run modulo 2**64, as apk's ``uint64_t`` parse wraps it.

    Read in chunks: ``int()`` refuses strings over 4,300 digits, and a version string has
    no such limit.
    """
    n = 0
    for i in range(0, len(digits), 18):
        chunk = digits[i : i + 18]
        n = (n * 10 ** len(chunk) + int(chunk)) & _MASK64
    return n


def _digits_end(v: str, i: int) -> int:
    n = len(v)
    while i < n and v[i] in _DIGITS:
        i += 1
    return i


def _tokens(v: str) -> list[_Token]:
    """Split ``v`` into tokens, or raise ``InvalidVersion`` naming the first offending part."""
    n = len(v)
    j = _digits_end(v, 0)
    if j == 0:
        raise _invalid(v, "a version must start with a digit", 0)
    toks: list[_Token] = [(_INITIAL, _u64(v[:j]))]
    kind = _INITIAL
    i = j
    while i < n:
        c = v[i]
        if c == ".":
            if kind > _DIGIT:
                raise _invalid(v, "'.' may only follow a number of the version proper", i)
            j = _digits_end(v, i + 1)
            if j == i + 1:
                raise _invalid(v, "'.' must be followed by digits", i)
            kind = _DIGIT
            toks.append((kind, v[i + 1 : j]))
        elif c in _LOWER:
            if kind > _DIGIT:
                raise _invalid(v, f"letter {c!r} may only follow a number of the version", i)
            j = i + 1
            kind = _LETTER
            toks.append((kind, c))
        elif c == "_":
            if kind > _SUFFIX_NO:
                raise _invalid(v, "'_' suffix after a '~' hash or '-r' revision", i)
            j = i + 1
            while j < n and v[j] in _LOWER:
                j += 1
            rank = _SUFFIXES.get(v[i + 1 : j])
            if rank is None:
                raise _invalid(
                    v,
                    f"unknown suffix {v[i + 1 : j]!r} (alpha, beta, pre, rc, cvs, svn, git, hg, p)",
                    i,
                )
            kind = _SUFFIX
            toks.append((kind, rank))
            if j < n and v[j] in _DIGITS:
                i, j = j, _digits_end(v, j)
                kind = _SUFFIX_NO
                toks.append((kind, _u64(v[i:j])))
        elif c == "~":
            if kind >= _HASH:
                raise _invalid(v, "'~' hash after another hash or a '-r' revision", i)
            j = i + 1
            while j < n and v[j] in _HEX:
                j += 1
            if j == i + 1:
                raise _invalid(v, "'~' must be followed by lowercase hex digits", i)
            kind = _HASH
            toks.append((kind, v[i + 1 : j]))
        elif c == "-":
            if kind >= _REVISION:
                raise _invalid(v, "a second '-r' revision", i)
            if v[i + 1 : i + 2] != "r":
                raise _invalid(v, "'-' may only start an '-rN' revision", i)
            j = _digits_end(v, i + 2)
            if j == i + 2:
                raise _invalid(v, "'-r' must be followed by digits", i)
            kind = _REVISION
            toks.append((kind, _u64(v[i + 2 : j])))
        elif c in _DIGITS:
            # Every number is read to its end, so a digit lands here only after a letter:
            # the number apk-tools 2.10 read there (6.6.2p1).
            j = _digits_end(v, i)
            kind = _LETTER_NO
            toks.append((kind, _u64(v[i:j])))
        else:
            raise _invalid(v, f"unexpected character {c!r}", i)
        i = j
    return toks


def _cmp_token(kind: int, a: int | str, b: int | str) -> int:
    # Same kind on both sides. A dotted number with a leading zero compares as a string
    # against anything; plain strings (letters, hashes) compare by code point, which is
    # apk's memcmp order for these ASCII characters.
    if kind == _DIGIT:
        assert isinstance(a, str) and isinstance(b, str)
        if a[0] == "0" or b[0] == "0":
            return (a > b) - (a < b)
        na, nb = _u64(a), _u64(b)
        return (na > nb) - (na < nb)
    return (a > b) - (a < b)  # type: ignore[operator]


def _decide_kinds(ka: int, va: int | str, kb: int, vb: int | str) -> int:
    # The walk reached tokens of different kinds: a pre-release suffix loses, otherwise the
    # version that continues with the earlier part of the grammar is the newer one.
    if ka == _SUFFIX and isinstance(va, int) and va < _SUFFIX_NONE:
        return -1
    if kb == _SUFFIX and isinstance(vb, int) and vb < _SUFFIX_NONE:
        return 1
    return -1 if ka > kb else 1


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not an apk version, even when the
    other parts already decide the order.
    """
    ta = _tokens(a)
    tb = _tokens(b)
    for i in range(min(len(ta), len(tb))):
        ka, va = ta[i]
        kb, vb = tb[i]
        if ka != kb:
            return _decide_kinds(ka, va, kb, vb)
        r = _cmp_token(ka, va, vb)
        if r:
            return r
    if len(ta) == len(tb):
        return 0
    # One version ended: its end token is the latest kind of all.
    if len(ta) < len(tb):
        kb, vb = tb[len(ta)]
        return _decide_kinds(_END, 0, kb, vb)
    ka, va = ta[len(tb)]
    return _decide_kinds(ka, va, _END, 0)


# The key's kind byte of each token whose value is a plain number (after the first).
_NUMBER_KIND_BYTE = {_LETTER_NO: _K_LETTER_NO, _SUFFIX_NO: _K_SUFFIX_NO, _REVISION: _K_REVISION}


def _put_u64(out: bytearray, n: int) -> None:
    # Length byte, then minimal big-endian bytes: a longer value is a larger one.
    size = (n.bit_length() + 7) // 8
    out.append(size)
    out += n.to_bytes(size, "big")


def key(v: str, /) -> bytes:
    """Return the lossless order-preserving byte key of ``v`` (see the module docstring).

    Raises ``InvalidVersion`` when ``v`` is not an apk version.
    """
    out = bytearray()
    for kind, val in _tokens(v):
        if kind == _INITIAL:
            assert isinstance(val, int)
            _put_u64(out, val)
        elif kind == _DIGIT:
            assert isinstance(val, str)
            out.append(_K_DIGIT)
            if val[0] == "0":
                out.append(0x00)
                out += val.encode("ascii")
                out.append(0x00)
            else:
                out.append(0x01)
                _put_u64(out, _u64(val))
        elif kind == _LETTER:
            assert isinstance(val, str)
            out.append(_K_LETTER)
            out.append(ord(val))
        elif kind == _SUFFIX:
            assert isinstance(val, int)
            out.append(val)
        elif kind == _HASH:
            assert isinstance(val, str)
            out.append(_K_HASH)
            out += val.encode("ascii")
            out.append(0x00)
        else:
            assert isinstance(val, int)
            out.append(_NUMBER_KIND_BYTE[kind])
            _put_u64(out, val)
    out.append(_K_END)
    return bytes(out)


def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; raises ``ValueError`` on unequal lengths."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
