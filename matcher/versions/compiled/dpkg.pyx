# cython: language_level=3
"""dpkg versions (Debian, Ubuntu): the compiled fast path.

Same semantics, validity rules, error reasons and keys as
``regsweep.matcher.versions.pure.dpkg`` (its docstring states the rules and the decisions):
``[epoch:]upstream[-revision]`` compared as dpkg 1.21's ``dpkg_version_compare``, which is
epoch numerically, then ``verrevcmp`` on the upstream parts, then on the revisions.

``compare`` validates both strings (one branch-free pass each for the common shape: no
epoch, no blank, no invalid byte), skips their common bytes and runs verrevcmp on the
borrowed UTF-8 buffers from there, stopping at the first difference; no key is built and
nothing is allocated. Under cachegrind, beyond a no-op Cython call, that is about 360
instructions per call on real Debian versions (random or neighbouring pairs), where
``apt_pkg.version_compare`` takes 870 to 1,050. ``key`` writes the pair sequence of each
part into a ``KeyBuf`` (layout in the pure module); memcmp order of keys is exactly compare
order, so ``AUTHORITATIVE`` is True.

This module is the scheme's C part (``_build``, the comparator ``_compare`` and how errors
read); ``compare``, ``key``, ``compare_many`` and ``key_many`` are the shared ones of
``_api.pyx``, bound to it.
"""

from _keybuf cimport KeyBuf, kb_put_number, kb_put_unchecked, kb_reserve
from _spec cimport CMP_BAD_A, CMP_BAD_B, SchemeSpec, spec_capsule

from regsweep.matcher.versions.compiled._api import export as _export

AUTHORITATIVE = True

# Byte classes, as bit flags. '-' has none (it is tracked by position); any F_SLOW or
# F_COLON byte sends a version from the fast scan to the full parser, and there any byte
# without F_PLAIN takes the branch that looks closer.
cdef enum:
    F_PLAIN = 1      # alnum, '.', '+', '~': valid in both the upstream part and the revision
    F_SLOW = 2       # blank, or a byte dpkg calls an invalid character: the full parser
    F_COLON = 4      # ':' (an epoch, or an invalid colon): the full parser as well
    F_HYPHEN = 8     # '-': the fast scan then looks for the last one from the end

# Weights of verrevcmp's ``order()``, shifted to fit a byte and shared with the key:
# '~' sorts before the end of a non-digit run, the end before everything else, letters
# by ASCII, the other allowed punctuation (+ - . :) above every letter, by ASCII.
# A digit reads as the end of the run, exactly as dpkg's order() maps digits to 0.
cdef enum:
    W_TILDE = 0x01
    W_TERM = 0x02    # end of a non-digit run (a digit, or the end of the part)
    W_END = 0x02     # end of a part: sits where a next non-digit run would start
    W_OTHER = 0x80   # + ASCII code for . + - :

