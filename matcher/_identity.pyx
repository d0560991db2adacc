# cython: language_level=3, boundscheck=False, wraparound=False
# The per-package half of the matcher, in C: a fleet repeats the same packages millions of
# times, so each package is reduced to a slot number (one per distinct identity) by an
# open-addressing hash table over the identity fields, read straight from the Struct's slots,
# and results are fanned back out by slot. Python only ever sees the distinct identities.
# ``identity.py`` is the pure-Python twin with the same API (REGSWEEP_PURE_PYTHON=1).

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.object cimport (
    Py_EQ, Py_TYPE, PyObject, PyObject_Hash, PyObject_RichCompareBool, PyTypeObject,
)
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport int32_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    ctypedef struct PyASCIIObject:
        Py_hash_t hash
    bint PyUnicode_CheckExact(PyObject* o)
    PyObject* Py_None

cdef extern from "<stdlib.h>":
    void* aligned_alloc(size_t alignment, size_t size) nogil

cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* p) noexcept nogil

cdef enum:
    # An entry is one 64-byte cache line: up to 7 field pointers, a 32-bit hash and a slot.
    MAX_FIELDS = 7
    # How many packages ahead of the probe each pipeline stage works (see ``assign``).
    LEAD_FIELDS = 4
    LEAD_HASH = 8
    LEAD_PROBE = 12
    RING = 16
    MAX_CAP = 1 << 30


cdef struct Entry:
    PyObject* fields[MAX_FIELDS]   # owned references; fields[0] is NULL in an empty entry
    uint32_t hash
    int32_t slot


cdef inline Py_hash_t field_hash(PyObject* o) except? -1:
    # A str caches its hash in the object once computed: read it without a call.
    cdef Py_hash_t h
    if PyUnicode_CheckExact(o):
        h = (<PyASCIIObject*>o).hash
        if h != -1:
            return h
    elif o == Py_None:
        return 0x9E3779B9
    return PyObject_Hash(<object>o)


