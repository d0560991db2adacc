# cython: language_level=3
"""Maven versions (maven-artifact 3.8.6 ``ComparableVersion`` order, OSV's): the compiled
fast path.

Same semantics, validity and keys as ``regsweep.matcher.versions.pure.maven`` (read its
docstring for why this is 3.8.6's order and not Maven 3.9's, for the rules, and for why
``AUTHORITATIVE`` is False: Maven's order has cycles).
Each string is scanned once on its ASCII buffer into a fixed array of tokens (numbers and
qualifiers as spans of the buffer, plus OPEN marks for the sub-lists), normalised in
place, and two such arrays are compared by one merge walk; nothing is allocated.

This module is the scheme's C part (``_build``, the comparator ``_compare`` and how errors
read); ``compare``, ``key``, ``compare_many`` and ``key_many`` are the shared ones of
``_api.pyx``, bound to it.
"""

from libc.string cimport memcmp

from _keybuf cimport KeyBuf, kb_put, kb_put_number
from _spec cimport CMP_BAD_A, CMP_BAD_B, SchemeSpec, spec_capsule

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = False

cdef enum:
    MAX_LENGTH = 256
    # A character adds at most two tokens (an item and the OPEN of the sub-list after it,
    # at a '-' or a change between digits and other characters), the end one more.
    MAX_TOKENS = 2 * MAX_LENGTH + 1

# Token kinds (same numbering as the pure module).
cdef enum:
    T_INT = 0
    T_STR = 1
    T_OPEN = 2

# Qualifier ranks: index in Maven's QUALIFIERS after aliasing; R_RELEASE is the empty one.
cdef enum:
    R_RELEASE = 5
    R_UNKNOWN = 7

# Byte classes. C_LETTER and C_OTHER both make qualifiers; only letters (and digits)
# satisfy the "has a letter or digit" rule.
cdef enum:
    C_BAD = 0      # controls, space, DEL
    C_BANNED = 1   # \ / : " < > | ? *  (Maven's ILLEGAL_VERSION_CHARS)
    C_DOLLAR = 2   # '$': banned only as the start of "${"
    C_DOT = 3
    C_DASH = 4
    C_DIGIT = 5
    C_LETTER = 6
    C_OTHER = 7

# Key tags.
cdef enum:
    K_END = 0x00
    K_NUM = 0x01

cdef unsigned char CLS[128]
cdef unsigned char LOWER[128]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(128):
        CLS[c] = C_OTHER
        LOWER[c] = c
    for c in range(0x21):
        CLS[c] = C_BAD
    CLS[0x7F] = C_BAD
    for c in b'\\/:"<>|?*':
        CLS[c] = C_BANNED
    CLS[ord('$')] = C_DOLLAR
    CLS[ord('.')] = C_DOT
    CLS[ord('-')] = C_DASH
    for c in range(ord('0'), ord('9') + 1):
        CLS[c] = C_DIGIT
    for c in range(ord('a'), ord('z') + 1):
        CLS[c] = C_LETTER
    for c in range(ord('A'), ord('Z') + 1):
        CLS[c] = C_LETTER
        LOWER[c] = c + 32


_init_tables()


cdef struct Tok:
    unsigned char kind
    unsigned char rank      # T_STR only
    unsigned short off      # span in the buffer: digits without leading zeros, or text
    unsigned short len      # 0 for the number zero


# One parsed version: its normalised tokens are toks[first:end].
cdef struct Ver:
    const unsigned char* s
    Py_ssize_t first
    Py_ssize_t end
    Tok toks[MAX_TOKENS]


# Error codes of _parse; E_BANNED carries the banned byte in bits 8-15 (it is named).
cdef enum:
    OK = 0
    E_EMPTY
    E_LONG
    E_NONASCII
    E_EXPRESSION
    E_CONTROL
    E_BANNED
    E_NO_ALNUM

# The texts are the pure module's, word for word.
_REASONS = (
    None,
    "empty string",
    f"longer than {MAX_LENGTH} characters",
    "contains a non-ASCII character",
    "contains an unresolved '${' expression",
    "contains whitespace or a control character",
    None,
    "has no letter or digit",
)


cdef str _reason(str v, int code):
    if code & 0xFF == E_BANNED:
        return f"contains {chr(code >> 8)!r}, which Maven forbids in a version"
    return _REASONS[code]


cdef bytes _wide(str v, int* code):
    # Length is checked before the characters, as in _parse (and in the pure module).
    code[0] = E_LONG if len(v) > MAX_LENGTH else E_NONASCII
    return None


