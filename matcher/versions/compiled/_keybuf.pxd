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


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Eight bytes as a big-endian number: comparing two of them compares the bytes in
       memcmp order. One unaligned load (and a byte swap on little-endian machines). */
    static inline uint64_t regsweep_kb_be64(const unsigned char* p) {
        uint64_t w;
        memcpy(&w, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        w = __builtin_bswap64(w);
    #elif !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
        w = ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40)
          | ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16)
          | ((uint64_t)p[6] << 8) | (uint64_t)p[7];
    #endif
        return w;
    }
    """
    unsigned long long kb_be64 "regsweep_kb_be64"(const unsigned char* p) noexcept nogil


cdef inline int kb_cmp(const KeyBuf* a, const KeyBuf* b) noexcept nogil:
    """memcmp order of two keys: -1, 0 or 1.

    Eight bytes a step, in line: keys are a few dozen bytes, for which a call to the C
    library's memcmp (through the PLT) costs more than the comparison itself.
    """
    cdef Py_ssize_t n = a.len if a.len < b.len else b.len
    cdef Py_ssize_t i = 0
    cdef unsigned long long x, y
    while i + 8 <= n:
        x = kb_be64(a.data + i)
        y = kb_be64(b.data + i)
        if x != y:
            return -1 if x < y else 1
        i += 8
    while i < n:
        if a.data[i] != b.data[i]:
            return -1 if a.data[i] < b.data[i] else 1
        i += 1
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
