# The Python-facing half of a scheme module whose keys are built by
# ``_build(s, n, &kb)`` (0, or an error code indexing ``_REASONS``). Included at the end of
# gem.pyx, semver.pyx and composer.pyx, each of which defines ``_SCHEME`` (its name in
# ``InvalidVersion``), ``_REASONS``, ``E_NONASCII`` and ``_build``.


cdef inline const unsigned char* _ascii(str v, Py_ssize_t* n) except NULL:
    # Every valid version is ASCII, so a non-ASCII string is refused before its UTF-8 form
    # is ever made (which also keeps lone surrogates from raising UnicodeEncodeError).
    if v is None:
        raise TypeError("a version must be a str, not None")
    if not PyUnicode_IS_ASCII(v):
        raise InvalidVersion(_SCHEME, v, _REASONS[E_NONASCII])
    # For an ASCII string the UTF-8 buffer is the string's own data (what utf8() would
    # return, minus the call): read it directly.
    n[0] = PyUnicode_GET_LENGTH(v)
    return <const unsigned char*>PyUnicode_DATA(v)


cdef int _fail(str v, int err) except -1:
    raise InvalidVersion(_SCHEME, v, _REASONS[err])


cdef int _compare(str a, str b) except -2:
    cdef KeyBuf ka, kb
    cdef Py_ssize_t na, nb
    cdef const unsigned char* sa
    cdef const unsigned char* sb
    cdef int err
    kb_init(&ka)
    kb_init(&kb)
    try:
        # a fully before b: the error raised for two bad strings is a's, as in pure Python.
        sa = _ascii(a, &na)
        err = _build(sa, na, &ka)
        if err:
            _fail(a, err)
        sb = _ascii(b, &nb)
        err = _build(sb, nb, &kb)
        if err:
            _fail(b, err)
        return kb_cmp(&ka, &kb)
    finally:
        kb_free(&ka)
        kb_free(&kb)


def compare(str a not None, str b not None, /):
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``InvalidVersion`` when either string is not a version of this module's scheme.
    """
    return _compare(a, b)


cdef bytes _key(str v):
    cdef KeyBuf kb
    cdef Py_ssize_t n
    cdef const unsigned char* s = _ascii(v, &n)
    cdef int err
    kb_init(&kb)
    try:
        err = _build(s, n, &kb)
        if err:
            _fail(v, err)
        return kb_bytes(&kb)
    finally:
        kb_free(&kb)


def key(str v not None, /):
    """Return the order-preserving byte key of ``v`` (memcmp order is the scheme's order).

    Raises ``InvalidVersion`` when ``v`` is not a version of this module's scheme.
    """
    return _key(v)


def compare_many(a, b, /):
    """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""
    cdef Py_ssize_t i, n = len(a)
    if len(b) != n:
        raise ValueError(f"compare_many needs equal lengths, got {n} and {len(b)}")
    cdef list out = [None] * n
    for i in range(n):
        out[i] = _compare(a[i], b[i])
    return out


def key_many(vs, /):
    """Return ``[key(v) for v in vs]``."""
    return [_key(v) for v in vs]