cdef inline bint _is(const unsigned char* s, Py_ssize_t n, const char* lit) noexcept nogil:
    # Case-insensitive equality with a lower-case literal of length n.
    cdef Py_ssize_t i
    for i in range(n):
        if LOWER[s[i]] != <unsigned char>lit[i]:
            return False
    return True


cdef inline unsigned char _rank(const unsigned char* s, Py_ssize_t n, bint followed_by_digit) noexcept nogil:
    """Maven's qualifier order for a text span (aliases folded in); R_UNKNOWN otherwise."""
    cdef unsigned char c
    if n == 1:
        if followed_by_digit:
            # a1 = alpha-1, b1 = beta-1, m1 = milestone-1; a lone "a" is an unknown word.
            c = LOWER[s[0]]
            if c == b'a':
                return 0
            if c == b'b':
                return 1
            if c == b'm':
                return 2
    elif n == 2:
        if _is(s, 2, b"rc") or _is(s, 2, b"cr"):
            return 3
        if _is(s, 2, b"ga"):
            return R_RELEASE
        if _is(s, 2, b"sp"):
            return 6
    elif n == 4:
        if _is(s, 4, b"beta"):
            return 1
    elif n == 5:
        if _is(s, 5, b"alpha"):
            return 0
        if _is(s, 5, b"final"):
            return R_RELEASE
    elif n == 7:
        if _is(s, 7, b"release"):
            return R_RELEASE
    elif n == 8:
        if _is(s, 8, b"snapshot"):
            return 4
    elif n == 9:
        if _is(s, 9, b"milestone"):
            return 2
    return R_UNKNOWN


