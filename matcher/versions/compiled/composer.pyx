# cython: language_level=3
"""Composer (Packagist) versions: the compiled fast path.

Same semantics, validity, error reasons and keys as ``regsweep.matcher.versions.pure.composer``
(read its docstring for the rules). One pass over the string checks it and streams the
normalized elements straight into the byte key in a stack buffer; ``compare`` is the
memcmp of the two keys, so compare and key cannot disagree (``AUTHORITATIVE``).

This module is the scheme's C part (``_build`` and its error texts); ``compare``, ``key``,
``compare_many`` and ``key_many`` are the shared ones of ``_api.pyx``, bound to it.
"""

from libc.string cimport memcmp

from _spec cimport SchemeSpec, spec_capsule
from _keybuf cimport KeyBuf, kb_reserve

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

# Element tags, in version_compare's rank order (see the pure module).
cdef enum:
    T_UNKNOWN = 0x01
    T_DEV = 0x02
    T_ALPHA = 0x03
    T_BETA = 0x04
    T_RC = 0x05
    T_END = 0x06
    T_NUM = 0x07
    T_PATCH = 0x08

cdef enum:
    E_OK = 0
    E_EMPTY
    E_NONASCII
    E_SPACE
    E_FLAG
    E_BRANCH
    E_BUILD
    E_NODIGIT
    E_FORM

_REASONS = (
    None,
    "empty version",
    "contains a non-ASCII character",
    "whitespace or a control character inside the version",
    "'@' marks a stability flag, which belongs to a constraint, not to a version",
    "a branch (dev-<name>, master, trunk, default) has no place in the version order",
    "'+' must separate a version from non-empty build metadata",
    "does not start with a digit (after an optional 'v')",
    "not a Composer version: [v]N[.N[.N[.N]]] or a date, an optional stability suffix "
    "(-alpha1, -beta.2, -RC1, -p1) and -dev, or a numeric branch alias (1.2.x-dev)",
)

# strtol's saturation value (PHP's long on 64-bit platforms): 19 digits.
cdef const unsigned char* LONG_MAX_DIGITS = <const unsigned char*>b"9223372036854775807"
cdef const unsigned char* BRANCH_X = <const unsigned char*>b"9999999"


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return b'0' <= c <= b'9'


cdef inline bint _letter(unsigned char c) noexcept nogil:
    return b'a' <= (c | 0x20) <= b'z'


cdef inline bint _trim(unsigned char c) noexcept nogil:
    # PHP's trim(): space, \t \n \r \0 \x0B.
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r' or c == 0 or c == 0x0B


cdef inline Py_ssize_t _digits_end(const unsigned char* s, Py_ssize_t i,
                                   Py_ssize_t n) noexcept nogil:
    while i < n and _digit(s[i]):
        i += 1
    return i


cdef inline bint _lower_eq(const unsigned char* s, Py_ssize_t n, const char* word) noexcept nogil:
    # s[:n] equals the lower-case ASCII ``word`` ignoring case (``word`` NUL-terminated).
    cdef Py_ssize_t k = 0
    while k < n:
        if word[k] == 0 or (s[k] | 0x20) != <unsigned char>word[k]:
            return False
        k += 1
    return word[k] == 0


cdef inline void _put_num(KeyBuf* kb, const unsigned char* d, Py_ssize_t n) noexcept nogil:
    # T_NUM + _keybuf's number encoding, clamped to LONG_MAX as strtol does. The caller
    # reserved the room; clamped numbers are at most 19 digits, so the length is one byte.
    cdef unsigned char* o
    cdef Py_ssize_t k
    while n > 0 and d[0] == b'0':
        d += 1
        n -= 1
    if n > 19 or (n == 19 and memcmp(d, LONG_MAX_DIGITS, 19) > 0):
        d = LONG_MAX_DIGITS
        n = 19
    o = kb.data + kb.len
    o[0] = T_NUM
    o[1] = <unsigned char>n
    for k in range(n):
        o[2 + k] = d[k]
    kb.len += 2 + n


cdef inline void _put_tag(KeyBuf* kb, unsigned char t) noexcept nogil:
    kb.data[kb.len] = t
    kb.len += 1


