# cython: language_level=3
"""Alpine / Wolfi / Chainguard package versions (apk-tools 3 order): the compiled fast path.

Same semantics, validity, error reasons and keys as ``regsweep.matcher.versions.pure.apk``
(read its docstring for the grammar, the comparison rules and the key layout). Both
versions are tokenised in step on their UTF-8 buffers; each token gets the kind byte the
key would give it, so "kinds differ" and "suffixes differ" are one byte comparison, as
in the key. ``AUTHORITATIVE`` is True: the key is lossless.

This module is the scheme's C part (``_build``, the comparator ``_compare`` and how errors
read); ``compare``, ``key``, ``compare_many`` and ``key_many`` are the shared ones of
``_api.pyx``, bound to it.
"""

from libc.stdint cimport uint64_t
from libc.string cimport memcmp

from _keybuf cimport KeyBuf, kb_put_unchecked, kb_reserve
from _spec cimport CMP_BAD_A, CMP_BAD_B, SchemeSpec, spec_capsule

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

# Token kinds in grammar order (the validity state machine uses this order).
cdef enum:
    T_INITIAL = 0
    T_DIGIT = 1
    T_LETTER = 2
    T_LETTER_NO = 3     # the number after the letter (apk-tools 2.10; see the pure module)
    T_SUFFIX = 4
    T_SUFFIX_NO = 5
    T_HASH = 6
    T_REVISION = 7
    T_END = 8
    T_INVALID = 9

# Key kind bytes: a lower byte is an older version when two walks meet different tokens.
# Suffixes are their own byte (01-04 pre-releases, below the end; 09-0D after it).
cdef enum:
    K_END = 0x05
    K_REVISION = 0x06
    K_HASH = 0x07
    K_SUFFIX_NO = 0x08
    K_LETTER = 0x0E
    K_DIGIT = 0x0F
    K_LETTER_NO = 0x10
    K_INITIAL = 0x11   # never in a key (every version starts with it) but ranks the walk

# Error codes; the messages (in _message) match the pure module's word for word.
cdef enum:
    E_NONE = 0
    E_START
    E_DOT_AFTER
    E_DOT_DIGITS
    E_LETTER
    E_SUFFIX_AFTER
    E_SUFFIX_NAME
    E_HASH_AFTER
    E_HASH_EMPTY
    E_REV_TWICE
    E_DASH
    E_REV_DIGITS
    E_CHAR


# A tokeniser over one borrowed buffer. The current token is (kind, rank) plus its value:
# ``num`` for numbers (mod 2**64, as apk's uint64_t parse wraps), [s, s+len) for the raw
# text of dotted numbers, letters and hashes.
cdef struct Scan:
    const unsigned char* p
    Py_ssize_t n
    Py_ssize_t i
    int kind
    int rank
    uint64_t num
    Py_ssize_t s
    Py_ssize_t len
    int err
    Py_ssize_t err_at
    Py_ssize_t err_end


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return <unsigned int>(c - 48) < 10   # wraps below '0': one compare for '0'..'9'


cdef inline bint _is_lower(unsigned char c) noexcept nogil:
    return <unsigned int>(c - 97) < 26


cdef inline bint _is_hex(unsigned char c) noexcept nogil:
    return <unsigned int>(c - 48) < 10 or <unsigned int>(c - 97) < 6


cdef inline void _digits(Scan* t) noexcept nogil:
    # Read a digit run at t.i into t.num (wrapping) and [t.s, t.s + t.len).
    cdef uint64_t v = 0
    cdef Py_ssize_t i = t.i
    cdef unsigned char c
    t.s = i
    while i < t.n:
        c = t.p[i]
        if not _is_digit(c):
            break
        v = v * 10 + (c - 48)
        i += 1
    t.num = v
    t.len = i - t.s
    t.i = i


cdef inline int _fail(Scan* t, int err, Py_ssize_t at) noexcept nogil:
    t.err = err
    t.err_at = at
    t.kind = T_INVALID
    return T_INVALID


