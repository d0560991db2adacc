"""RPM versions (RHEL family, Fedora, SUSE, Amazon Linux): the pure-Python reference.

A version string is ``[epoch:]version[-release]``: the epoch is what comes before the
first ``:``, the release what comes after the *last* ``-`` (so a version may itself hold a
``-``, as ``rpm.labelCompare`` callers that split with ``rpartition`` would have it).
Two strings compare by epoch (missing = 0), then version, then release, each with rpm's
``rpmvercmp`` (rpm 4.18+):

* Only ASCII letters and digits form segments, plus the ``~`` and ``^`` marks. Everything
  else (``.``, ``_``, ``+``, a ``-`` inside the version, any non-ASCII character) is a
  separator: it only delimits segments and never orders, so ``1.0`` and ``1_0`` are equal.
* Segments compare left to right: a numeric segment beats an alphabetic one, numbers
  compare numerically (leading zeros ignored, any length), letters by ``strcmp``.
* ``~`` sorts before everything, the end of the string included (``1.0~rc1 < 1.0``);
  ``^`` sorts after the end but before any segment (``1.0 < 1.0^git1 < 1.0.1``).
* The first string to run out of segments is the smaller one.

Viewed as a token sequence ``~ < end < ^ < alpha < numeric`` compared lexicographically,
that is exactly what ``rpmvercmp`` computes, so the byte key encodes the tokens one by one
(``AUTHORITATIVE`` is True): one tag byte per token (``~`` 0x01, end 0x02, ``^`` 0x03,
alpha 0x04 + letters + 0x00, numeric 0x05 + the canonical number of ``_keys.put_number``).
The key is the epoch number, then the version tokens and end, then the release tokens and
end; every part is prefix-free, so memcmp order is (epoch, version, release) order.

A missing release is the empty release, which sorts before any (valid) release
(``1.0 < 1.0-1``).
rpm itself treats a NULL release as a wildcard when it *matches* a dependency
(``Requires: foo = 1.0`` is satisfied by ``foo-1.0-7``); that is a matching-level rule
for the range evaluator, not part of this total order.

Validity (``InvalidVersion``) is stricter than ``rpmvercmp``, which accepts any C string:

* the empty string; a whitespace or control character (U+0000-U+0020, U+007F); a lone
  surrogate (not encodable as UTF-8, so the compiled module could not read it);
* more than one ``:`` (rpmbuild forbids ``:`` in versions and releases, and a second
  one leaves it unclear which part is the epoch);
* an empty epoch (``:1.0``; rpm reads it as 0, but it is a malformed label) or one that
  is not all ASCII digits (``a:1.0``): rpm's own EVR parser (``rpm.ver``) reads that as
  an epoch-less version holding a colon, ``labelCompare`` callers split it as epoch
  ``a``; rejecting it avoids choosing. Some published Red Hat OSV records do carry such
  strings (osv-scalibr follows ``rpm.ver`` for them); here they are skipped records;
* an empty version (``1:``, ``-1``, ``1:-1``): ``rpm.labelCompare`` rejects it too;
* an empty release after a trailing ``-`` (``1.0-``): a truncated EVR, not "no release";
* a release with only separators (``1.0-.``) or whose first segment is ``~``
  (``1.0-~1``): rpm itself is of two minds there. ``rpm.labelCompare`` callers pass a
  missing release as ``""``, so ``1.0 = 1.0-.`` and ``1.0 > 1.0-~1``; ``rpm.ver``
  keeps it NULL, which sorts below every release. For every other release both say
  "missing < present", which is what this module does.

Non-ASCII characters are accepted and, as in rpm, act as separators (so ``1.1.α`` equals
``1.1.β``; rpm's own test suite records that as a known oddity). Separator-only versions
such as ``+`` or ``_`` are valid and equal to each other, as in rpm's tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The byte key orders exactly as ``compare`` (rpmvercmp is a lexicographic token order).
AUTHORITATIVE = True

_SCHEME = "rpm"

# Key tags; the order of the first three is the whole trick: ``~`` < end < ``^``.
_TILDE = 0x01
_END = 0x02
_CARET = 0x03
_ALPHA = 0x04
_NUM = 0x05

# Characters no version may hold. Lone surrogates are caught separately (by encoding).
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f]")
# rpm's risdigit/risalpha are ASCII-only: non-ASCII letters are separators, not segments.
_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+|[~^]")


def _invalid(v: str, reason: str) -> InvalidVersion:
    return InvalidVersion(_SCHEME, v, reason)


def _parse(v: str) -> tuple[str, str, str]:
    """Validate ``v`` and split it into (epoch digits or "", version, release or "")."""
    if not isinstance(v, str):
        raise TypeError(f"rpm version must be str, not {type(v).__name__}")
    if not v:
        raise _invalid(v, "empty string")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(v, "contains a lone surrogate (not encodable as UTF-8)") from None
    # The reason names the first offence from the left, as the compiled module's single
    # scan does, so both report the same reason for the same string.
    bad = _BAD_CHAR.search(v)
    bad_at = bad.start() if bad else len(v)
    colon = v.find(":")
    if 0 <= colon < bad_at and 0 <= v.find(":", colon + 1) < bad_at:
        raise _invalid(v, "more than one ':'")
    if bad:
        raise _invalid(v, "contains whitespace or a control character")
    epoch = ""
    rest = v
    if colon >= 0:
        epoch, rest = v[:colon], v[colon + 1 :]
        if not epoch:
            raise _invalid(v, "empty epoch before ':'")
        # str.isdigit() would accept non-ASCII digits such as '²'.
        if not (epoch.isascii() and epoch.isdigit()):
            raise _invalid(v, "epoch is not a non-negative integer")
    version, hyphen, release = rest.rpartition("-")
    if not hyphen:
        version, release = rest, ""
    if not version:
        raise _invalid(v, "empty version")
    if hyphen:
        if not release:
            raise _invalid(v, "empty release after '-'")
        # A missing release is "" to rpm.labelCompare callers but a NULL that sorts below
        # every release to rpm.ver; the two agree once the release starts with a segment
        # or '^', so releases that do not are rejected rather than ordered one way.
        first = _TOKEN.search(release)
        if first is None:
            raise _invalid(v, "release holds only separators")
        if first.group() == "~":
            raise _invalid(v, "release starts with '~'")
    return epoch, version, release


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _is_alpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _is_segment_or_mark(c: str) -> bool:
    return _is_digit(c) or _is_alpha(c) or c == "~" or c == "^"


def _vercmp(a: str, b: str) -> int:
    """``rpmvercmp`` from rpm 4.18 ``rpmio/rpmvercmp.c``, ported step by step.

    Deliberately a direct port and not a comparison of token lists, so that the tests'
    "key order equals compare order" property checks two independent codings.
    """
    if a == b:
        return 0
    i, j, na, nb = 0, 0, len(a), len(b)
    while i < na or j < nb:
        while i < na and not _is_segment_or_mark(a[i]):
            i += 1
        while j < nb and not _is_segment_or_mark(b[j]):
            j += 1
        # "" stands for rpm's NUL terminator: the string has ended.
        ca = a[i] if i < na else ""
        cb = b[j] if j < nb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        # ``^`` is like ``~`` except that the end of the other string sorts below it.
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if _is_digit(ca):
            while i < na and _is_digit(a[i]):
                i += 1
            while j < nb and _is_digit(b[j]):
                j += 1
            isnum = True
        else:
            while i < na and _is_alpha(a[i]):
                i += 1
            while j < nb and _is_alpha(b[j]):
                j += 1
            isnum = False
        if sj == j:
            # b's segment is of the other type: numeric beats alpha.
            return 1 if isnum else -1
        sa, sb = a[si:i], b[sj:j]
        if isnum:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
    # Every segment matched: whichever string still has something left is newer.
    a_left, b_left = i < na, j < nb
    if not a_left and not b_left:
        return 0
    return -1 if not a_left else 1


def _epoch_cmp(a: str, b: str) -> int:
    # Epochs are validated as ASCII digits; "" (missing) is 0. Compare them as numbers of
    # any size, without int() so that a 5000-digit epoch cannot hit int-parsing limits.
    a, b = a.lstrip("0"), b.lstrip("0")
    if len(a) != len(b):
        return 1 if len(a) > len(b) else -1
    return (a > b) - (a < b)


def _compare(a: str, b: str) -> int:
    ea, va, ra = _parse(a)
    eb, vb, rb = _parse(b)
    return _epoch_cmp(ea, eb) or _vercmp(va, vb) or _vercmp(ra, rb)


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not an rpm EVR (see the module doc).
    """
    return _compare(a, b)


def _put_tokens(out: bytearray, s: str) -> None:
    for tok in _TOKEN.findall(s):
        c = tok[0]
        if c == "~":
            out.append(_TILDE)
        elif c == "^":
            out.append(_CARET)
        elif c <= "9":
            out.append(_NUM)
            put_number(out, tok)
        else:
            # The 0x00 terminator sorts below every letter, so a prefix sorts first, as
            # with strcmp ("a" < "ab"), and the next token cannot be mistaken for letters.
            out.append(_ALPHA)
            out += tok.encode("ascii")
            out.append(0)
    out.append(_END)


def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (memcmp order is rpm order).

    Equal keys exactly when ``compare`` returns 0, e.g. ``1.0`` and ``1_0``, or ``0:1`` and
    ``1`` (the default epoch is 0).
    """
    epoch, version, release = _parse(v)
    out = bytearray()
    put_number(out, epoch)
    _put_tokens(out, version)
    _put_tokens(out, release)
    return bytes(out)


def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [_compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