cdef class IdentityTable:
    """Package identity (the fields matching reads) -> slot number, in C.

    ``assign(packages)`` gives every package the slot of its identity, creating slots for
    identities not seen before (numbered from ``len(self)`` on) and returning the index of
    the first package of each new one; ``fan_out(results, …)`` then returns, per package,
    ``results[slot]``. The two are called in pairs: ``assign`` keeps the slots of the last
    batch for ``fan_out``. The table keeps a reference to the fields of every identity, so
    its memory grows with the distinct identities until ``clear()``.
    """

    cdef Entry* entries
    cdef Py_ssize_t cap, count
    cdef int nfields
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef object ptype
    cdef int32_t* slots
    cdef Py_ssize_t nslots, slots_cap

    def __cinit__(self, ptype, tuple names):
        if not 0 < len(names) <= MAX_FIELDS:
            raise ValueError(f"between 1 and {MAX_FIELDS} identity fields")
        if not isinstance(ptype, type):
            raise TypeError(f"{ptype!r} is not a type")
        self.ptype = ptype
        self.nfields = len(names)
        for k, name in enumerate(names):
            descr = ptype.__dict__.get(name)
            if type(descr).__name__ != "member_descriptor":
                raise TypeError(f"{ptype.__name__}.{name} is not a slot field")
            self.offsets[k] = (<PyMemberDescrObject*>descr).d_member.offset
        self.entries = self._alloc(1024)
        self.cap = 1024

    def __dealloc__(self):
        self._release()
        free(self.entries)
        free(self.slots)

    cdef Entry* _alloc(self, Py_ssize_t n) except NULL:
        # Line-aligned, so that an entry never straddles two cache lines.
        cdef Entry* e = <Entry*>aligned_alloc(64, n * sizeof(Entry))
        if e is NULL:
            raise MemoryError()
        memset(e, 0, n * sizeof(Entry))
        return e

    cdef void _release(self) noexcept:
        cdef Py_ssize_t i
        cdef int k
        if self.entries is NULL:
            return
        for i in range(self.cap):
            if self.entries[i].fields[0] is not NULL:
                for k in range(self.nfields):
                    Py_XDECREF(self.entries[i].fields[k])
        memset(self.entries, 0, self.cap * sizeof(Entry))
        self.count = 0

    def __len__(self):
        return self.count

    def clear(self):
        """Forget every identity (slots restart at 0)."""
        self._release()

    cdef int _grow(self) except -1:
        cdef Py_ssize_t old_cap = self.cap, i, j, mask = old_cap * 2 - 1
        cdef Entry* old = self.entries
        if old_cap * 2 > MAX_CAP:
            raise MemoryError("identity table full")
        cdef Entry* new = self._alloc(old_cap * 2)
        for i in range(old_cap):
            if old[i].fields[0] is not NULL:
                j = old[i].hash & mask
                while new[j].fields[0] is not NULL:
                    j = (j + 1) & mask
                new[j] = old[i]
        free(old)
        self.entries = new
        self.cap = old_cap * 2
        return 0

    cdef inline int _read(self, PyObject* p, PyObject** out) except -1:
        # The identity fields, borrowed from the Struct's slots.
        cdef int k
        cdef PyObject* v
        if Py_TYPE(<object>p) != <PyTypeObject*>self.ptype:
            raise TypeError(f"expected {self.ptype.__name__}, got {type(<object>p).__name__}")
        for k in range(self.nfields):
            v = (<PyObject**>((<char*>p) + self.offsets[k]))[0]
            if v is NULL:
                raise AttributeError("a package with an unset field")
            out[k] = v
        return 0

    cdef int _probe(self, PyObject** f, uint32_t h) except -2:
        # The slot of the identity with fields ``f`` and hash ``h``; -1 when it was new (it
        # then has slot ``count - 1``).
        cdef Py_ssize_t mask = self.cap - 1, j = h & mask
        cdef Entry* e
        cdef int k
        while True:
            e = &self.entries[j]
            if e.fields[0] is NULL:
                break
            if e.hash == h:
                for k in range(self.nfields):
                    if e.fields[k] != f[k] and not PyObject_RichCompareBool(
                        <object>e.fields[k], <object>f[k], Py_EQ
                    ):
                        break
                else:
                    return e.slot
            j = (j + 1) & mask
        # New identity: keep references to its fields, give it the next slot.
        if (self.count + 1) * 4 > self.cap * 3:
            self._grow()
            mask = self.cap - 1
            j = h & mask
            while self.entries[j].fields[0] is not NULL:
                j = (j + 1) & mask
            e = &self.entries[j]
        for k in range(self.nfields):
            Py_INCREF(<object>f[k])
            e.fields[k] = f[k]
        e.hash = h
        e.slot = <int32_t>self.count
        self.count += 1
        return -1

    def assign(self, list packages):
        """Slot every package; return the index of the first package of each new identity."""
        cdef Py_ssize_t n = PyList_GET_SIZE(packages), step, x
        cdef PyObject* obj
        cdef PyObject** f
        cdef Py_hash_t h
        cdef uint32_t h32
        cdef int k, slot
        # Packages in flight: their fields (borrowed) and hashes, by index % RING.
        cdef PyObject* ring_f[RING][MAX_FIELDS]
        cdef uint32_t ring_h[RING]
        cdef list fresh = []
        if n > self.slots_cap:
            free(self.slots)
            self.slots = <int32_t*>malloc(n * sizeof(int32_t))
            if self.slots is NULL:
                self.slots_cap = 0
                raise MemoryError()
            self.slots_cap = n
        self.nslots = 0
        # A software pipeline. A fleet's packages are scattered over the heap and the table
        # outgrows the cache, so a package costs a chain of dependent cache misses: its
        # object, then its field strings (for their hashes), then its table entry. Each
        # stage prefetches what a later stage reads, for packages a few places ahead, so
        # the misses of neighbouring packages overlap instead of adding up.
        for step in range(n + LEAD_PROBE):
            x = step
            if x < n:
                obj = PyList_GET_ITEM(packages, x)
                prefetch(obj)
                prefetch((<char*>obj) + 64)
            x = step - LEAD_FIELDS
            if 0 <= x < n:
                f = ring_f[x % RING]
                self._read(PyList_GET_ITEM(packages, x), f)
                for k in range(self.nfields):
                    prefetch(f[k])
            x = step - LEAD_HASH
            if 0 <= x < n:
                f = ring_f[x % RING]
                h = 0x345678
                for k in range(self.nfields):
                    h = (h ^ field_hash(f[k])) * 1000003
                h32 = <uint32_t>(h ^ (h >> 32))
                ring_h[x % RING] = h32
                prefetch(&self.entries[h32 & (self.cap - 1)])
            x = step - LEAD_PROBE
            if x >= 0:
                slot = self._probe(ring_f[x % RING], ring_h[x % RING])
                if slot < 0:
                    slot = <int>(self.count - 1)
                    fresh.append(x)
                self.slots[x] = slot
                self.nslots = x + 1
        return fresh

    def fan_out(self, list results, failure_type, error_factory):
        """Per package of the last ``assign``: ``results[slot]``.

        A result of ``failure_type`` is a package that could not be matched: its place gets
        ``()`` and ``error_factory(index, failure)`` goes to the error list. Returns
        ``(per_package, errors)``.
        """
        cdef Py_ssize_t i, s, nres = PyList_GET_SIZE(results)
        cdef list out = PyList_New(self.nslots)
        cdef list errors = []
        cdef object r
        cdef tuple empty = ()
        for i in range(self.nslots):
            s = self.slots[i]
            if s >= nres:
                raise IndexError("a slot without a result: fan_out before its results")
            r = <object>PyList_GET_ITEM(results, s)
            if type(r) is tuple:
                Py_INCREF(r)
                PyList_SET_ITEM(out, i, r)
            else:
                if type(r) is not failure_type:
                    raise TypeError(f"result {type(r).__name__} is neither tuple nor failure")
                Py_INCREF(empty)
                PyList_SET_ITEM(out, i, empty)
                errors.append(error_factory(i, r))
        return out, errors
