# cython: language_level=3
"""RubyGems versions (``Gem::Version``): the compiled fast path.

Same semantics, validity, error reasons and keys as ``regsweep.matcher.versions.pure.gem``
(read its docstring for the rules). One pass checks a version against the pattern and
streams its canonical segments straight into the byte key in a stack buffer; ``compare``
is the memcmp of the two keys, so compare and key cannot disagree (``AUTHORITATIVE``).

This module is the scheme's C part (``_build`` and its error texts); ``compare``, ``key``,
``compare_many`` and ``key_many`` are the shared ones of ``_api.pyx``, bound to it.
"""

from libc.string cimport memcpy

from _spec cimport SchemeSpec, spec_capsule
from _keybuf cimport KeyBuf, kb_reserve

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

cdef enum:
    F_DIGIT = 1
    F_ALPHA = 2
    F_WS = 4       # Ruby's \s: space, \t \n \v \f \r

# Item tags (see the pure module): letters < end < number, as ``<=>`` ranks them against 0.
cdef enum:
    K_ALPHA = 0x01
    K_END = 0x02
    K_NUM = 0x03

cdef enum:
    E_OK = 0
    E_EMPTY
    E_NONASCII
    E_NODIGIT
    E_EMPTYSEG
    E_BADCHAR
    E_EMPTYPRE
    E_BADPRE

_REASONS = (
    None,
    "empty version (RubyGems reads a blank string as 0; regsweep refuses it)",
    "contains a non-ASCII character",
    "does not start with a digit",
    "empty segment: a '.' must be followed by letters or digits",
    "unexpected character: segments hold only ASCII letters and digits",
    "empty identifier in the part after '-'",
    "the part after '-' may hold only ASCII letters, digits, '-' and '.'",
)

cdef unsigned char CLS[256]


cdef void _init_classes() noexcept:
    cdef int c
    for c in range(256):
        CLS[c] = 0
    for c in range(ord('0'), ord('9') + 1):
        CLS[c] = F_DIGIT
    for c in range(ord('a'), ord('z') + 1):
        CLS[c] = F_ALPHA
    for c in range(ord('A'), ord('Z') + 1):
        CLS[c] = F_ALPHA
    for c in b" \t\n\v\f\r":
        CLS[c] = F_WS


_init_classes()


cdef inline unsigned char* _put_k(unsigned char* o, Py_ssize_t k,
                                 unsigned char flip) noexcept nogil:
    # Zeros before an item: ascending (flip 0) for letters, descending (flip 0xFF) for
    # numbers; one byte below 255, else 0xFF and four big-endian bytes.
    if k < 0xFF:
        o[0] = (<unsigned char>k) ^ flip
        return o + 1
    o[0] = 0xFF ^ flip
    o[1] = (<unsigned char>((k >> 24) & 0xFF)) ^ flip
    o[2] = (<unsigned char>((k >> 16) & 0xFF)) ^ flip
    o[3] = (<unsigned char>((k >> 8) & 0xFF)) ^ flip
    o[4] = (<unsigned char>(k & 0xFF)) ^ flip
    return o + 5


cdef inline unsigned char* _put_num(unsigned char* o, const unsigned char* d,
                                   Py_ssize_t n) noexcept nogil:
    # _keybuf.kb_put_number's encoding, byte for byte, for digits already stripped of
    # leading zeros: written through a local pointer, which the compiler keeps in a
    # register (stores through KeyBuf.data would make it reload KeyBuf.len every byte).
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
    if n <= 16:
        # Version numbers are short: a plain byte loop, kept scalar (a vectorised copy's
        # set-up costs more than it saves at these lengths).
        while n > 0:
            o[0] = d[0]
            o += 1
            d += 1
            n -= 1
        return o
    memcpy(o, d, n)
    return o + n


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    """Validate ``s`` (ASCII) and stream its key into ``kb``; return 0 or an E_* code.

    One left-to-right pass checks ANCHORED_VERSION_PATTERN (first segment widened) and
    writes the items as it goes; it reports the first error at the same place, with the
    same code, as the pure module's separate validation pass.
    """
    cdef Py_ssize_t i = 0, j, zeros = 0
    cdef bint in_letters = False, after_dash = False
    cdef unsigned char c, f
    cdef unsigned char* o
    while n > 0 and CLS[s[n - 1]] & F_WS:
        n -= 1
    while i < n and CLS[s[i]] & F_WS:
        i += 1
    if i == n:
        return E_EMPTY
    if not CLS[s[i]] & F_DIGIT:
        return E_NODIGIT
    # At most 6 key bytes per input byte ('-' becomes a whole "pre" item) plus the end;
    # a 5-byte zero count needs 255+ zero segments before it: one reservation suffices.
    kb_reserve(kb, 6 * (n - i) + 16)
    o = kb.data + kb.len
    while True:
        # One dot-separated part: runs of digits and letters (and, after the first '-',
        # dashes, each of which reads as a segment "pre").
        j = i
        while i < n:
            c = s[i]
            f = CLS[c]
            if f & F_DIGIT:
                while i < n and s[i] == b'0':
                    i += 1
                j = i
                while i < n and CLS[s[i]] & F_DIGIT:
                    i += 1
                if j == i:
                    # A zero segment: it only counts if a non-zero item follows.
                    zeros += 1
                else:
                    o[0] = K_NUM
                    o = _put_k(o + 1, zeros, 0xFF)
                    zeros = 0
                    o = _put_num(o, s + j, i - j)
                j = -1
                continue
            if not (f & F_ALPHA or (c == b'-' and after_dash)):
                break
            if not in_letters:
                # Zeros right before the first letter segment end the numeric half:
                # canonical_segments drops them as its trailing zeros.
                zeros = 0
                in_letters = True
            o[0] = K_ALPHA
            o = _put_k(o + 1, zeros, 0)
            zeros = 0
            if c == b'-':
                o[0] = b'p'
                o[1] = b'r'
                o[2] = b'e'
                o += 3
                i += 1
            else:
                while i < n and CLS[s[i]] & F_ALPHA:
                    o[0] = s[i]
                    o += 1
                    i += 1
            o[0] = 0
            o += 1
            j = -1
        if j >= 0:
            # The part is empty: a doubled or trailing separator, or a stray character.
            if after_dash:
                return E_BADPRE if i < n and s[i] != b'.' else E_EMPTYPRE
            return E_BADCHAR if i < n and s[i] != b'.' and s[i] != b'-' else E_EMPTYSEG
        if i == n:
            break
        c = s[i]
        i += 1
        if c == b'.':
            continue
        if c == b'-' and not after_dash:
            # The first '-' starts the pre-release part: gsub("-", ".pre.") makes it a
            # segment "pre" of its own.
            after_dash = True
            if not in_letters:
                zeros = 0
                in_letters = True
            o[0] = K_ALPHA
            o = _put_k(o + 1, zeros, 0)
            zeros = 0
            o[0] = b'p'
            o[1] = b'r'
            o[2] = b'e'
            o[3] = 0
            o += 4
            continue
        return E_BADPRE if after_dash else E_BADCHAR
    # Zeros still pending are trailing: dropped, the end stands for zeros forever.
    o[0] = K_END
    kb.len = o + 1 - kb.data
    return E_OK


cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"gem", str_subclasses=False, build=_build, compare=NULL, wide=NULL,
    non_ascii=E_NONASCII, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
