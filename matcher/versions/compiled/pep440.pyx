# cython: language_level=3
"""PEP 440 (PyPI) versions with the packaging 21.3 ``LegacyVersion`` fallback: the fast path.

Same semantics, validity rules and byte keys as the pure-Python reference
``regsweep.matcher.versions.pure.pep440`` (whose docstring documents the ordering, the
validity rules and the key layout). Both versions are parsed in C straight from the
string's ASCII buffer; ``compare`` builds the two keys in stack buffers and memcmps them,
so an ordinary call allocates no Python object. Strings with non-ASCII characters take a
slower path: only surrounding Unicode whitespace is allowed there, and it is stripped with
``str.strip`` (exactly the set packaging's ``\\s`` accepts).

This module is the scheme's C part (``_build`` and its error texts); ``compare``, ``key``,
``compare_many`` and ``key_many`` are the shared ones of ``_api.pyx``, bound to it.
"""

from _keybuf cimport KeyBuf, kb_free, kb_init, kb_put_unchecked, kb_reserve
from _spec cimport SchemeSpec, spec_capsule
from libc.string cimport memcmp

from regsweep.matcher.versions.compiled._api import export as _export


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)


AUTHORITATIVE = True

cdef enum:
    # Character classes of the 256-entry table below.
    C_DIGIT = 1
    C_ALPHA = 2
    C_SEP = 4      # . _ -  (PEP 440 separators)
    C_WS = 8       # ASCII part of Python's \s
    C_LEGACY = 16  # printable ASCII without space: what the legacy fallback accepts

cdef enum:
    # Outcomes of _build: 0 is a key, the others index _REASONS.
    R_OK = 0
    R_EMPTY = 1
    R_CONTROL = 2
    R_NON_ASCII = 3

# Word for word the reasons of the pure module (the tests compare them).
_REASONS = (
    "",
    "empty version string",
    "not a PEP 440 version, and whitespace or control characters rule out the legacy ordering",
    "not a PEP 440 version, and non-ASCII characters rule out the legacy ordering",
)

cdef unsigned char CLS[256]


cdef void _init_classes() noexcept:
    cdef int c
    for c in range(256):
        CLS[c] = 0
        if 48 <= c <= 57:
            CLS[c] |= C_DIGIT
        if 65 <= c <= 90 or 97 <= c <= 122:
            CLS[c] |= C_ALPHA
        if c == 46 or c == 95 or c == 45:
            CLS[c] |= C_SEP
        if 9 <= c <= 13 or 28 <= c <= 32:
            CLS[c] |= C_WS
        if 33 <= c <= 126:
            CLS[c] |= C_LEGACY


_init_classes()


cdef inline Py_ssize_t _span(
    const unsigned char* s, Py_ssize_t i, Py_ssize_t n, unsigned char cls
) noexcept nogil:
    while i < n and CLS[s[i]] & cls:
        i += 1
    return i


cdef inline bint _word(
    const unsigned char* s, Py_ssize_t p, Py_ssize_t n, const char* w, Py_ssize_t wl
) noexcept nogil:
    # Case-insensitive prefix match of a lowercase word: c | 0x20 folds only A-Z onto a-z
    # as far as lowercase letters are concerned, so no other byte can match.
    cdef Py_ssize_t k
    if p + wl > n:
        return False
    for k in range(wl):
        if (s[p + k] | 0x20) != <unsigned char>w[k]:
            return False
    return True


cdef inline Py_ssize_t _sep(const unsigned char* s, Py_ssize_t p, Py_ssize_t n) noexcept nogil:
    # An optional separator, taken possessively as packaging's regex takes it.
    if p < n and CLS[s[p]] & C_SEP:
        return p + 1
    return p


