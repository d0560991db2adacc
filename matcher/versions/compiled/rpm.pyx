# cython: language_level=3
"""RPM versions (RHEL family, Fedora, SUSE, Amazon Linux): the compiled fast path.

Same semantics, validity and keys as ``regsweep.matcher.versions.pure.rpm`` (read its
docstring for the rules): ``[epoch:]version[-release]``, epoch before the first ``:``,
release after the last ``-``, each part compared with rpm 4.18's ``rpmvercmp``; a missing
release is the empty release (rpm's "NULL release matches any" is a matching-level rule).
``compare`` runs rpmvercmp directly on the UTF-8 buffers; ``key`` encodes the token
sequence (``~`` < end < ``^`` < alpha < numeric), which orders exactly as rpmvercmp, so
``AUTHORITATIVE`` is True.

This module is the scheme's C part (``_build``, the comparator ``_compare`` and how errors
read); ``compare``, ``key``, ``compare_many`` and ``key_many`` are the shared ones of
``_api.pyx``, bound to it.
"""

from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

from _keybuf cimport KeyBuf, kb_put, kb_put_number, kb_put_unchecked, kb_reserve
from _spec cimport CMP_BAD_A, CMP_BAD_B, SchemeSpec, spec_capsule

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

# Byte classes. Everything below C_DIGIT is "not part of a segment" for rpmvercmp, so the
# separator skip is one table load and one compare; the parser only has to look closer
# at the three special classes between C_SEP and C_DIGIT.
cdef enum:
    C_SEP = 0      # '.', '_', '+', any other punctuation, every byte >= 0x80
    C_HYPHEN = 1   # '-': the release separator (a separator inside the version)
    C_COLON = 2    # ':': the epoch separator
    C_BAD = 3      # ASCII controls, space, DEL
    C_DIGIT = 4
    C_ALPHA = 5
    C_TILDE = 6
    C_CARET = 7

# Key tags: '~' < end < '^' < alpha < numeric, as rpmvercmp orders those tokens.
cdef enum:
    K_TILDE = 0x01
    K_END = 0x02
    K_CARET = 0x03
    K_ALPHA = 0x04
    K_NUM = 0x05

cdef unsigned char CLS[256]


cdef void _init_classes() noexcept:
    cdef int c
    for c in range(256):
        CLS[c] = C_SEP
    for c in range(0x21):
        CLS[c] = C_BAD
    CLS[0x7F] = C_BAD
    for c in range(ord('0'), ord('9') + 1):
        CLS[c] = C_DIGIT
    for c in range(ord('a'), ord('z') + 1):
        CLS[c] = C_ALPHA
    for c in range(ord('A'), ord('Z') + 1):
        CLS[c] = C_ALPHA
    CLS[ord('~')] = C_TILDE
    CLS[ord('^')] = C_CARET
    CLS[ord('-')] = C_HYPHEN
    CLS[ord(':')] = C_COLON


_init_classes()


# One parsed EVR: spans into the (borrowed) UTF-8 buffer of the Python string.
cdef struct Evr:
    const unsigned char* e   # epoch digits; en == 0 when there is no epoch (means 0)
    Py_ssize_t en
    const unsigned char* v
    Py_ssize_t vn
    const unsigned char* r   # release; rn == 0 when there is no release
    Py_ssize_t rn


# Error codes of _parse; the texts are the pure module's, word for word.
cdef enum:
    OK = 0
    E_EMPTY
    E_SURROGATE
    E_CONTROL
    E_COLONS
    E_EPOCH_EMPTY
    E_EPOCH_NAN
    E_VERSION_EMPTY
    E_RELEASE_EMPTY
    E_RELEASE_SEPARATORS
    E_RELEASE_TILDE

_REASONS = (
    None,
    "empty string",
    "contains a lone surrogate (not encodable as UTF-8)",
    "contains whitespace or a control character",
    "more than one ':'",
    "empty epoch before ':'",
    "epoch is not a non-negative integer",
    "empty version",
    "empty release after '-'",
    "release holds only separators",
    "release starts with '~'",
)


cdef bytes _wide(str v, int* code):
    # Bytes >= 0x80 are separators to rpmvercmp: a non-ASCII version is read as UTF-8.
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError:
        code[0] = E_SURROGATE
        return None


