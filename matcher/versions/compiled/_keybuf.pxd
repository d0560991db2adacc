# Shared helpers for building order-preserving keys in C: a growable byte buffer with inline
# storage (no allocation for ordinary versions) and the canonical encoding of a decimal number.
# Inline functions only, so every scheme module compiles them in without a shared runtime.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

cdef enum:
    KB_INLINE = 512

cdef struct KeyBuf:
    unsigned char* data
    Py_ssize_t len
    Py_ssize_t cap
    unsigned char inline_[KB_INLINE]


cdef inline void kb_init(KeyBuf* kb) noexcept nogil:
    kb.data = kb.inline_
    kb.len = 0
    kb.cap = KB_INLINE


cdef inline void kb_free(KeyBuf* kb) noexcept nogil:
    if kb.data != kb.inline_:
        free(kb.data)
    kb.data = kb.inline_
    kb.len = 0
    kb.cap = KB_INLINE


cdef inline int kb_reserve(KeyBuf* kb, Py_ssize_t extra) except -1 nogil:
    """Make room for ``extra`` more bytes; call once with a bound, then kb_put_unchecked."""
    cdef Py_ssize_t need = kb.len + extra
    cdef Py_ssize_t cap
    cdef unsigned char* p
    if need <= kb.cap:
        return 0
    cap = kb.cap * 2
    if cap < need:
        cap = need
    p = <unsigned char*>malloc(cap)
    if p == NULL:
        with gil:
            raise MemoryError()
    memcpy(p, kb.data, kb.len)
    if kb.data != kb.inline_:
        free(kb.data)
    kb.data = p
    kb.cap = cap
    return 0


cdef inline void kb_put_unchecked(KeyBuf* kb, unsigned char c) noexcept nogil:
    kb.data[kb.len] = c
    kb.len += 1


cdef inline int kb_put(KeyBuf* kb, unsigned char c) except -1 nogil:
    if kb.len == kb.cap:
        kb_reserve(kb, 1)
    kb.data[kb.len] = c
    kb.len += 1
    return 0


cdef inline int kb_put_number(KeyBuf* kb, const char* digits, Py_ssize_t n) except -1 nogil:
    """Append the canonical key of a run of ASCII digits: numeric order, leading zeros ignored.

    Layout: one length byte (digits after stripping leading zeros) then the digits; a
    length of 255 or more is 0xFF plus four big-endian length bytes. Shorter numbers are
    smaller, and equal lengths compare digit by digit, so memcmp order is numeric order for
    numbers of any size. Zero (and an empty run) is the single byte 0x00.
    """
    cdef Py_ssize_t i
    while n > 0 and digits[0] == b'0':
        digits += 1
        n -= 1
    kb_reserve(kb, n + 5)
    if n < 0xFF:
        kb.data[kb.len] = <unsigned char>n
        kb.len += 1
    else:
        kb.data[kb.len] = 0xFF
        kb.data[kb.len + 1] = <unsigned char>((n >> 24) & 0xFF)
        kb.data[kb.len + 2] = <unsigned char>((n >> 16) & 0xFF)
        kb.data[kb.len + 3] = <unsigned char>((n >> 8) & 0xFF)
        kb.data[kb.len + 4] = <unsigned char>(n & 0xFF)
        kb.len += 5
    for i in range(n):
        kb.data[kb.len + i] = <unsigned char>digits[i]
    kb.len += n
    return 0


cdef inline int kb_cmp(const KeyBuf* a, const KeyBuf* b) noexcept nogil:
    """memcmp order of two keys: -1, 0 or 1."""
    cdef Py_ssize_t n = a.len if a.len < b.len else b.len
    cdef int r = memcmp(a.data, b.data, n)
    if r < 0:
        return -1
    if r > 0:
        return 1
    if a.len < b.len:
        return -1
    if a.len > b.len:
        return 1
    return 0


cdef inline bytes kb_bytes(const KeyBuf* kb):
    return PyBytes_FromStringAndSize(<const char*>kb.data, kb.len)


cdef inline const char* utf8(str s, Py_ssize_t* n) except NULL:
    """Borrow the UTF-8 buffer of ``s`` (cached by CPython; free for ASCII strings)."""
    return PyUnicode_AsUTF8AndSize(s, n)