cdef inline int _suffix_rank(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    # Exact names only (apk compares the whole run of lowercase letters after '_').
    if n == 1:
        return 13 if s[0] == b'p' else 0
    if n == 2:
        if s[0] == b'r' and s[1] == b'c':
            return 4
        if s[0] == b'h' and s[1] == b'g':
            return 12
        return 0
    if n == 3:
        if memcmp(s, b"pre", 3) == 0:
            return 3
        if memcmp(s, b"cvs", 3) == 0:
            return 9
        if memcmp(s, b"svn", 3) == 0:
            return 10
        if memcmp(s, b"git", 3) == 0:
            return 11
        return 0
    if n == 4:
        return 2 if memcmp(s, b"beta", 4) == 0 else 0
    if n == 5:
        return 1 if memcmp(s, b"alpha", 5) == 0 else 0
    return 0


cdef inline int _first(Scan* t, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    t.p = p
    t.n = n
    t.i = 0
    t.err = E_NONE
    _digits(t)
    if t.len == 0:
        return _fail(t, E_START, 0)
    t.kind = T_INITIAL
    t.rank = K_INITIAL
    return T_INITIAL


cdef int _next(Scan* t) noexcept nogil:
    """Advance to the next token; return its kind (T_END at the end, T_INVALID on error)."""
    cdef Py_ssize_t i = t.i
    cdef Py_ssize_t j
    cdef unsigned char c
    cdef int r
    if t.kind >= T_END:
        return t.kind
    if i >= t.n:
        t.kind = T_END
        t.rank = K_END
        return T_END
    c = t.p[i]
    if c == b'.':
        if t.kind > T_DIGIT:
            return _fail(t, E_DOT_AFTER, i)
        t.i = i + 1
        _digits(t)
        if t.len == 0:
            return _fail(t, E_DOT_DIGITS, i)
        t.kind = T_DIGIT
        t.rank = K_DIGIT
    elif _is_lower(c):
        if t.kind > T_DIGIT:
            return _fail(t, E_LETTER, i)
        t.s = i
        t.len = 1
        t.i = i + 1
        t.kind = T_LETTER
        t.rank = K_LETTER
    elif c == b'_':
        if t.kind > T_SUFFIX_NO:
            return _fail(t, E_SUFFIX_AFTER, i)
        j = i + 1
        while j < t.n and _is_lower(t.p[j]):
            j += 1
        r = _suffix_rank(t.p + i + 1, j - i - 1)
        if r == 0:
            t.err_end = j
            return _fail(t, E_SUFFIX_NAME, i)
        t.i = j
        t.kind = T_SUFFIX
        t.rank = r
    elif _is_digit(c):
        # Numbers are read whole, so a digit starts a token only after a suffix name or
        # after the letter (the number apk-tools 2.10 read there: 6.6.2p1).
        _digits(t)
        if t.kind == T_SUFFIX:
            t.kind = T_SUFFIX_NO
            t.rank = K_SUFFIX_NO
        else:
            t.kind = T_LETTER_NO
            t.rank = K_LETTER_NO
    elif c == b'~':
        if t.kind >= T_HASH:
            return _fail(t, E_HASH_AFTER, i)
        j = i + 1
        while j < t.n and _is_hex(t.p[j]):
            j += 1
        if j == i + 1:
            return _fail(t, E_HASH_EMPTY, i)
        t.s = i + 1
        t.len = j - i - 1
        t.i = j
        t.kind = T_HASH
        t.rank = K_HASH
    elif c == b'-':
        if t.kind >= T_REVISION:
            return _fail(t, E_REV_TWICE, i)
        if i + 1 >= t.n or t.p[i + 1] != b'r':
            return _fail(t, E_DASH, i)
        t.i = i + 2
        _digits(t)
        if t.len == 0:
            return _fail(t, E_REV_DIGITS, i)
        t.kind = T_REVISION
        t.rank = K_REVISION
    else:
        return _fail(t, E_CHAR, i)
    return t.kind


cdef inline int _cmp_span(Scan* a, Scan* b) noexcept nogil:
    # memcmp order with the shorter prefix first (apk_blob_sort).
    cdef Py_ssize_t n = a.len if a.len < b.len else b.len
    cdef int r = memcmp(a.p + a.s, b.p + b.s, n)
    if r != 0:
        return -1 if r < 0 else 1
    if a.len != b.len:
        return -1 if a.len < b.len else 1
    return 0


cdef inline int _cmp_tok(Scan* a, Scan* b) noexcept nogil:
    # Same rank on both sides (suffixes are decided by rank alone).
    cdef int k = a.kind
    if k == T_DIGIT:
        if a.p[a.s] == b'0' or b.p[b.s] == b'0':
            return _cmp_span(a, b)
    elif k == T_LETTER:
        return (a.p[a.s] > b.p[b.s]) - (a.p[a.s] < b.p[b.s])
    elif k == T_HASH:
        return _cmp_span(a, b)
    elif k == T_SUFFIX:
        return 0
    return (a.num > b.num) - (a.num < b.num)


cdef inline int _drain(Scan* t) noexcept nogil:
    # Validate the rest of a version whose order is already decided.
    while t.kind < T_END:
        _next(t)
    return t.kind


cdef int _walk(Scan* a, Scan* b) noexcept nogil:
    """Compare two versions token by token; -2 when either is invalid (see a.err, b.err)."""
    cdef int r = 0
    if _first(a, a.p, a.n) == T_INVALID or _first(b, b.p, b.n) == T_INVALID:
        return -2
    while True:
        if a.rank != b.rank:
            r = -1 if a.rank < b.rank else 1
            break
        r = _cmp_tok(a, b)
        if r != 0:
            break
        if _next(a) == T_INVALID or _next(b) == T_INVALID:
            return -2
        if a.kind == T_END and b.kind == T_END:
            return 0
    if _drain(a) == T_INVALID or _drain(b) == T_INVALID:
        return -2
    return r


cdef str _message(str v, Scan* t):
    cdef Py_ssize_t i = t.err_at
    cdef int e = t.err
    if e == E_START:
        m = "a version must start with a digit"
    elif e == E_DOT_AFTER:
        m = "'.' may only follow a number of the version proper"
    elif e == E_DOT_DIGITS:
        m = "'.' must be followed by digits"
    elif e == E_LETTER:
        m = f"letter {v[i]!r} may only follow a number of the version"
    elif e == E_SUFFIX_AFTER:
        m = "'_' suffix after a '~' hash or '-r' revision"
    elif e == E_SUFFIX_NAME:
        m = (f"unknown suffix {v[i + 1 : t.err_end]!r} "
             "(alpha, beta, pre, rc, cvs, svn, git, hg, p)")
    elif e == E_HASH_AFTER:
        m = "'~' hash after another hash or a '-r' revision"
    elif e == E_HASH_EMPTY:
        m = "'~' must be followed by lowercase hex digits"
    elif e == E_REV_TWICE:
        m = "a second '-r' revision"
    elif e == E_DASH:
        m = "'-' may only start an '-rN' revision"
    elif e == E_REV_DIGITS:
        m = "'-r' must be followed by digits"
    else:
        m = f"unexpected character {v[i]!r}"
    return f"{m} at offset {i}"


cdef str _reason(str v, int code):
    # The message names the offset (and character) of the first error, which the code does
    # not carry: v is scanned again, which only an invalid version pays for.
    cdef Py_ssize_t k = 0
    cdef Scan t
    cdef bytes buf
    if str.isascii(v):
        buf = str.encode(v, "ascii")
    else:
        # Every valid character is ASCII, so v is invalid at or before its first non-ASCII
        # character, and the tokeniser never looks past that point: run it on the ASCII
        # prefix plus one 0xFF byte and the error (and its offset, in characters) is v's
        # own. This also covers lone surrogates, which have no UTF-8 buffer at all.
        while ord(v[k]) < 0x80:
            k += 1
        buf = v[:k].encode("ascii") + b"\xff"
    if _first(&t, <const unsigned char*><const char*>buf, len(buf)) != T_INVALID:
        _drain(&t)
    return _message(v, &t)


cdef int _compare(const unsigned char* a, Py_ssize_t na,
                  const unsigned char* b, Py_ssize_t nb, int* code) noexcept nogil:
    cdef Scan sa, sb
    cdef int r
    sa.p = a
    sa.n = na
    sb.p = b
    sb.n = nb
    r = _walk(&sa, &sb)
    if r == -2:
        # The walk stops at the first error of either side; when both are invalid, report
        # a's error, as the pure module does (it parses a whole before b).
        if sa.kind == T_INVALID or _drain(&sa) == T_INVALID:
            code[0] = sa.err
            return CMP_BAD_A
        code[0] = sb.err
        return CMP_BAD_B
    return r


cdef inline void _put_u64(KeyBuf* kb, uint64_t v) noexcept nogil:
    # Length byte (0-8) then the big-endian bytes without leading zero bytes.
    cdef int size = 0
    cdef uint64_t x = v
    while x:
        size += 1
        x >>= 8
    kb_put_unchecked(kb, <unsigned char>size)
    while size:
        size -= 1
        kb_put_unchecked(kb, <unsigned char>((v >> (8 * size)) & 0xFF))


cdef inline void _put_span(KeyBuf* kb, Scan* t) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(t.len):
        kb_put_unchecked(kb, t.p[t.s + i])


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    cdef Scan t
    # Each input byte adds at most 4 key bytes (see the layout); reserve once.
    kb_reserve(kb, 4 * n + 16)
    if _first(&t, s, n) == T_INVALID:
        return t.err
    _put_u64(kb, t.num)
    while _next(&t) < T_END:
        if t.kind == T_SUFFIX:
            kb_put_unchecked(kb, <unsigned char>t.rank)
            continue
        kb_put_unchecked(kb, <unsigned char>t.rank)
        if t.kind == T_DIGIT:
            if t.p[t.s] == b'0':
                kb_put_unchecked(kb, 0x00)
                _put_span(kb, &t)
                kb_put_unchecked(kb, 0x00)
            else:
                kb_put_unchecked(kb, 0x01)
                _put_u64(kb, t.num)
        elif t.kind == T_LETTER:
            kb_put_unchecked(kb, t.p[t.s])
        elif t.kind == T_HASH:
            _put_span(kb, &t)
            kb_put_unchecked(kb, 0x00)
        else:
            _put_u64(kb, t.num)
    if t.kind == T_INVALID:
        return t.err
    kb_put_unchecked(kb, K_END)
    return E_NONE


# Non-ASCII strings are invalid; their message comes from _reason like any other.
cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"apk", str_subclasses=False, build=_build, compare=_compare, wide=NULL,
    non_ascii=E_CHAR, reason=_reason,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__)