cdef unsigned char _stability(const unsigned char* w, Py_ssize_t n) noexcept nogil:
    """The tag of a stability word (any case), or 0 when it is none."""
    if _lower_eq(w, n, b"alpha") or _lower_eq(w, n, b"a"):
        return T_ALPHA
    if _lower_eq(w, n, b"beta") or _lower_eq(w, n, b"b"):
        return T_BETA
    if _lower_eq(w, n, b"rc"):
        return T_RC
    if _lower_eq(w, n, b"patch") or _lower_eq(w, n, b"pl") or _lower_eq(w, n, b"p"):
        return T_PATCH
    if _lower_eq(w, n, b"stable"):
        return T_UNKNOWN
    return 0


cdef bint _nums_and_dev(const unsigned char* s, Py_ssize_t i, Py_ssize_t n,
                        KeyBuf* kb) noexcept nogil:
    """The numbers after a stability word, then an optional ``[.-]?dev``, to the end."""
    cdef Py_ssize_t j
    while i < n:
        if _digit(s[i]):
            j = _digits_end(s, i, n)
        elif (s[i] == b'.' or s[i] == b'-') and i + 1 < n and _digit(s[i + 1]):
            i += 1
            j = _digits_end(s, i, n)
        else:
            break
        _put_num(kb, s + i, j - i)
        i = j
    if i == n:
        return True
    if s[i] == b'.' or s[i] == b'-':
        i += 1
    if _lower_eq(s + i, n - i, b"dev"):
        _put_tag(kb, T_DEV)
        return True
    return False


cdef bint _modifiers(const unsigned char* s, Py_ssize_t i, Py_ssize_t n,
                     KeyBuf* kb) noexcept nogil:
    """``[._-]? (WORD NUMS)? ([.-]? dev)?`` to the end of ``s``; False when it is not."""
    cdef Py_ssize_t j, w, mark
    cdef unsigned char t
    cdef bint glued = False, ok
    if i < n and (s[i] == b'.' or s[i] == b'_' or s[i] == b'-'):
        i += 1
    j = i
    while j < n and _letter(s[j]):
        j += 1
    w = j - i
    if w == 0:
        if i == n:
            return True
        if (s[i] == b'.' or s[i] == b'-') and _lower_eq(s + i + 1, n - i - 1, b"dev"):
            _put_tag(kb, T_DEV)
            return True
        return False
    if _lower_eq(s + i, w, b"dev"):
        if j != n:
            return False
        _put_tag(kb, T_DEV)
        return True
    t = _stability(s + i, w)
    if t == 0:
        # A word glued to dev ("betadev", "bdev").
        if not (j == n and w > 3 and _lower_eq(s + j - 3, 3, b"dev")):
            return False
        w -= 3
        t = _stability(s + i, w)
        if t == 0:
            return False
        glued = True
    if w == 6 and memcmp(s + i, b"stable", 6) == 0:
        # A lower-case "stable" makes Composer return the bare version, whatever follows
        # (the rest must still parse).
        mark = kb.len
        ok = glued or _nums_and_dev(s, j, n, kb)
        kb.len = mark
        return ok
    _put_tag(kb, t)
    if glued:
        _put_tag(kb, T_DEV)
        return True
    return _nums_and_dev(s, j, n, kb)


cdef bint _classical(const unsigned char* s, Py_ssize_t p, Py_ssize_t n,
                     KeyBuf* kb) noexcept nogil:
    """``N(.N){0,3}`` (first N of 1 to 5 digits) padded to four numbers, then modifiers."""
    cdef Py_ssize_t i, j = _digits_end(s, p, n)
    cdef int parts = 1
    if j - p > 5:
        return False
    _put_num(kb, s + p, j - p)
    i = j
    while parts < 4 and i + 1 < n and s[i] == b'.' and _digit(s[i + 1]):
        j = _digits_end(s, i + 1, n)
        _put_num(kb, s + i + 1, j - i - 1)
        parts += 1
        i = j
    while parts < 4:
        _put_num(kb, s, 0)
        parts += 1
    return _modifiers(s, i, n, kb)