cdef inline uint64_t _special_bytes(uint64_t w) noexcept nogil:
    # SWAR: the high bit of each byte of the result is set exactly when that byte of w is
    # <= 0x20, 0x7F, '-' or ':'. No add can carry into the next byte: (b & 0x7F) + 0x7F
    # is at most 0xFE. Bytes >= 0x80 (UTF-8) are never flagged: they are separators.
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL
    cdef uint64_t lt = ((w & low7) + ones * (0x80 - 0x21)) | w
    cdef uint64_t x1 = w ^ (ones * 0x7F)
    cdef uint64_t x2 = w ^ (ones * 0x2D)
    cdef uint64_t x3 = w ^ (ones * 0x3A)
    x1 = ((x1 & low7) + low7) | x1
    x2 = ((x2 & low7) + low7) | x2
    x3 = ((x3 & low7) + low7) | x3
    return ~(lt & x1 & x2 & x3) & ~low7


cdef inline int _scan_bytes(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                            Py_ssize_t* colon, Py_ssize_t* hyphen) noexcept nogil:
    # 0 when s[i:end] is fine, 1 for a forbidden byte, 2 for a second ':'.
    cdef unsigned char c
    while i < end:
        c = CLS[s[i]]
        if c != C_SEP and c < C_DIGIT:
            if c == C_HYPHEN:
                hyphen[0] = i
            elif c == C_COLON:
                if colon[0] >= 0:
                    return 2
                colon[0] = i
            else:
                return 1
        i += 1
    return 0


cdef int _parse(const unsigned char* s, Py_ssize_t n, Evr* x) noexcept nogil:
    """Split s[:n] into epoch, version and release; 0 or an error code."""
    cdef Py_ssize_t end, i = 0
    cdef Py_ssize_t colon = -1
    cdef Py_ssize_t hyphen = -1
    cdef uint64_t w
    cdef int bad = 0
    if n == 0:
        return E_EMPTY
    # Every byte is checked (a bad one late in the string must raise even when the
    # comparison is decided early), eight at a time; only words holding a special byte
    # ('-', ':' or a forbidden one) are looked at byte by byte.
    while i < n:
        if i + 8 <= n:
            memcpy(&w, s + i, 8)
            end = i + 8
        else:
            w = 0x6161616161616161ULL  # pad the tail with harmless 'a's
            memcpy(&w, s + i, n - i)
            end = n
        if _special_bytes(w) != 0:
            bad = _scan_bytes(s, i, end, &colon, &hyphen)
            if bad != 0:
                break
        i = end
    if bad == 1:
        return E_CONTROL
    if bad == 2:
        return E_COLONS
    x.e = s
    x.en = 0
    i = 0
    if colon >= 0:
        if colon == 0:
            return E_EPOCH_EMPTY
        while i < colon:
            if CLS[s[i]] != C_DIGIT:
                return E_EPOCH_NAN
            i += 1
        x.en = colon
        i = colon + 1
    # A valid epoch holds no '-', so a hyphen found at all lies after the colon.
    x.v = s + i
    if hyphen >= 0:
        x.vn = hyphen - i
        x.r = s + hyphen + 1
        x.rn = n - hyphen - 1
    else:
        x.vn = n - i
        x.r = s + n
        x.rn = 0
    if x.vn == 0:
        return E_VERSION_EMPTY
    if hyphen >= 0:
        if x.rn == 0:
            return E_RELEASE_EMPTY
        # The first thing in the release that orders must exist and must not be '~':
        # otherwise rpm.ver and rpm.labelCompare disagree on it against a missing release.
        i = 0
        while i < x.rn and CLS[x.r[i]] < C_DIGIT:
            i += 1
        if i == x.rn:
            return E_RELEASE_SEPARATORS
        if x.r[i] == b'~':
            return E_RELEASE_TILDE
    return 0


cdef inline int _numcmp(const unsigned char* a, Py_ssize_t an,
                        const unsigned char* b, Py_ssize_t bn) noexcept nogil:
    # Two runs of ASCII digits as numbers of any size: drop leading zeros, longer wins,
    # then digit by digit.
    cdef int r
    while an > 0 and a[0] == b'0':
        a += 1
        an -= 1
    while bn > 0 and b[0] == b'0':
        b += 1
        bn -= 1
    if an != bn:
        return 1 if an > bn else -1
    r = memcmp(a, b, an)
    return (r > 0) - (r < 0)