cdef inline unsigned char* _num(
    unsigned char* o, const unsigned char* d, Py_ssize_t n
) noexcept nogil:
    # kb_put_number's encoding, byte for byte (the tests hold the keys to the pure module's
    # put_number), written through a local cursor: stores through kb.data may alias kb.len,
    # which would make the compiler reload and store kb.len around every byte.
    cdef Py_ssize_t k
    while n > 0 and d[0] == b'0':
        d += 1
        n -= 1
    if n < 0xFF:
        o[0] = <unsigned char>n
        o += 1
    else:
        o[0] = 0xFF
        o[1] = <unsigned char>((n >> 24) & 0xFF)
        o[2] = <unsigned char>((n >> 16) & 0xFF)
        o[3] = <unsigned char>((n >> 8) & 0xFF)
        o[4] = <unsigned char>(n & 0xFF)
        o += 5
    for k in range(n):
        o[k] = d[k]
    return o + n


cdef int _pep440(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    """Append the PEP 440 key of ``s`` (whitespace stripped) to ``kb``; 1 if valid, else 0."""
    cdef Py_ssize_t i = 0, j, p
    cdef int pre_rank = 0
    cdef Py_ssize_t pre_s = 0, pre_e = 0
    cdef Py_ssize_t post_s = -1, post_e = 0
    cdef Py_ssize_t dev_s = -1, dev_e = 0
    cdef Py_ssize_t wl
    cdef unsigned char c
    cdef unsigned char* o
    cdef unsigned char* mark
    # Every run of n input bytes costs at most n + 6 key bytes: one reservation covers all,
    # and the key is written through the cursor ``o`` (kb.len is set once, at the end).
    kb_reserve(kb, 8 * n + 32)
    o = kb.data + kb.len
    if n > 0 and (s[0] | 0x20) == b'v':
        i = 1
    o[0] = 1
    o += 1

    j = _span(s, i, n, C_DIGIT)
    if i < j < n and s[j] == b'!':
        o = _num(o, s + i, j - i)
        i = j + 1
        j = _span(s, i, n, C_DIGIT)
    else:
        o[0] = 0  # epoch 0 (the number zero is one 00 byte)
        o += 1

    # Release; ``mark`` is the end of the key after the last non-zero component.
    if j == i:
        return 0
    mark = o
    while True:
        o[0] = 1
        o = _num(o + 1, s + i, j - i)
        if (o - 1)[0] != 0:
            # Only a zero encodes as the single byte 00; anything else ends in a digit.
            mark = o
        i = j
        if i + 1 < n and s[i] == b'.' and CLS[s[i + 1]] & C_DIGIT:
            i += 1
            j = _span(s, i, n, C_DIGIT)
        else:
            break
    o = mark
    o[0] = 0
    o += 1

    if i == n:
        # The common case, a bare release: the final-release suffix and no local part.
        o[0] = 4
        o[1] = 0
        o[2] = 1
        o[3] = 0
        kb.len = o + 4 - kb.data
        return 1

    # Pre-release: [sep] word [sep] [digits]. packaging tries alpha|a|beta|b|preview|pre|c|rc
    # in that order; words with different first letters cannot both match, so dispatching
    # on the first letter and trying the longer word first is the same choice.
    p = _sep(s, i, n)
    if p < n:
        c = s[p] | 0x20
        if c == b'a':
            pre_rank = 1
            p += 5 if _word(s, p, n, "alpha", 5) else 1
        elif c == b'b':
            pre_rank = 2
            p += 4 if _word(s, p, n, "beta", 4) else 1
        elif c == b'c':
            pre_rank = 3
            p += 1
        elif c == b'p':
            if _word(s, p, n, "preview", 7):
                pre_rank = 3
                p += 7
            elif _word(s, p, n, "pre", 3):
                pre_rank = 3
                p += 3
        elif c == b'r' and _word(s, p, n, "rc", 2):
            pre_rank = 3
            p += 2
    if pre_rank:
        pre_s = _sep(s, p, n)
        pre_e = _span(s, pre_s, n, C_DIGIT)
        i = pre_e

    # Post-release: "-N", or [sep] post|rev|r [sep] [digits].
    if i + 1 < n and s[i] == b'-' and CLS[s[i + 1]] & C_DIGIT:
        post_s = i + 1
        post_e = _span(s, post_s, n, C_DIGIT)
        i = post_e
    else:
        p = _sep(s, i, n)
        wl = 0
        if p < n:
            c = s[p] | 0x20
            if c == b'p':
                wl = 4 if _word(s, p, n, "post", 4) else 0
            elif c == b'r':
                wl = 3 if _word(s, p, n, "rev", 3) else 1
        if wl:
            post_s = _sep(s, p + wl, n)
            post_e = _span(s, post_s, n, C_DIGIT)
            i = post_e

    # Dev-release: [sep] dev [sep] [digits].
    p = _sep(s, i, n)
    if _word(s, p, n, "dev", 3):
        dev_s = _sep(s, p + 3, n)
        dev_e = _span(s, dev_s, n, C_DIGIT)
        i = dev_e

    # Suffix; a dev-only version sorts before its alphas (packaging's _cmpkey).
    if pre_rank:
        o[0] = <unsigned char>pre_rank
        o = _num(o + 1, s + pre_s, pre_e - pre_s)
    else:
        o[0] = 0 if post_s < 0 and dev_s >= 0 else 4
        o += 1
    if post_s < 0:
        o[0] = 0
        o += 1
    else:
        o[0] = 1
        o = _num(o + 1, s + post_s, post_e - post_s)
    if dev_s < 0:
        o[0] = 1
        o += 1
    else:
        o[0] = 0
        o = _num(o + 1, s + dev_s, dev_e - dev_s)

    # Local: "+" alnum {sep alnum}; all-digit parts are numbers, above the text parts.
    if i < n and s[i] == b'+':
        i += 1
        j = _span(s, i, n, C_DIGIT | C_ALPHA)
        if j == i:
            return 0
        while True:
            if _span(s, i, j, C_DIGIT) == j:
                o[0] = 2
                o = _num(o + 1, s + i, j - i)
            else:
                o[0] = 1
                o += 1
                while i < j:
                    # Lower-case letters; digits have the 0x20 bit already.
                    o[0] = s[i] | 0x20
                    o += 1
                    i += 1
                o[0] = 0
                o += 1
            i = j
            if i + 1 < n and CLS[s[i]] & C_SEP and CLS[s[i + 1]] & (C_DIGIT | C_ALPHA):
                i += 1
                j = _span(s, i, n, C_DIGIT | C_ALPHA)
            else:
                break
    o[0] = 0
    kb.len = o + 1 - kb.data
    return i == n


cdef inline bint _last_part_is(
    const KeyBuf* kb, Py_ssize_t base, const char* w, Py_ssize_t wl
) noexcept nogil:
    # Parts are stored as text + 00; the last one is ``w`` if the wl bytes before the final
    # 00 are ``w`` and are preceded by the parts' base or by another part's 00.
    cdef Py_ssize_t st = kb.len - 1 - wl
    if st < base:
        return False
    if st > base and kb.data[st - 1] != 0:
        return False
    return memcmp(kb.data + st, w, wl) == 0


cdef inline bint _below_final(const unsigned char* t, Py_ssize_t tl, bint lower) noexcept nogil:
    # "*" + t < "*final" in Python string order.
    cdef Py_ssize_t k
    cdef unsigned char c
    cdef const char* f = "final"
    for k in range(tl if tl < 5 else 5):
        c = (t[k] | 0x20) if lower else t[k]
        if c != <unsigned char>f[k]:
            return c < <unsigned char>f[k]
    return tl < 5


cdef inline void _star_part(
    KeyBuf* kb, Py_ssize_t base, const unsigned char* t, Py_ssize_t tl, bint lower
) noexcept nogil:
    # _legacy_cmpkey's handling of one "*"-part, then the part itself (space is reserved).
    cdef Py_ssize_t k
    if _below_final(t, tl, lower):
        # A "-" before a pre-release tag is dropped.
        while _last_part_is(kb, base, "*final-", 7):
            kb.len -= 8
    # Trailing zeros of the number series before it are dropped.
    while _last_part_is(kb, base, "00000000", 8):
        kb.len -= 9
    kb_put_unchecked(kb, b'*')
    for k in range(tl):
        kb_put_unchecked(kb, (t[k] | 0x20) if lower else t[k])
    kb_put_unchecked(kb, 0)


cdef int _legacy(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    """Append the key of ``s`` under packaging 21.3's ``_legacy_cmpkey`` (printable ASCII)."""
    cdef Py_ssize_t i = 0, j, k, base
    cdef unsigned char c
    # A part costs at most 9 key bytes per input byte ("-" becomes "*final-" 00).
    kb_reserve(kb, 9 * n + 16)
    kb_put_unchecked(kb, 0)
    base = kb.len
    while i < n:
        c = s[i]
        if CLS[c] & C_DIGIT:
            # Numbers are zero-padded to eight digits and then compared as text.
            j = _span(s, i, n, C_DIGIT)
            for k in range(j - i, 8):
                kb_put_unchecked(kb, b'0')
            for k in range(i, j):
                kb_put_unchecked(kb, s[k])
            kb_put_unchecked(kb, 0)
        elif CLS[c] & C_ALPHA:
            j = _span(s, i, n, C_ALPHA)
            k = j - i
            # The replacement map of _parse_version_parts: whole letter runs only.
            if (
                k == 3 and _word(s, i, n, "pre", 3)
                or k == 7 and _word(s, i, n, "preview", 7)
                or k == 2 and _word(s, i, n, "rc", 2)
            ):
                _star_part(kb, base, <const unsigned char*>b"c", 1, False)
            elif k == 3 and _word(s, i, n, "dev", 3):
                _star_part(kb, base, <const unsigned char*>b"@", 1, False)
            else:
                _star_part(kb, base, s + i, j - i, True)
        elif c == b'.':
            j = i + 1
        elif c == b'-':
            _star_part(kb, base, <const unsigned char*>b"final-", 6, False)
            j = i + 1
        else:
            # A run of anything else is one part, as the regex split leaves it.
            j = i + 1
            while j < n and not CLS[s[j]] & (C_DIGIT | C_ALPHA) and s[j] != b'.' and s[j] != b'-':
                j += 1
            _star_part(kb, base, s + i, j - i, False)
        i = j
    _star_part(kb, base, <const unsigned char*>b"final", 5, False)
    kb_put_unchecked(kb, 0)
    return 0


cdef bytes _wide(str v, int* code):
    # Rare: non-ASCII characters are allowed only as whitespace around a PEP 440 version
    # (str.strip removes exactly the set packaging's \s accepts). The stripped string is
    # handed back only when it is PEP 440 by itself, so that _build never tries the legacy
    # ordering on it: that one is for strings that are ASCII as given.
    cdef KeyBuf kb
    cdef bint ok = False
    cdef bytes raw
    t = v.strip()
    if not t:
        code[0] = R_EMPTY
        return None
    if PyUnicode_IS_ASCII(t):
        raw = t.encode("ascii")
        kb_init(&kb)
        try:
            ok = _pep440(<const unsigned char*><const char*>raw, len(raw), &kb)
        finally:
            kb_free(&kb)
        if ok:
            return raw
    code[0] = R_NON_ASCII
    return None


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    """Put the key of s[:n] in ``kb``; return R_OK or the reason it has none."""
    cdef Py_ssize_t b = 0, e = n, i
    while b < e and CLS[s[b]] & C_WS:
        b += 1
    while e > b and CLS[s[e - 1]] & C_WS:
        e -= 1
    if b == e:
        return R_EMPTY
    if _pep440(s + b, e - b, kb):
        return R_OK
    kb.len = 0
    for i in range(n):
        if not CLS[s[i]] & C_LEGACY:
            return R_CONTROL
    _legacy(s, n, kb)
    return R_OK


# str subclasses are versions here (StrEnum members and some decoders produce them).
cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"pep440", str_subclasses=True, build=_build, compare=NULL, wide=_wide,
    non_ascii=R_NON_ASCII, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
