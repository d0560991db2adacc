# The C contract between a version scheme and the Python-facing API written once in _api.pyx.
#
# A scheme module fills one SchemeSpec with its C functions and hands it to
# ``_api.export`` in a capsule; ``export`` returns compare, key, compare_many and key_many.
# The hand-over goes through a capsule, not a cimported cdef class, because the repo folders
# are not named ``regsweep/``: Cython resolves bare-name cimports only (see setup.py), and a
# cimported class would make every scheme import a top-level ``_api`` module at run time.
# Only types and inline functions live here, so cimporting this file imports nothing at run
# time. (It is not named _api.pxd: Cython would not pair it with _api.pyx, for the same reason.)

from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New

from _keybuf cimport KeyBuf

# What a direct comparator returns for an invalid side, with the scheme's error code in
# ``*code``. Above 1, so a valid -1/0/1 is told apart by one comparison.
cdef enum:
    CMP_BAD_A = 2
    CMP_BAD_B = 3

# Validate s[:n] (the version's bytes: ASCII, or what ``wide`` returned) and append its
# order-preserving key to ``kb``, which is empty on entry; 0, or an error code > 0.
ctypedef int (*build_fn)(const unsigned char* s, Py_ssize_t n, KeyBuf* kb) except -1 nogil

# Compare two versions without building keys: -1, 0 or 1, or CMP_BAD_A / CMP_BAD_B with the
# code of the invalid side (a's when both are invalid: a is checked fully before b).
ctypedef int (*cmp_fn)(const unsigned char* a, Py_ssize_t na,
                       const unsigned char* b, Py_ssize_t nb, int* code) noexcept nogil

# A str holding non-ASCII characters: the bytes to parse instead, or None with ``*code``
# set when that alone makes it invalid.
ctypedef bytes (*wide_fn)(str v, int* code)

# The text of error ``code`` for ``v``, for schemes whose messages depend on the string.
ctypedef str (*reason_fn)(str v, int code)

cdef struct SchemeSpec:
    const char* name        # the scheme's name in InvalidVersion and TypeError messages
    bint str_subclasses     # accept str subclasses (else exact str only, like a typed arg)
    build_fn build          # the key builder; also what validates a version
    cmp_fn compare          # NULL: compare is the memcmp of the two keys
    wide_fn wide            # NULL: a non-ASCII string is invalid with code ``non_ascii``
    int non_ascii
    reason_fn reason        # NULL: the text of code c is ``reasons[c]`` given to export()


cdef inline object spec_capsule(SchemeSpec* spec):
    """Wrap a scheme's static SchemeSpec for ``_api.export`` (the spec must outlive it)."""
    return PyCapsule_New(spec, b"regsweep.matcher.versions.compiled._spec.SchemeSpec", NULL)


cdef inline SchemeSpec* spec_pointer(object capsule) except NULL:
    """The SchemeSpec in a capsule made by ``spec_capsule``; ValueError for any other."""
    return <SchemeSpec*>PyCapsule_GetPointer(
        capsule, b"regsweep.matcher.versions.compiled._spec.SchemeSpec"
    )
