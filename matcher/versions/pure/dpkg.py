"""dpkg versions (Debian, Ubuntu): the pure-Python reference.

Ordering is dpkg 1.21's ``dpkg_version_compare``: ``[epoch:]upstream[-revision]``, compared
epoch first (numerically), then ``verrevcmp`` on the upstream parts, then on the revisions.

* The epoch is everything before the **first** ``:``; the revision everything after the
  **last** ``-`` of what follows the epoch, so the upstream part may hold ``-`` (and ``:``
  when there is an epoch). A missing epoch is 0, a missing revision compares as ``"0"``.
* ``verrevcmp`` walks alternating runs: a non-digit run compared character by character
  with ``~`` before the end of the run, the end of the run before everything else, letters
  by ASCII, and other characters after all letters (by ASCII); then a digit run compared
  numerically, leading zeros ignored (``1.0000 == 1.0``, and ``1. == 1.0``).

Validity is dpkg's ``parseversion``, reasons worded as dpkg words them. A string is
rejected when dpkg reports an **error** for it (empty, embedded blanks, empty or
non-numeric epoch, negative epoch or one above INT_MAX, nothing after the epoch colon,
empty revision after a hyphen, empty upstream). parseversion also has two **warnings**,
which ``dpkg --compare-versions`` and dpkg's lax reading of its status file let pass, and
which its strict parser (building, installing packages) turns into errors:

* an invalid character (upstream outside ``[A-Za-z0-9.+~:-]``, revision outside
  ``[A-Za-z0-9.+~]``, so anything non-ASCII) is **rejected**: no package can carry one,
  and dpkg's own order for them is not even portable (``order()`` takes a plain ``char``,
  so a byte >= 0x80 sorts below ``.`` on x86 and above it on ARM);
* an upstream part that does not start with a digit is **accepted**: verrevcmp orders it
  like any other, and a scanner should not drop a record dpkg itself can compare (none
  occur in Debian 12's archive). Its characters are still checked, although dpkg's own
  check stops at that first warning.

Further decisions, where regsweep follows dpkg exactly:

* Leading and trailing blanks (space, tab) are trimmed, as dpkg does.
* The epoch is read with C's ``strtol`` as dpkg reads it: ``\\n``, ``\\v``, ``\\f``, ``\\r``
  before it and a sign are accepted (``+1:0`` is epoch 1, ``-0:0`` epoch 0). apt_pkg
  compares epochs as strings and disagrees there; dpkg is the authority.

Where regsweep differs from ``dpkg --compare-versions``: an empty string (and the literal
``<unknown>``) is dpkg's "blank version" there; here it is invalid.

Key layout (``key``), byte-identical to the compiled module: the epoch as ``put_number``,
then for the upstream part and for the revision, each (non-digit run, digit run) pair as the
run's character weights (``~`` 0x01, letters their ASCII code, ``. + - :`` 0x80 + ASCII),
the terminator 0x02, then the digit run as ``put_number``; the first pair is always written
(so ``""`` and ``"0"`` share a key) and every part ends with 0x02. That end byte stands
where another version would continue with a non-digit run, so it sorts after ``~`` and
before everything else, exactly as verrevcmp's end of string does; the key is lossless,
so ``AUTHORITATIVE`` is True.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import zip_longest

from regsweep.matcher.versions.interface import InvalidVersion
from regsweep.matcher.versions.pure._keys import put_number

__all__ = ["AUTHORITATIVE", "compare", "compare_many", "key", "key_many"]

#: The key orders exactly as ``compare`` does.
AUTHORITATIVE = True

_SCHEME = "dpkg"
_BLANKS = " \t"  # dpkg's c_isblank
_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPSTREAM_OK = frozenset(_DIGITS + _LETTERS + ".+~:-")
_REVISION_OK = frozenset(_DIGITS + _LETTERS + ".+~")
_INT_MAX = 2**31 - 1  # dpkg keeps the epoch in an int

# verrevcmp's order() as one character each, so a whole non-digit run compares as a str.
_TILDE, _TERM, _END, _OTHER = 0x01, 0x02, 0x02, 0x80
_WEIGHTS: dict[int, int] = {ord(c): ord(c) for c in _LETTERS}
_WEIGHTS.update({ord(c): _OTHER + ord(c) for c in ".+-:"})
_WEIGHTS[ord("~")] = _TILDE
_TRANSLATE = {k: chr(v) for k, v in _WEIGHTS.items()}
_TERM_CHR = chr(_TERM)

# (non-digit run, digit run) pairs; ASCII digits only (str's \d would take any Nd digit).
_PAIRS = re.compile(r"([^0-9]*)([0-9]*)")
# What C's strtol skips and reads before dpkg checks that it stopped at the colon.
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")


class _Version:
    """A validated version: epoch value and digits, upstream and revision parts."""

    __slots__ = ("epoch", "epoch_digits", "revision", "upstream")

    def __init__(self, epoch: int, epoch_digits: str, upstream: str, revision: str) -> None:
        self.epoch = epoch
        self.epoch_digits = epoch_digits
        self.upstream = upstream
        self.revision = revision


def _parse(v: str) -> _Version:
    """dpkg's parseversion, its checks in its order; raises InvalidVersion."""
    if not isinstance(v, str):
        raise TypeError(f"a dpkg version must be str, not {type(v).__name__}")

    def bad(reason: str) -> InvalidVersion:
        return InvalidVersion(_SCHEME, v, reason)

    # dpkg skips leading blanks, stops at the next blank and allows only blanks after it:
    # the same as stripping both ends and finding no blank left.
    s = v.strip(_BLANKS)
    if not s:
        raise bad("version string is empty")
    if " " in s or "\t" in s:
        raise bad("version string has embedded spaces")
    epoch, digits = 0, ""
    head, colon, rest = s.partition(":")
    if colon:
        m = _STRTOL.match(head)
        assert m is not None  # the pattern matches the empty string
        sign, raw = m.group(1), m.group(2)
        if not raw:
            raise bad("epoch in version is empty")
        if m.end() != len(head):
            raise bad("epoch in version is not number")
        digits = raw.lstrip("0")
        if sign == "-" and digits:
            raise bad("epoch in version is negative")
        epoch = int(raw)
        if epoch > _INT_MAX:
            raise bad("epoch in version is too big")
        if not rest:
            raise bad("nothing after colon in version number")
        s = rest
    upstream, hyphen, revision = s.rpartition("-")
    if not hyphen:
        upstream, revision = s, ""
    elif not revision:
        raise bad("revision number is empty")
    if not upstream:
        raise bad("version number is empty")
    if not _UPSTREAM_OK.issuperset(upstream):
        raise bad("invalid character in version number")
    if not _REVISION_OK.issuperset(revision):
        raise bad("invalid character in revision number")
    return _Version(epoch, digits, upstream, revision)