cdef unsigned char FLAGS[256]
cdef unsigned char WEIGHT[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        FLAGS[c] = F_SLOW
        WEIGHT[c] = 0xFF    # never read: such bytes are rejected before any comparison
    for c in range(ord('0'), ord('9') + 1):
        FLAGS[c] = F_PLAIN
        WEIGHT[c] = W_TERM
    for c in range(ord('A'), ord('Z') + 1):
        FLAGS[c] = F_PLAIN
        WEIGHT[c] = <unsigned char>c
    for c in range(ord('a'), ord('z') + 1):
        FLAGS[c] = F_PLAIN
        WEIGHT[c] = <unsigned char>c
    for c in b".+":
        FLAGS[c] = F_PLAIN
        WEIGHT[c] = <unsigned char>(W_OTHER + c)
    for c in b"-:":         # valid in the upstream part only; the parser tracks them
        FLAGS[c] = 0
        WEIGHT[c] = <unsigned char>(W_OTHER + c)
    FLAGS[ord(':')] = F_COLON
    FLAGS[ord('-')] = F_HYPHEN
    FLAGS[ord('~')] = F_PLAIN
    WEIGHT[ord('~')] = W_TILDE


_init_tables()

# Error codes of _parse; the messages are dpkg's own (lib/dpkg/parsehelp.c, parseversion).
cdef enum:
    OK = 0
    E_EMPTY
    E_SPACES
    E_EPOCH_EMPTY
    E_EPOCH_NAN
    E_EPOCH_NEGATIVE
    E_EPOCH_BIG
    E_AFTER_COLON
    E_REVISION_EMPTY
    E_UPSTREAM_EMPTY
    E_UPSTREAM_CHAR
    E_REVISION_CHAR

_REASONS = (
    "",
    "version string is empty",
    "version string has embedded spaces",
    "epoch in version is empty",
    "epoch in version is not number",
    "epoch in version is negative",
    "epoch in version is too big",
    "nothing after colon in version number",
    "revision number is empty",
    "version number is empty",
    "invalid character in version number",
    "invalid character in revision number",
)


# One parsed version: spans into the borrowed UTF-8 buffer of the Python string.
cdef struct Ver:
    long epoch
    const unsigned char* ep     # epoch digits (sign and leading space skipped); may be empty
    const unsigned char* ep_end
    const unsigned char* up
    const unsigned char* up_end
    const unsigned char* rev    # rev == rev_end when there is no revision (means "0")
    const unsigned char* rev_end


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return <unsigned char>(c - 48) < 10


cdef inline bint _is_blank(unsigned char c) noexcept nogil:
    # dpkg's c_isblank: space and tab only.
    return c == 32 or c == 9


cdef inline bint _is_invalid(unsigned char c) noexcept nogil:
    # Not allowed in the upstream part (blanks never reach this test).
    return (FLAGS[c] & F_SLOW) != 0


cdef int _parse(const unsigned char* s, Py_ssize_t n, Ver* v) noexcept nogil:
    """dpkg's parseversion on s[0:n]; 0 or an error code.

    Most versions have no epoch, no blank and no invalid byte: one branch-free pass (the
    OR of the byte classes) settles those, and the last hyphen is then found from the end
    (revisions are short). Anything else goes to _parse_full, which runs dpkg's checks in
    dpkg's order.
    """
    cdef unsigned char acc = 0
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t hyphen = -1
    if n >= 4:
        # Four bytes a step, then the last four (overlapping: OR does not mind), so no
        # tail loop with its hard-to-predict trip count.
        while i + 4 <= n:
            acc |= FLAGS[s[i]] | FLAGS[s[i + 1]] | FLAGS[s[i + 2]] | FLAGS[s[i + 3]]
            i += 4
        acc |= FLAGS[s[n - 4]] | FLAGS[s[n - 3]] | FLAGS[s[n - 2]] | FLAGS[s[n - 1]]
    else:
        while i < n:
            acc |= FLAGS[s[i]]
            i += 1
    if n == 0 or (acc & (F_SLOW | F_COLON)):
        return _parse_full(s, n, v)
    if acc & F_HYPHEN:
        hyphen = n - 1
        while s[hyphen] != 45:
            hyphen -= 1
    v.epoch = 0
    v.ep = s
    v.ep_end = s
    v.up = s
    if hyphen >= 0:
        v.up_end = s + hyphen
        v.rev = s + hyphen + 1
        if hyphen + 1 == n:
            return E_REVISION_EMPTY
        if hyphen == 0:
            return E_UPSTREAM_EMPTY
    else:
        v.up_end = s + n
        v.rev = s + n
    v.rev_end = s + n
    return OK


cdef int _parse_full(const unsigned char* s, Py_ssize_t n, Ver* v) noexcept nogil:
    """dpkg's parseversion on s[0:n], checks in dpkg's order; 0 or an error code."""
    cdef const unsigned char* p = s
    cdef const unsigned char* end = s + n
    cdef const unsigned char* q
    cdef const unsigned char* vend
    cdef const unsigned char* colon = NULL
    cdef const unsigned char* last_colon = NULL
    cdef const unsigned char* hyphen = NULL
    cdef const unsigned char* bad = NULL
    cdef unsigned char c
    cdef bint negative = False
    cdef long long value = 0       # up to 10 digits: no overflow
    while p < end and _is_blank(p[0]):
        p += 1
    if p == end:
        return E_EMPTY
    # One pass finds the first blank, the first and last colon, the last hyphen and the
    # first invalid byte; plain bytes cost one table load.
    q = p
    while q < end:
        c = q[0]
        if not (FLAGS[c] & F_PLAIN):
            if c == 58:          # ':'
                if colon == NULL:
                    colon = q
                last_colon = q
            elif c == 45:        # '-'
                hyphen = q
            elif _is_blank(c):
                break
            elif bad == NULL:
                bad = q
        q += 1
    vend = q
    while q < end:           # only trailing blanks may follow
        if not _is_blank(q[0]):
            return E_SPACES
        q += 1
    v.epoch = 0
    v.ep = p
    v.ep_end = p
    if colon != NULL:
        # strtol(string, &end, 10): leading isspace() (only \n \v \f \r can remain after
        # the blank trim), an optional sign, then digits that must reach the colon.
        while p < colon and (p[0] == 32 or (p[0] >= 9 and p[0] <= 13)):
            p += 1
        if p < colon and (p[0] == 43 or p[0] == 45):
            negative = p[0] == 45
            p += 1
        q = p
        while q < colon and _is_digit(q[0]):
            q += 1
        if q == p:
            return E_EPOCH_EMPTY
        if q != colon:
            return E_EPOCH_NAN
        while p < q and p[0] == 48:      # leading zeros do not count towards "too big"
            p += 1
        if negative and p < q:
            return E_EPOCH_NEGATIVE
        if q - p > 10:
            return E_EPOCH_BIG
        v.ep = p
        v.ep_end = q
        while p < q:
            value = value * 10 + (p[0] - 48)
            p += 1
        if value > 2147483647:           # INT_MAX: dpkg keeps the epoch in an int
            return E_EPOCH_BIG
        v.epoch = value
        p = colon + 1
        if p == vend:
            return E_AFTER_COLON
    # The revision starts after the last hyphen of what follows the epoch.
    if hyphen != NULL and hyphen >= p:
        v.rev = hyphen + 1
        v.rev_end = vend
        if v.rev == vend:
            return E_REVISION_EMPTY
        v.up_end = hyphen
    else:
        hyphen = NULL
        v.rev = vend
        v.rev_end = vend
        v.up_end = vend
    v.up = p
    if p == v.up_end:
        return E_UPSTREAM_EMPTY
    # dpkg only warns about invalid characters (and stops at a non-digit first character
    # without looking); regsweep rejects them everywhere, as dpkg's strict parser does.
    if bad != NULL:
        if bad < p:
            # The first one sat before the epoch colon, where strtol skipped it as space;
            # look again from the upstream part on (rare: never in real data).
            bad = NULL
            q = p
            while q < vend:
                if _is_invalid(q[0]):
                    bad = q
                    break
                q += 1
        if bad != NULL:
            return E_UPSTREAM_CHAR if bad < v.up_end else E_REVISION_CHAR
    if hyphen != NULL and last_colon > hyphen:
        return E_REVISION_CHAR          # ':' is allowed in the upstream part only
    return OK


cdef int _verrevcmp(const unsigned char* a, const unsigned char* ae,
                    const unsigned char* b, const unsigned char* be) noexcept nogil:
    """dpkg's verrevcmp on two validated spans, as -1/0/1."""
    cdef unsigned char wa, wb
    cdef int diff
    while a < ae or b < be:
        # Non-digit run: weights until both sides reach a digit or their end.
        while True:
            wa = WEIGHT[a[0]] if a < ae else W_TERM
            wb = WEIGHT[b[0]] if b < be else W_TERM
            if wa != wb:
                return -1 if wa < wb else 1
            if wa == W_TERM:
                break
            a += 1
            b += 1
        # Digit run: numeric, leading zeros ignored; a longer run is larger, else the
        # first differing digit decides.
        while a < ae and a[0] == 48:
            a += 1
        while b < be and b[0] == 48:
            b += 1
        diff = 0
        while a < ae and b < be and _is_digit(a[0]) and _is_digit(b[0]):
            if diff == 0:
                diff = <int>a[0] - <int>b[0]
            a += 1
            b += 1
        if a < ae and _is_digit(a[0]):
            return 1
        if b < be and _is_digit(b[0]):
            return -1
        if diff != 0:
            return -1 if diff < 0 else 1
    return 0


cdef inline int _cmp_part(const unsigned char* a, const unsigned char* ae,
                          const unsigned char* b, const unsigned char* be) noexcept nogil:
    # Skip the common bytes first (often most of the string: same upstream, or a rebuild
    # of the same revision), then step back to the start of a digit run cut in two, since
    # verrevcmp reads digit runs whole; a cut inside a non-digit run is harmless, as its
    # character loop carries no state. Same result as verrevcmp from the start.
    cdef Py_ssize_t k = 0
    cdef Py_ssize_t n = ae - a
    if be - b < n:
        n = be - b
    while k < n and a[k] == b[k]:
        k += 1
    if a + k == ae and b + k == be:
        return 0
    while k > 0 and _is_digit(a[k - 1]):
        k -= 1
    return _verrevcmp(a + k, ae, b + k, be)


cdef inline int _cmp(const Ver* a, const Ver* b) noexcept nogil:
    cdef int r
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    r = _cmp_part(a.up, a.up_end, b.up, b.up_end)
    if r != 0:
        return r
    return _cmp_part(a.rev, a.rev_end, b.rev, b.rev_end)


cdef int _compare(const unsigned char* a, Py_ssize_t na,
                  const unsigned char* b, Py_ssize_t nb, int* code) noexcept nogil:
    # a is parsed (and refused) before b, as the pure module does.
    cdef Ver va, vb
    code[0] = _parse(a, na, &va)
    if code[0] != OK:
        return CMP_BAD_A
    code[0] = _parse(b, nb, &vb)
    if code[0] != OK:
        return CMP_BAD_B
    return _cmp(&va, &vb)


cdef bytes _wide(str v, int* code):
    # Every non-ASCII code point is an invalid byte wherever it stands, so such a string is
    # never valid; parse its UTF-8 (surrogates passed through) only to name dpkg's reason.
    cdef bytes raw = v.encode("utf-8", "surrogatepass")
    cdef Ver ver
    code[0] = _parse(<const unsigned char*><const char*>raw, len(raw), &ver)
    if code[0] == OK:
        code[0] = E_UPSTREAM_CHAR
    return None


cdef int _put_part(KeyBuf* kb, const unsigned char* p,
                   const unsigned char* end) except -1 nogil:
    # (non-digit run, W_TERM, number) pairs; the first pair is always written, even when
    # empty, so that "" and "0" get the same key. Room for the unchecked bytes is reserved
    # by the caller.
    cdef const unsigned char* q
    while True:
        while p < end and not _is_digit(p[0]):
            kb_put_unchecked(kb, WEIGHT[p[0]])
            p += 1
        kb_put_unchecked(kb, W_TERM)
        q = p
        while q < end and _is_digit(q[0]):
            q += 1
        kb_put_number(kb, <const char*>p, q - p)
        p = q
        if p >= end:
            break
    kb_put_unchecked(kb, W_END)
    return 0


cdef int _build(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil:
    cdef Ver ver
    cdef int code = _parse(s, n, &ver)
    if code != OK:
        return code
    # Unchecked bytes: at most one per character plus two per pair (pairs <= chars + 1)
    # per part; kb_put_number reserves for itself.
    kb_reserve(kb, 4 * n + 16)
    kb_put_number(kb, <const char*>ver.ep, ver.ep_end - ver.ep)
    _put_part(kb, ver.up, ver.up_end)
    _put_part(kb, ver.rev, ver.rev_end)
    return OK


cdef SchemeSpec _SPEC = SchemeSpec(
    name=b"dpkg", str_subclasses=False, build=_build, compare=_compare, wide=_wide,
    non_ascii=E_UPSTREAM_CHAR, reason=NULL,
)
compare, key, compare_many, key_many = _export(spec_capsule(&_SPEC), __name__, _REASONS)
