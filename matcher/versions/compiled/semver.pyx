# cython: language_level=3
"""Semantic versions (npm, crates.io, Go modules, NuGet, OSV ``SEMVER``): the compiled fast path.

Same semantics, validity, error reasons and keys as ``regsweep.matcher.versions.pure.semver``
(read its docstring for the rules). Both versions are parsed straight into their byte keys
in stack buffers, and ``compare`` is the memcmp of the two keys, so compare and key cannot
disagree and ``AUTHORITATIVE`` is True.

This module is the scheme's C part (``_build`` and its error texts); ``compare``, ``key``,
``compare_many`` and ``key_many`` are the shared ones of ``_api.pyx``, bound to it.
"""

from libc.string cimport memcpy

from _spec cimport SchemeSpec, spec_capsule
from _keybuf cimport KeyBuf, kb_reserve

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

# Byte classes, as bit flags so that one table load answers "may this byte go here?".
cdef enum:
    F_DIGIT = 1
    F_IDENT = 2    # [0-9A-Za-z-]: a pre-release or build identifier character
    F_WS = 4       # ASCII whitespace, stripped at both ends
    F_PREFIX = 8   # 'v', '=' and whitespace: node-semver loose mode's prefix

# Key tags (see the pure module): release end above pre-release start, components above both.
cdef enum:
    K_PRE = 0x01
    K_FINAL = 0x02
    K_COMPONENT = 0x03
    K_ID_NUM = 0x01
    K_ID_ALNUM = 0x02

# Error codes; the texts are the pure module's, word for word.
cdef enum:
    E_OK = 0
    E_EMPTY
    E_NONASCII
    E_NODIGIT
    E_EMPTYCOMP
    E_TRAILING
    E_EMPTYPRE
    E_BADPRE
    E_EMPTYBUILD
    E_BADBUILD

_REASONS = (
    None,
    "empty version",
    "contains a non-ASCII character",
    "does not start with a number (after an optional 'v' or '=')",
    "empty numeric component: a '.' must be followed by digits",
    "unexpected character after the numbers (expected '.', '-', '+' or the end)",
    "empty pre-release identifier",
    "pre-release identifiers may hold only ASCII letters, digits and '-'",
    "empty build-metadata identifier",
    "build metadata may hold only ASCII letters, digits, '-' and '.'",
)

cdef unsigned char CLS[256]


cdef void _init_classes() noexcept:
    cdef int c
    for c in range(256):
        CLS[c] = 0
    for c in range(ord('0'), ord('9') + 1):
        CLS[c] = F_DIGIT | F_IDENT
    for c in range(ord('a'), ord('z') + 1):
        CLS[c] = F_IDENT
    for c in range(ord('A'), ord('Z') + 1):
        CLS[c] = F_IDENT
    CLS[ord('-')] = F_IDENT
    for c in b" \t\n\v\f\r":
        CLS[c] = F_WS | F_PREFIX
    CLS[ord('v')] |= F_PREFIX
    CLS[ord('=')] = F_PREFIX


_init_classes()


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
    """Parse ``s`` (ASCII) into its key in ``kb``; return 0, or an E_* code if invalid."""
    cdef Py_ssize_t i = 0, j, st, nz, zeros = 0
    cdef unsigned char f
    cdef unsigned char* o
    while n > 0 and CLS[s[n - 1]] & F_WS:
        n -= 1
    while i < n and CLS[s[i]] & F_WS:
        i += 1
    if i == n:
        return E_EMPTY
    # A key takes at most 2 bytes per input byte plus a constant, and long numbers take
    # their 4 extra length bytes from the 255+ digits they need: one reservation suffices.
    kb_reserve(kb, 2 * n + 16)
    o = kb.data + kb.len
    while i < n and CLS[s[i]] & F_PREFIX:
        i += 1
    # The numeric components.
    st = i
    while True:
        j = i
        while i < n and s[i] == b'0':
            i += 1
        nz = i
        while i < n and CLS[s[i]] & F_DIGIT:
            i += 1
        if i == j:
            return E_NODIGIT if j == st else E_EMPTYCOMP
        if nz == i:
            # A zero component is written only once a non-zero one follows: trailing
            # zeros are padding, so 1.2 and 1.2.0 share a key.
            zeros += 1
        else:
            while zeros > 0:
                o[0] = K_COMPONENT
                o[1] = 0
                o += 2
                zeros -= 1
            o[0] = K_COMPONENT
            o = _put_num(o + 1, s + nz, i - nz)
        if i < n and s[i] == b'.':
            i += 1
            continue
        break
    if i < n and s[i] == b'-':
        # Pre-release identifiers, each written as a key item as it is read.
        o[0] = K_PRE
        o += 1
        i += 1
        while True:
            j = i
            f = F_DIGIT
            while i < n and CLS[s[i]] & F_IDENT:
                f &= CLS[s[i]]
                i += 1
            if i == j:
                return E_BADPRE if i < n and s[i] != b'+' and s[i] != b'.' else E_EMPTYPRE
            if f:
                o[0] = K_ID_NUM
                while j < i - 1 and s[j] == b'0':
                    j += 1
                if s[j] == b'0':
                    o[1] = 0
                    o += 2
                else:
                    o = _put_num(o + 1, s + j, i - j)
            else:
                o[0] = K_ID_ALNUM
                o += 1
                while j < i:
                    o[0] = s[j]
                    o += 1
                    j += 1
                o[0] = 0
                o += 1
            if i < n and s[i] == b'.':
                i += 1
                continue
            if i < n and s[i] != b'+':
                return E_BADPRE
            break
    else:
        o[0] = K_FINAL
        o += 1
    kb.len = o - kb.data
    if i < n and s[i] == b'+':
        # Build metadata: validated, never part of the key.
        i += 1
        while True:
            j = i
            while i < n and CLS[s[i]] & F_IDENT:
                i += 1
            if i == j:
                return E_BADBUILD if i < n and s[i] != b'.' else E_EMPTYBUILD
            if i < n and s[i] == b'.':
                i += 1
                continue
            if i < n:
                return E_BADBUILD
            break
    if i < n:
        return E_TRAILING
    return E_OK


cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"semver", str_subclasses=False, build=_build, compare=NULL, wide=NULL,
    non_ascii=E_NONASCII, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