def _pairs(part: str) -> list[tuple[str, str]]:
    # findall ends with an empty match at the end of the string; drop it unless it is the
    # only pair (the empty part), which mirrors the compiled scan that always writes one.
    found: list[tuple[str, str]] = _PAIRS.findall(part)
    return found[:-1] if len(found) > 1 else found


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp as -1/0/1: pairwise over runs, the shorter padded with ("", 0)."""
    for (na, da), (nb, db) in zip_longest(_pairs(a), _pairs(b), fillvalue=("", "")):
        # The run's end is the terminator weight, which places "~" before it and all else
        # after it; comparing run + terminator as strs is verrevcmp's character loop.
        wa = na.translate(_TRANSLATE) + _TERM_CHR
        wb = nb.translate(_TRANSLATE) + _TERM_CHR
        if wa != wb:
            return -1 if wa < wb else 1
        # Numeric order without int(): digit runs may exceed int's str-conversion limit.
        da, db = da.lstrip("0"), db.lstrip("0")
        if da != db:
            return -1 if (len(da), da) < (len(db), db) else 1
    return 0


def _cmp(a: _Version, b: _Version) -> int:
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    return _verrevcmp(a.upstream, b.upstream) or _verrevcmp(a.revision, b.revision)


def _put_part(out: bytearray, part: str) -> None:
    for run, digits in _pairs(part):
        out += run.translate(_TRANSLATE).encode("latin-1")
        out.append(_TERM)
        put_number(out, digits)
    out.append(_END)


def compare(a: str, b: str, /) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a valid dpkg version (``a`` is
    checked first).
    """
    va = _parse(a)
    return _cmp(va, _parse(b))


def key(v: str, /) -> bytes:
    """Return the order-preserving byte key of ``v`` (bytes order == compare order)."""
    ver = _parse(v)
    out = bytearray()
    put_number(out, ver.epoch_digits)
    _put_part(out, ver.upstream)
    _put_part(out, ver.revision)
    return bytes(out)


def compare_many(a: Sequence[str], b: Sequence[str], /) -> list[int]:
    """Compare ``a[i]`` with ``b[i]`` for every i (both sequences the same length)."""
    if len(a) != len(b):
        raise ValueError(f"compare_many needs equal lengths, got {len(a)} and {len(b)}")
    return [compare(x, y) for x, y in zip(a, b, strict=True)]


def key_many(vs: Sequence[str], /) -> list[bytes]:
    """Return ``[key(v) for v in vs]``."""
    return [key(v) for v in vs]
