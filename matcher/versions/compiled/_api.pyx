# cython: language_level=3, binding=False
"""The Python-facing half of every compiled version scheme, written once.

A scheme module (``dpkg.pyx`` …) is only its C part: a key builder, for some a direct
comparator, what a non-ASCII string means to it and how its errors read, gathered in a
``SchemeSpec`` (``_spec.pxd``). ``export`` binds one ``SchemeFunctions`` to that spec and
returns its ``compare``, ``key``, ``compare_many`` and ``key_many``, which the scheme module
publishes under those names. The scheme's work is reached through C function pointers: a call
costs one indirect jump more than a call into the scheme's own module, and no Python-level
dispatch.

Shared rules, so that every scheme behaves alike (and like its pure-Python reference):

* a version is a ``str`` (a subclass only where the spec allows it), else ``TypeError``;
* ``compare`` looks at ``a`` fully before ``b``: when both are wrong, the error is ``a``'s;
* ``InvalidVersion`` carries the scheme's name, the string and the scheme's reason.
"""

# binding=False: the bound methods are plain builtins, whose vectorcall entry is about 100
# instructions shorter per call than a cyfunction's (compare is called in loops).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_Check, PyUnicode_CheckExact

from _keybuf cimport KeyBuf, kb_bytes, kb_cmp, kb_free, kb_init
from _spec cimport CMP_BAD_A, SchemeSpec, spec_pointer

import importlib

from regsweep.matcher.versions.interface import InvalidVersion

cdef extern from "Python.h":
    # Macros on the compact-string header (not all declared in Cython's cpython/*.pxd).
    bint PyUnicode_IS_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    void* PyUnicode_DATA(object o)

# The three results, indexed by result + 1, so that compare hands back a new reference to
# one of them: no call to PyLong_FromLong per comparison and no branch on the sign.
cdef object _RESULT_OBJECTS = (-1, 0, 1)
cdef PyObject* _RESULTS[3]
_RESULTS[0] = <PyObject*>_RESULT_OBJECTS[0]
_RESULTS[1] = <PyObject*>_RESULT_OBJECTS[1]
_RESULTS[2] = <PyObject*>_RESULT_OBJECTS[2]


