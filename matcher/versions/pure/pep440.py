"""PEP 440 (PyPI) versions, with the pre-PEP 440 "legacy" fallback: the pure-Python reference.

Valid PEP 440 versions order exactly as ``packaging.version.Version`` does: epoch, release
(trailing zeros ignored, so ``1.0 == 1.0.0``), pre-release (``a``/``b``/``rc`` and the
spellings ``alpha``, ``beta``, ``c``, ``pre``, ``preview``), post-release (``.post1``, ``-1``,
``rev``, ``r``), dev-release, then the local segment (``+ubuntu.1``; numeric parts above
alphanumeric ones). Letters are case-insensitive, a leading ``v`` and surrounding whitespace
are ignored.

Strings that are not PEP 440 (``0.3m1``, ``2.0.1rc2-git``, ``2013-09-11T19-27-10`` all occur in
real PyPI advisories) are ordered as ``packaging`` 21.3's ``LegacyVersion`` ordered them (what
pip-audit and osv used): before every PEP 440 version (an epoch of -1), then by the setuptools
part list of ``_legacy_cmpkey``, quirks included (numbers are zero-padded to eight digits and
compared as text, so ``123456789`` sorts below ``99999999``).

Validity, decided here because ``LegacyVersion`` took any string at all: a string is a
version when, once the Unicode whitespace packaging ignores is stripped (``str.strip``, the
same set as its ``\\s``), it is PEP 440; failing that, when it is printable ASCII without
whitespace (the legacy fallback, which 21.3 applied to the raw string, surrounding spaces
included). So ``InvalidVersion`` is raised for

* empty or whitespace-only strings;
* non-PEP 440 strings holding whitespace or control characters (``1.0 beta``, ``1.0\\x00``);
* non-PEP 440 strings holding any non-ASCII character (``١٢٣``, ``1.0+İ``).

Every string accepted for the legacy fallback therefore orders exactly as 21.3 ordered it.

Numbers of any size are accepted and compared numerically (``packaging`` itself raises
``ValueError`` past Python's 4300-digit ``int`` conversion limit).

Key layout (memcmp order == version order, so ``AUTHORITATIVE`` is True)::

    legacy : 00 {part 00}* 00
    PEP 440: 01 num(epoch) {01 num(n)}* 00 pre post dev {local-seg}* 00
      pre   = 00 (dev-only) | 01 num | 02 num | 03 num (a, b, rc) | 04 (final)
      post  = 00 (none) | 01 num
      dev   = 00 num | 01 (none)
      local = 01 text 00 (alphanumeric) | 02 num (numeric)

``num`` is the shared length-prefixed number encoding (``put_number``); the release has its
trailing zeros cut before encoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import cmp_bytes, put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: Keys are lossless: key order is exactly ``compare`` order, equal keys exactly equal versions.
AUTHORITATIVE = True

_SCHEME = "pep440"
_SEPS = "._-"
_DIGITS = "0123456789"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# Tried in this order, first match wins: packaging's regex alternation is inside a possessive
# group, so ``alpha`` must be tried before ``a`` and ``preview`` before ``pre``.
_PRE_WORDS = (
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("preview", 3),
    ("pre", 3),
    ("c", 3),
    ("rc", 3),
)
_POST_WORDS = ("post", "rev", "r")

# The reasons are shared word for word with the compiled module (the tests compare them).
_EMPTY = "empty version string"
_CONTROL = (
    "not a PEP 440 version, and whitespace or control characters rule out the legacy ordering"
)
_NON_ASCII = "not a PEP 440 version, and non-ASCII characters rule out the legacy ordering"


def _span(s: str, i: int, n: int, chars: str) -> int:
    """Return the end of the run of ``chars`` starting at ``i``."""
    while i < n and s[i] in chars:
        i += 1
    return i


def _pep440_key(t: str) -> bytes | None:
    """Key of ``t`` (ASCII, whitespace already stripped), or None if it is not PEP 440.

    A deterministic scan equivalent to packaging's ``VERSION_PATTERN``, whose quantifiers are
    all possessive: an optional separator, once taken, is never given back.
    """
    s = t.lower()
    n = len(s)
    i = 1 if s.startswith("v") else 0
    out = bytearray(b"\x01")

    # Epoch: digits then "!", else no epoch and the digits are the release.
    j = _span(s, i, n, _DIGITS)
    if i < j < n and s[j] == "!":
        put_number(out, s[i:j])
        i = j + 1
    else:
        put_number(out, "")

    # Release: 1.2.3, trailing zeros cut (``mark`` is the key length after the last non-zero).
    j = _span(s, i, n, _DIGITS)
    if j == i:
        return None
    mark = len(out)
    while True:
        out.append(1)
        put_number(out, s[i:j])
        if s[i:j].strip("0"):
            mark = len(out)
        i = j
        if i + 1 < n and s[i] == "." and s[i + 1] in _DIGITS:
            j = _span(s, i + 1, n, _DIGITS)
            i += 1
            continue
        break
    del out[mark:]
    out.append(0)

    # Pre-release: [sep] word [sep] [digits].
    pre_rank = 0
    pre_n = ""
    p = i + 1 if i < n and s[i] in _SEPS else i
    for word, rank in _PRE_WORDS:
        if s.startswith(word, p):
            p += len(word)
            if p < n and s[p] in _SEPS:
                p += 1
            i = _span(s, p, n, _DIGITS)
            pre_rank, pre_n = rank, s[p:i]
            break

    # Post-release: "-N" (implicit), or [sep] word [sep] [digits].
    post: str | None = None
    if i + 1 < n and s[i] == "-" and s[i + 1] in _DIGITS:
        j = _span(s, i + 1, n, _DIGITS)
        post, i = s[i + 1 : j], j
    else:
        p = i + 1 if i < n and s[i] in _SEPS else i
        for word in _POST_WORDS:
            if s.startswith(word, p):
                p += len(word)
                if p < n and s[p] in _SEPS:
                    p += 1
                i = _span(s, p, n, _DIGITS)
                post = s[p:i]
                break

    # Dev-release: [sep] "dev" [sep] [digits].
    dev: str | None = None
    p = i + 1 if i < n and s[i] in _SEPS else i
    if s.startswith("dev", p):
        p += 3
        if p < n and s[p] in _SEPS:
            p += 1
        i = _span(s, p, n, _DIGITS)
        dev = s[p:i]

    # Suffix: a version with only a dev part sorts before its alphas (packaging's _cmpkey).
    if pre_rank:
        out.append(pre_rank)
        put_number(out, pre_n)
    else:
        out.append(0 if post is None and dev is not None else 4)
    if post is None:
        out.append(0)
    else:
        out.append(1)
        put_number(out, post)
    if dev is None:
        out.append(1)
    else:
        out.append(0)
        put_number(out, dev)

    # Local: "+" alnum {sep alnum}; all-digit parts are numbers and sort above text parts.
    if i < n and s[i] == "+":
        i += 1
        j = _span(s, i, n, _ALNUM)
        if j == i:
            return None
        while True:
            part = s[i:j]
            if part.isdigit():
                out.append(2)
                put_number(out, part)
            else:
                out.append(1)
                out += part.encode("ascii")
                out.append(0)
            i = j
            if i + 1 < n and s[i] in _SEPS and s[i + 1] in _ALNUM:
                j = _span(s, i + 1, n, _ALNUM)
                i += 1
                continue
            break
    out.append(0)
    return bytes(out) if i == n else None


# packaging 21.3's _legacy_version_component_re; ``\d`` there is [0-9] on the ASCII strings
# the fallback accepts.
_LEGACY_COMPONENT = re.compile(r"([0-9]+|[a-z]+|\.|-)")
_LEGACY_REPLACE = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}


def _legacy_key(v: str) -> bytes:
    """Key of ``v`` under packaging 21.3's ``_legacy_cmpkey`` (a port of that function)."""
    parts: list[str] = []
    for raw in [*_LEGACY_COMPONENT.split(v.lower()), "final"]:
        part = _LEGACY_REPLACE.get(raw, raw)
        if not part or part == ".":
            continue
        # Numbers are padded (never truncated) and then compared as text.
        part = part.zfill(8) if part[0] in _DIGITS else "*" + part
        if part.startswith("*"):
            # Drop a "-" before a pre-release tag, then trailing zeros of the number series.
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    # Parts are printable ASCII, so a 00 terminator sorts a part before its extensions, and
    # the final 00 sorts a part list before its extensions.
    return b"\x00" + b"".join(p.encode("ascii") + b"\x00" for p in parts) + b"\x00"


def _is_legacy_char(c: str) -> bool:
    return "!" <= c <= "~"


def key(v: str) -> bytes:
    """Return the order-preserving byte key of ``v``; raise ``InvalidVersion`` if it has none."""
    if not isinstance(v, str):
        raise TypeError(f"a pep440 version is a str, not {type(v).__name__}")
    # str.strip() removes exactly what packaging's ``\\s*`` accepts (Py_UNICODE_ISSPACE).
    t = v.strip()
    if not t:
        raise InvalidVersion(_SCHEME, v, _EMPTY)
    if t.isascii():
        k = _pep440_key(t)
        if k is not None:
            return k
    if not v.isascii():
        raise InvalidVersion(_SCHEME, v, _NON_ASCII)
    if not all(map(_is_legacy_char, v)):
        raise InvalidVersion(_SCHEME, v, _CONTROL)
    return _legacy_key(v)


def compare(a: str, b: str) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
    return cmp_bytes(key(a), key(b))


def compare_many(a: Sequence[str], b: Sequence[str]) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i (both sequences the same length)."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str]) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