cdef int _vercmp(const unsigned char* a, Py_ssize_t an,
                 const unsigned char* b, Py_ssize_t bn) noexcept nogil:
    """rpm 4.18 rpmvercmp() on two spans (0 stands for rpm's NUL: validation bans NUL)."""
    cdef Py_ssize_t i = 0, j = 0, si, sj, la, lb
    cdef unsigned char ca, cb, ka, kb
    cdef int r
    if an == bn and memcmp(a, b, an) == 0:
        return 0
    while True:
        while i < an and CLS[a[i]] < C_DIGIT:
            i += 1
        while j < bn and CLS[b[j]] < C_DIGIT:
            j += 1
        ca = a[i] if i < an else 0
        cb = b[j] if j < bn else 0
        # '~' sorts before everything, the end of the string included.
        if ca == b'~' or cb == b'~':
            if ca != b'~':
                return 1
            if cb != b'~':
                return -1
            i += 1
            j += 1
            continue
        # '^' sorts after the end of the string but before any segment.
        if ca == b'^' or cb == b'^':
            if ca == 0:
                return -1
            if cb == 0:
                return 1
            if ca != b'^':
                return 1
            if cb != b'^':
                return -1
            i += 1
            j += 1
            continue
        if ca == 0 or cb == 0:
            if ca == cb:
                return 0
            return -1 if ca == 0 else 1
        ka = CLS[ca]
        kb = CLS[cb]
        if ka != kb:
            # One numeric, one alpha: numeric segments are newer.
            return 1 if ka == C_DIGIT else -1
        si = i
        sj = j
        i += 1
        j += 1
        while i < an and CLS[a[i]] == ka:
            i += 1
        while j < bn and CLS[b[j]] == ka:
            j += 1
        if ka == C_DIGIT:
            r = _numcmp(a + si, i - si, b + sj, j - sj)
            if r != 0:
                return r
        else:
            # strcmp on letter runs: common prefix, then the shorter run is smaller.
            la = i - si
            lb = j - sj
            r = memcmp(a + si, b + sj, la if la < lb else lb)
            if r != 0:
                return 1 if r > 0 else -1
            if la != lb:
                return 1 if la > lb else -1


cdef int _compare(const unsigned char* a, Py_ssize_t na,
                  const unsigned char* b, Py_ssize_t nb, int* code) noexcept nogil:
    cdef Evr x, y
    cdef int r
    code[0] = _parse(a, na, &x)
    if code[0] != OK:
        return CMP_BAD_A
    if a == b and na == nb:
        return 0        # the same string object: valid, and equal to itself
    code[0] = _parse(b, nb, &y)
    if code[0] != OK:
        return CMP_BAD_B
    r = _numcmp(x.e, x.en, y.e, y.en)
    if r != 0:
        return r
    r = _vercmp(x.v, x.vn, y.v, y.vn)
    if r != 0:
        return r
    return _vercmp(x.r, x.rn, y.r, y.rn)


cdef int _put_tokens(KeyBuf* kb, const unsigned char* s, Py_ssize_t n) except -1 nogil:
    cdef Py_ssize_t i = 0, st
    cdef unsigned char k
    while True:
        while i < n and CLS[s[i]] < C_DIGIT:
            i += 1
        if i >= n:
            break
        k = CLS[s[i]]
        if k == C_TILDE:
            kb_put(kb, K_TILDE)
            i += 1
        elif k == C_CARET:
            kb_put(kb, K_CARET)
            i += 1
        else:
            st = i
            i += 1
            while i < n and CLS[s[i]] == k:
                i += 1
            if k == C_DIGIT:
                kb_put(kb, K_NUM)
                kb_put_number(kb, <const char*>(s + st), i - st)
            else:
                # Letters then 0x00: a prefix sorts first (strcmp), and nothing after
                # the run can be mistaken for more letters.
                kb_reserve(kb, i - st + 2)
                kb_put_unchecked(kb, K_ALPHA)
                while st < i:
                    kb_put_unchecked(kb, s[st])
                    st += 1
                kb_put_unchecked(kb, 0)
    kb_put(kb, K_END)
    return 0


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    cdef Evr x
    cdef int code = _parse(s, n, &x)
    if code != OK:
        return code
    kb_put_number(kb, <const char*>x.e, x.en)
    _put_tokens(kb, x.v, x.vn)
    _put_tokens(kb, x.r, x.rn)
    return OK


cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"rpm", str_subclasses=False, build=_build, compare=_compare, wide=_wide,
    non_ascii=OK, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
