# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled half of ``matcher.anchors``: whether a buffer holds any of a set of literals.

One pass over the bytes: a 65536-bit table of the literals' first two bytes flags the
positions where one may start, and only those are compared in full. Text holds few of the
flagged pairs, so the pass runs at memory speed rather than at one ``in`` per literal.
"""

from libc.string cimport memcmp


cdef class AnchorSet:
    """A set of byte literals (each at least 2 bytes) to look for."""

    cdef unsigned char _first[65536]
    cdef list _by_pair
    cdef readonly tuple anchors

    def __cinit__(self, anchors):
        cdef bytes a
        cdef int key
        self.anchors = tuple(anchors)
        self._by_pair = [None] * 65536
        for i in range(65536):
            self._first[i] = 0
        for a in self.anchors:
            if len(a) < 2:
                raise ValueError(f"anchor {a!r} is shorter than 2 bytes")
            key = (<unsigned char>a[0]) << 8 | (<unsigned char>a[1])
            self._first[key] = 1
            if self._by_pair[key] is None:
                self._by_pair[key] = []
            self._by_pair[key].append(a)

    def search(self, const unsigned char[::1] data not None):
        """Whether ``data`` holds any of the anchors."""
        cdef Py_ssize_t n = data.shape[0]
        cdef Py_ssize_t i
        cdef int key
        cdef bytes a
        cdef Py_ssize_t m
        if n < 2:
            return False
        for i in range(n - 1):
            key = data[i] << 8 | data[i + 1]
            if self._first[key]:
                for a in self._by_pair[key]:
                    m = len(a)
                    if i + m <= n and memcmp(&data[i], <const char*>a, m) == 0:
                        return True
        return False