@cython.final
cdef class SchemeFunctions:
    """The public functions of one compiled scheme, bound to its C part (a ``SchemeSpec``).

    Made by ``export``; its methods are what ``compiled.<scheme>.compare`` and the others are.
    """

    cdef SchemeSpec spec
    cdef readonly str name
    cdef readonly str module
    cdef tuple reasons

    def __cinit__(self, capsule, str module not None, tuple reasons not None):
        # __cinit__, not __init__: no instance can exist without a spec (its function
        # pointers would be NULL), not even one made by SchemeFunctions.__new__.
        self.spec = spec_pointer(capsule)[0]
        self.name = self.spec.name.decode("ascii")
        self.module = module
        self.reasons = reasons

    def __reduce__(self):
        # Pickled by module name, so that a pickled scheme function unpickles to the function
        # of the scheme module loaded on the other side (as a module-level function does).
        return _scheme_functions, (self.module,)

    cdef inline bint _is_str(self, object v) noexcept:
        return PyUnicode_CheckExact(v) or (self.spec.str_subclasses and PyUnicode_Check(v))

    cdef inline const unsigned char* _ascii(self, object v, Py_ssize_t* n) noexcept:
        # The common case: a str flagged ASCII, whose character data is its UTF-8 form (read
        # in place: no copy and no call into libpython). NULL for everything else.
        if self._is_str(v) and PyUnicode_IS_ASCII(v):
            n[0] = PyUnicode_GET_LENGTH(v)
            return <const unsigned char*>PyUnicode_DATA(v)
        return NULL

    cdef bytes _bytes(self, object v):
        # What _ascii leaves: the bytes the scheme parses instead, or the error.
        cdef int code
        if not self._is_str(v):
            raise TypeError(f"{self.name} version must be a str, not {type(v).__name__}")
        if str.isascii(v):
            # All ASCII but not flagged so: a legacy string not yet made ready (CPython 3.11).
            return str.encode(v, "ascii")
        code = self.spec.non_ascii
        if self.spec.wide != NULL:
            b = self.spec.wide(<str>v, &code)
            if b is not None:
                return b
        self._fail(<str>v, code)

    cdef int _fail(self, str v, int code) except -1:
        if self.spec.reason != NULL:
            raise InvalidVersion(self.name, v, self.spec.reason(v, code))
        raise InvalidVersion(self.name, v, self.reasons[code])

    cdef int _check(self, object v, const unsigned char* s, Py_ssize_t n) except -1:
        # Validate a version on its own (its key is built and thrown away): only taken when a
        # direct comparison cannot start because b is not a plain ASCII str.
        cdef KeyBuf kb
        cdef int code
        kb_init(&kb)
        try:
            code = self.spec.build(s, n, &kb)
        finally:
            kb_free(&kb)
        if code:
            self._fail(<str>v, code)
        return 0

    cdef bytes _key(self, object v):
        # key's work for key_many and for what is not an ASCII str (key inlines the rest).
        cdef Py_ssize_t n
        cdef const unsigned char* s = self._ascii(v, &n)
        cdef bytes held     # owns the buffer s points into when v is not an ASCII str
        cdef KeyBuf kb
        cdef int code
        if s == NULL:
            held = self._bytes(v)
            s = <const unsigned char*>PyBytes_AS_STRING(held)
            n = PyBytes_GET_SIZE(held)
        kb_init(&kb)
        try:
            code = self.spec.build(s, n, &kb)
            if code:
                self._fail(<str>v, code)
            return kb_bytes(&kb)
        finally:
            kb_free(&kb)

    cdef int _compare_keys(self, object a, const unsigned char* sa, Py_ssize_t na,
                           object b) except -2:
        # compare as the memcmp of the two keys, built in stack buffers; a's key is built
        # (and a's error raised) before b is looked at.
        cdef KeyBuf ka, kb
        cdef Py_ssize_t nb
        cdef const unsigned char* sb
        cdef bytes held
        cdef int code
        kb_init(&ka)
        kb_init(&kb)
        try:
            code = self.spec.build(sa, na, &ka)
            if code:
                self._fail(<str>a, code)
            sb = self._ascii(b, &nb)
            if sb == NULL:
                held = self._bytes(b)
                sb = <const unsigned char*>PyBytes_AS_STRING(held)
                nb = PyBytes_GET_SIZE(held)
            code = self.spec.build(sb, nb, &kb)
            if code:
                self._fail(<str>b, code)
            return kb_cmp(&ka, &kb)
        finally:
            kb_free(&ka)
            kb_free(&kb)

    cdef inline int _compare(self, object a, object b) except -2:
        cdef Py_ssize_t na, nb
        cdef const unsigned char* sa = self._ascii(a, &na)
        cdef const unsigned char* sb
        cdef bytes held_a, held_b
        cdef int r, code = 0
        if sa == NULL:
            held_a = self._bytes(a)
            sa = <const unsigned char*>PyBytes_AS_STRING(held_a)
            na = PyBytes_GET_SIZE(held_a)
        if self.spec.compare == NULL:
            return self._compare_keys(a, sa, na, b)
        sb = self._ascii(b, &nb)
        if sb == NULL:
            # a in full before b: its error wins over anything wrong with b.
            self._check(a, sa, na)
            held_b = self._bytes(b)
            sb = <const unsigned char*>PyBytes_AS_STRING(held_b)
            nb = PyBytes_GET_SIZE(held_b)
        r = self.spec.compare(sa, na, sb, nb, &code)
        if r > 1:
            self._fail(<str>(a if r == CMP_BAD_A else b), code)
        return r

    def compare(self, a, b, /):
        """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

        Raises ``InvalidVersion`` when either string is not a version of this scheme
        (``a``'s error when both are not), ``TypeError`` when either is not a str.
        """
        return <object>_RESULTS[self._compare(a, b) + 1]

    def key(self, v, /):
        """Return the byte key of ``v``: memcmp order is version order (for a scheme whose key
        is not ``AUTHORITATIVE``, it never contradicts it).

        Raises ``InvalidVersion`` when ``v`` is not a version of this scheme.
        """
        # _key's work for an ASCII str, written out here: a call to _key costs dpkg's key
        # 3-5% (measured), and GCC will not inline it (its error paths make it too big).
        cdef Py_ssize_t n
        cdef const unsigned char* s = self._ascii(v, &n)
        cdef KeyBuf kb
        cdef int code
        if s == NULL:
            return self._key(v)
        kb_init(&kb)
        try:
            code = self.spec.build(s, n, &kb)
            if code:
                self._fail(<str>v, code)
            return kb_bytes(&kb)
        finally:
            kb_free(&kb)

    def compare_many(self, a, b, /):
        """Compare ``a[i]`` with ``b[i]`` for every i; the sequences must be the same length."""
        cdef Py_ssize_t i, n = len(a)
        if len(b) != n:
            raise ValueError(f"compare_many needs equal lengths, got {n} and {len(b)}")
        cdef list out = [None] * n
        for i in range(n):
            out[i] = <object>_RESULTS[self._compare(a[i], b[i]) + 1]
        return out

    def key_many(self, vs, /):
        """Return ``[key(v) for v in vs]``."""
        return [self._key(v) for v in vs]


def _scheme_functions(str module not None):
    """The ``SchemeFunctions`` behind ``module``'s functions (what unpickling resolves to)."""
    return importlib.import_module(module).compare.__self__


def export(capsule, str module not None, tuple reasons=()):
    """Return ``(compare, key, compare_many, key_many)`` for the scheme in ``capsule``.

    ``capsule`` comes from ``_spec.spec_capsule(&spec)``; ``module`` is the scheme module's
    ``__name__``, which the functions report as theirs; ``reasons[code]`` is the text of an
    error code when the spec has no ``reason`` function.
    """
    cdef SchemeFunctions s = SchemeFunctions(capsule, module, reasons)
    functions = (s.compare, s.key, s.compare_many, s.key_many)
    for f in functions:
        # A bound builtin has no module of its own; these are the scheme module's functions.
        f.__module__ = module
    return functions