cdef bint _date(const unsigned char* s, Py_ssize_t p, Py_ssize_t n,
                KeyBuf* kb) noexcept nogil:
    """Digit runs split by single ``.``/``:``/``-`` fitting the date pattern, then modifiers."""
    cdef Py_ssize_t i = p, j, digits = 0
    cdef unsigned char c
    while True:
        j = _digits_end(s, i, n)
        if j == i:
            return False
        _put_num(kb, s + i, j - i)
        digits += j - i
        if j + 1 < n and _digit(s[j + 1]):
            c = s[j]
            if c == b'.' or c == b':' or c == b'-':
                if digits % 2 or digits < 4 or digits > 16:
                    return False
                i = j + 1
                continue
        i = j
        break
    if digits < 6 or digits > 19:
        return False
    return _modifiers(s, i, n, kb)


cdef bint _branch(const unsigned char* s, Py_ssize_t p, Py_ssize_t n,
                  KeyBuf* kb) noexcept nogil:
    """A numeric branch alias ``N(.N|.x){0,3}[.-]?dev``: x and missing parts are 9999999."""
    cdef Py_ssize_t i, j, end
    cdef int parts = 1
    cdef unsigned char c
    if n - p < 4 or not _lower_eq(s + n - 3, 3, b"dev"):
        return False
    end = n - 3
    if s[end - 1] == b'.' or s[end - 1] == b'-':
        end -= 1
    j = _digits_end(s, p, n)
    if j == p:
        return False
    _put_num(kb, s + p, j - p)
    i = j
    while i < end and parts < 4:
        if s[i] != b'.' or i + 1 >= end:
            return False
        c = s[i + 1]
        if c == b'x' or c == b'X' or c == b'*':
            _put_num(kb, BRANCH_X, 7)
            i += 2
        else:
            j = _digits_end(s, i + 1, n)
            if j == i + 1:
                return False
            _put_num(kb, s + i + 1, j - i - 1)
            i = j
        parts += 1
    if i != end:
        return False
    while parts < 4:
        _put_num(kb, BRANCH_X, 7)
        parts += 1
    _put_tag(kb, T_DEV)
    return True


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    """Validate ``s`` (ASCII) and write its key into ``kb``; return 0 or an E_* code.

    The checks run in the pure module's order, so both report the same reason.
    """
    cdef Py_ssize_t i = 0, k, plus = -1, p
    cdef bint space = False, flag = False
    cdef unsigned char c
    while n > 0 and _trim(s[n - 1]):
        n -= 1
    while i < n and _trim(s[i]):
        i += 1
    if i == n:
        return E_EMPTY
    s += i
    n -= i
    for k in range(n):
        c = s[k]
        if c <= b' ' or c == 0x7F:
            space = True
        elif c == b'@':
            flag = True
        elif c == b'+' and plus < 0:
            plus = k
    if space:
        return E_SPACE
    if flag:
        return E_FLAG
    if (n >= 4 and _lower_eq(s, 4, b"dev-")) or (
        n == 6 and memcmp(s, b"master", 6) == 0) or (
        n == 5 and memcmp(s, b"trunk", 5) == 0) or (
        n == 7 and memcmp(s, b"default", 7) == 0):
        return E_BRANCH
    if plus >= 0:
        if plus == 0 or plus == n - 1:
            return E_BUILD
        n = plus
    p = 1 if s[0] == b'v' or s[0] == b'V' else 0
    if p >= n or not _digit(s[p]):
        return E_NODIGIT
    # Each input byte adds at most 9 key bytes (".x" adds 9); padding adds at most 27.
    kb_reserve(kb, 9 * n + 40)
    # Composer's three readings, in its order: the first that parses wins.
    kb.len = 0
    if not _classical(s, p, n, kb):
        kb.len = 0
        if not _date(s, p, n, kb):
            kb.len = 0
            if not _branch(s, p, n, kb):
                return E_FORM
    _put_tag(kb, T_END)
    return E_OK


cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"composer", str_subclasses=False, build=_build, compare=NULL, wide=NULL,
    non_ascii=E_NONASCII, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