cdef inline void _push_int(Ver* x, Py_ssize_t* nt, const unsigned char* s,
                           Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Tok* t = &x.toks[nt[0]]
    while a < b and s[a] == b'0':
        a += 1
    t.kind = T_INT
    t.off = <unsigned short>a
    t.len = <unsigned short>(b - a)
    nt[0] += 1


cdef inline void _push_str(Ver* x, Py_ssize_t* nt, const unsigned char* s,
                           Py_ssize_t a, Py_ssize_t b, bint followed_by_digit) noexcept nogil:
    cdef Tok* t = &x.toks[nt[0]]
    t.kind = T_STR
    t.rank = _rank(s + a, b - a, followed_by_digit)
    t.off = <unsigned short>a
    t.len = <unsigned short>(b - a)
    nt[0] += 1


cdef inline void _push_open(Ver* x, Py_ssize_t* nt) noexcept nogil:
    x.toks[nt[0]].kind = T_OPEN
    nt[0] += 1


cdef inline bint _is_null(const Tok* t) noexcept nogil:
    if t.kind == T_INT:
        return t.len == 0
    return t.kind == T_STR and t.rank == R_RELEASE


cdef int _parse(const unsigned char* s, Py_ssize_t n, Ver* x) noexcept nogil:
    """Validate s[:n] and fill ``x`` with its normalised tokens (pure ``_parse``, in C).

    Returns 0 or an error code.
    """
    cdef Py_ssize_t i, start = 0, nt = 0, r, w
    cdef unsigned char c, k
    cdef bint is_digit = False, alnum = False, trimming
    if n == 0:
        return E_EMPTY
    if n > MAX_LENGTH:
        return E_LONG
    x.s = s
    for i in range(n):
        c = s[i]
        k = CLS[c]
        if k == C_DIGIT:
            alnum = True
            if not is_digit and i > start:
                # Letters then a digit: the qualifier, and a sub-list for what follows
                # (no sub-list before it: that is MNG-7644, after 3.8.6).
                _push_str(x, &nt, s, start, i, True)
                _push_open(x, &nt)
                start = i
            is_digit = True
        elif k >= C_LETTER:
            if k == C_LETTER:
                alnum = True
            if is_digit and i > start:
                _push_int(x, &nt, s, start, i)
                _push_open(x, &nt)
                start = i
            is_digit = False
        elif k == C_DOT or k == C_DASH:
            if i == start:
                _push_int(x, &nt, s, i, i)
            elif is_digit:
                _push_int(x, &nt, s, start, i)
            else:
                _push_str(x, &nt, s, start, i, False)
            start = i + 1
            if k == C_DASH:
                _push_open(x, &nt)
        elif k == C_DOLLAR:
            if i + 1 < n and s[i + 1] == b'{':
                return E_EXPRESSION
            # Any other '$' is an ordinary qualifier character.
            if is_digit and i > start:
                _push_int(x, &nt, s, start, i)
                _push_open(x, &nt)
                start = i
            is_digit = False
        elif k == C_BAD:
            return E_CONTROL
        else:
            return E_BANNED | (c << 8)
    if not alnum:
        return E_NO_ALNUM
    if n > start:
        if is_digit:
            _push_int(x, &nt, s, start, n)
        else:
            _push_str(x, &nt, s, start, n, False)
    # ListItem.normalize on every level, innermost first, as one backward compaction:
    # trailing nulls go, an OPEN whose sub-list kept nothing goes, and a kept OPEN
    # restarts trimming (the nulls just before a sub-list go as well).
    w = nt
    trimming = True
    r = nt - 1
    while r >= 0:
        if x.toks[r].kind == T_OPEN:
            if w < nt:
                w -= 1
                x.toks[w] = x.toks[r]
            trimming = True
        elif not (trimming and _is_null(&x.toks[r])):
            trimming = False
            w -= 1
            x.toks[w] = x.toks[r]
        r -= 1
    x.first = w
    x.end = nt
    return 0


cdef inline int _null_sign(const Tok* t) noexcept nogil:
    # item.compareTo(null) for a scalar.
    if t.kind == T_INT:
        return 1 if t.len else 0
    if t.rank > R_RELEASE:
        return 1
    if t.rank < R_RELEASE:
        return -1
    return 0


cdef inline int _rest_sign(const Ver* x, Py_ssize_t i) noexcept nogil:
    # The rest of a version against nothing: its first item that is not null-like.
    cdef int r
    while i < x.end:
        if x.toks[i].kind != T_OPEN:
            r = _null_sign(&x.toks[i])
            if r:
                return r
        i += 1
    return 0


cdef inline int _cmp_scalar(const Ver* x, const Tok* a, const Ver* y, const Tok* b) noexcept nogil:
    cdef int r
    cdef Py_ssize_t i, n
    cdef unsigned char ca, cb
    if a.kind == T_INT:
        if b.kind != T_INT:
            return 1
        if a.len != b.len:
            return 1 if a.len > b.len else -1
        r = memcmp(x.s + a.off, y.s + b.off, a.len)
        return (r > 0) - (r < 0)
    if b.kind == T_INT:
        return -1
    if a.rank != b.rank:
        return 1 if a.rank > b.rank else -1
    if a.rank != R_UNKNOWN:
        return 0
    # Unknown qualifiers: lower-cased string order, a prefix first.
    n = a.len if a.len < b.len else b.len
    for i in range(n):
        ca = LOWER[x.s[a.off + i]]
        cb = LOWER[y.s[b.off + i]]
        if ca != cb:
            return 1 if ca > cb else -1
    if a.len != b.len:
        return 1 if a.len > b.len else -1
    return 0


cdef int _cmp(const Ver* x, const Ver* y) noexcept nogil:
    """ListItem.compareTo on two flat chains, as ``_compare_tokens`` in the pure module."""
    cdef Py_ssize_t i = x.first, j = y.first
    cdef unsigned char kx, ky
    cdef int r
    while True:
        if i == x.end:
            return -_rest_sign(y, j) if j < y.end else 0
        if j == y.end:
            return _rest_sign(x, i)
        kx = x.toks[i].kind
        ky = y.toks[j].kind
        if kx == T_OPEN or ky == T_OPEN:
            if kx == ky:
                i += 1
                j += 1
                continue
            # number > sub-list > qualifier
            if kx == T_OPEN:
                return -1 if ky == T_INT else 1
            return 1 if kx == T_INT else -1
        r = _cmp_scalar(x, &x.toks[i], y, &y.toks[j])
        if r:
            return r
        i += 1
        j += 1


cdef int _compare(const unsigned char* a, Py_ssize_t na,
                  const unsigned char* b, Py_ssize_t nb, int* code) noexcept nogil:
    cdef Ver x, y
    code[0] = _parse(a, na, &x)
    if code[0] != OK:
        return CMP_BAD_A
    if a == b and na == nb:
        return 0        # the same string object: valid, and equal to itself
    code[0] = _parse(b, nb, &y)
    if code[0] != OK:
        return CMP_BAD_B
    return _cmp(&x, &y)


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    cdef Ver x
    cdef Py_ssize_t i, keep = 0
    cdef const Tok* t
    cdef int code = _parse(s, n, &x)
    if code != OK:
        return code
    i = x.first
    while i < x.end and x.toks[i].kind == T_INT:
        t = &x.toks[i]
        kb_put(kb, K_NUM)
        kb_put_number(kb, <const char*>(x.s + t.off), t.len)
        if t.len:
            keep = kb.len
        i += 1
    # Zeros that end the numeric prefix are dropped (see the pure module).
    kb.len = keep
    kb_put(kb, K_END)
    return OK


# Exact str only, as the pure module (a str subclass is a caller bug there too).
cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"maven", str_subclasses=False, build=_build, compare=_compare, wide=_wide,
    non_ascii=E_NONASCII, reason=_reason,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__)
