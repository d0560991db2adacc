# cython: language_level=3, boundscheck=False, wraparound=False
# The per-package half of the matcher, in C: a fleet repeats the same packages millions of
# times, so each package is reduced to a slot number (one per distinct identity) by an
# open-addressing hash table over the identity fields, read straight from the Struct's slots,
# and results are fanned back out by slot. Python only ever sees the distinct identities.
# ``identity.py`` is the pure-Python twin with the same API (REGSWEEP_PURE_PYTHON=1).

from cpython.list cimport PyList_New, PyList_SET_ITEM, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport (
    Py_EQ, Py_TYPE, PyObject, PyObject_Hash, PyObject_RichCompareBool, PyTypeObject,
)
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef enum:
    MAX_FIELDS = 8
    # Pipeline distances (in packages) of each stage ahead of the probe; RING > LEAD_PROBE.
    LEAD_FIELDS = 4
    LEAD_HASH = 8
    LEAD_ENTRY = 12
    LEAD_PROBE = 16
    RING = 32
    STRIDE = MAX_FIELDS

cdef extern from "<stdlib.h>":
    void* aligned_alloc(size_t alignment, size_t size) nogil

cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* p) noexcept nogil


cdef extern from "Python.h":
    ctypedef struct PyASCIIObject:
        Py_hash_t hash
    bint PyUnicode_CheckExact(PyObject* o)
    PyObject* Py_None


cdef inline Py_hash_t field_hash(PyObject* o) except? -1:
    # A str's hash is cached in the object once computed: read it without the call.
    cdef Py_hash_t h
    if PyUnicode_CheckExact(o):
        h = (<PyASCIIObject*>o).hash
        if h != -1:
            return h
    elif o == Py_None:
        return 0x9E3779B9
    return PyObject_Hash(<object>o)


cdef struct Entry:
    Py_hash_t hash
    Py_ssize_t slot          # -1: empty; else the identity's fields are at fields[slot * STRIDE]


cdef class IdentityTable:
    """Package identity (the fields matching reads) -> slot number, in C.

    ``assign(packages)`` gives every package the slot of its identity, creating slots for
    identities not seen before (numbered from ``len(self)`` on) and returning the index of
    the first package of each new one; ``fan_out(results)`` then returns, per package,
    ``results[slot]``. The two are called in pairs: ``assign`` keeps the slots of the last
    batch for ``fan_out``.
    """

    cdef Entry* entries
    cdef Py_ssize_t cap, count
    cdef PyObject** fields    # owned references, nfields per slot
    cdef Py_ssize_t fields_cap
    cdef int nfields
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef object ptype
    cdef tuple names
    cdef Py_ssize_t* slots
    cdef Py_ssize_t nslots, slots_cap
    cdef int _fresh_now

    def __cinit__(self, ptype, tuple names):
        cdef PyMemberDescrObject* d
        if not 0 < len(names) <= MAX_FIELDS:
            raise ValueError(f"between 1 and {MAX_FIELDS} identity fields")
        self.ptype = ptype
        self.names = names
        self.nfields = len(names)
        for k, name in enumerate(names):
            descr = ptype.__dict__.get(name) if isinstance(ptype, type) else None
            if type(descr).__name__ != "member_descriptor":
                raise TypeError(f"{ptype!r}.{name} is not a slot field")
            d = <PyMemberDescrObject*>descr
            self.offsets[k] = d.d_member.offset
        self.cap = 1024
        self.entries = <Entry*>calloc(self.cap, sizeof(Entry))
        if self.entries is NULL:
            raise MemoryError()
        self._mark_empty(self.entries, self.cap)

    def __dealloc__(self):
        self._release()
        free(self.entries)
        free(self.fields)
        free(self.slots)

    cdef void _mark_empty(self, Entry* e, Py_ssize_t n) noexcept:
        cdef Py_ssize_t i
        for i in range(n):
            e[i].slot = -1

    cdef void _release(self) noexcept:
        cdef Py_ssize_t i
        cdef int k
        if self.entries is not NULL:
            self._mark_empty(self.entries, self.cap)
        for i in range(self.count):
            for k in range(self.nfields):
                Py_XDECREF(self.fields[i * STRIDE + k])
        self.count = 0

    def __len__(self):
        return self.count

    def clear(self):
        """Forget every identity (slots restart at 0)."""
        self._release()

    cdef int _grow(self) except -1:
        cdef Py_ssize_t old_cap = self.cap, i, j, mask
        cdef Entry* old = self.entries
        cdef Entry* new = <Entry*>malloc(old_cap * 2 * sizeof(Entry))
        if new is NULL:
            raise MemoryError()
        self._mark_empty(new, old_cap * 2)
        mask = old_cap * 2 - 1
        for i in range(old_cap):
            if old[i].slot >= 0:
                j = old[i].hash & mask
                while new[j].slot >= 0:
                    j = (j + 1) & mask
                new[j] = old[i]
        free(old)
        self.entries = new
        self.cap = old_cap * 2
        return 0

    cdef int _grow_fields(self) except -1:
        # Each slot's fields take one 64-byte cache line (MAX_FIELDS pointers, line-aligned),
        # so checking a candidate costs one miss, not two.
        cdef Py_ssize_t cap = self.fields_cap * 2 if self.fields_cap else 1024
        cdef PyObject** new = <PyObject**>aligned_alloc(64, cap * STRIDE * sizeof(PyObject*))
        if new is NULL:
            raise MemoryError()
        if self.fields is not NULL:
            memcpy(new, self.fields, self.count * STRIDE * sizeof(PyObject*))
            free(self.fields)
        self.fields = new
        self.fields_cap = cap
        return 0

    cdef inline int _read(self, object p, PyObject** out) except -1:
        # The identity fields, borrowed from the Struct's slots (or getattr for a subclass).
        cdef int k
        cdef PyObject* v
        if Py_TYPE(p) == <PyTypeObject*>self.ptype:
            for k in range(self.nfields):
                v = (<PyObject**>((<char*><PyObject*>p) + self.offsets[k]))[0]
                if v is NULL:
                    raise AttributeError(self.names[k])
                out[k] = v
        else:
            raise TypeError(f"expected {self.ptype.__name__}, got {type(p).__name__}")
        return 0

    def assign(self, list packages):
        """Slot every package; return the index of the first package of each new identity."""
        cdef Py_ssize_t n = PyList_GET_SIZE(packages), step, x, j
        cdef PyObject* obj
        cdef PyObject** f
        cdef Py_hash_t h
        cdef int k
        cdef Entry* e
        # In-flight packages: their fields (borrowed) and identity hashes, by index % RING.
        cdef PyObject* ring_f[RING][MAX_FIELDS]
        cdef Py_hash_t ring_h[RING]
        cdef list fresh = []
        if n > self.slots_cap:
            free(self.slots)
            self.slots = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
            if self.slots is NULL:
                self.slots_cap = 0
                raise MemoryError()
            self.slots_cap = n
        self.nslots = 0
        # A software pipeline: a fleet's packages are scattered over the heap and the table
        # is larger than the cache, so each package costs a chain of dependent cache misses
        # (object -> field strings -> table entry -> stored fields). Each stage prefetches
        # what a later stage reads, for packages a few places ahead, so the misses of
        # different packages overlap instead of adding up.
        for step in range(n + LEAD_PROBE):
            x = step
            if x < n:
                obj = PyList_GET_ITEM(packages, x)
                prefetch(obj)
                prefetch((<char*>obj) + 64)
            x = step - LEAD_FIELDS
            if 0 <= x < n:
                self._read(<object>PyList_GET_ITEM(packages, x), ring_f[x % RING])
                f = ring_f[x % RING]
                for k in range(self.nfields):
                    prefetch(f[k])
            x = step - LEAD_HASH
            if 0 <= x < n:
                f = ring_f[x % RING]
                h = 0x345678
                for k in range(self.nfields):
                    h = (h ^ field_hash(f[k])) * 1000003
                h ^= h >> 29
                ring_h[x % RING] = h
                prefetch(&self.entries[h & (self.cap - 1)])
            x = step - LEAD_ENTRY
            if 0 <= x < n:
                e = &self.entries[ring_h[x % RING] & (self.cap - 1)]
                if e.slot >= 0:
                    prefetch(&self.fields[e.slot * STRIDE])
            x = step - LEAD_PROBE
            if x >= 0:
                self.slots[x] = self._probe(ring_f[x % RING], ring_h[x % RING])
                if self.slots[x] == self.count - 1 and self._fresh_now:
                    fresh.append(x)
                self.nslots = x + 1
        return fresh

    cdef Py_ssize_t _probe(self, PyObject** f, Py_hash_t h) except -1:
        # The slot of the identity with fields ``f`` and hash ``h``, adding it if new.
        cdef Py_ssize_t mask = self.cap - 1, j = h & mask
        cdef PyObject** known
        cdef Entry* e
        cdef int k, same
        self._fresh_now = 0
        while True:
            e = &self.entries[j]
            if e.slot < 0:
                break
            if e.hash == h:
                same = 1
                known = &self.fields[e.slot * STRIDE]
                for k in range(self.nfields):
                    if known[k] != f[k] and not PyObject_RichCompareBool(
                        <object>known[k], <object>f[k], Py_EQ
                    ):
                        same = 0
                        break
                if same:
                    return e.slot
            j = (j + 1) & mask
        # New identity: keep references to its fields, give it the next slot.
        if (self.count + 1) * 4 > self.cap * 3:
            self._grow()
            mask = self.cap - 1
            j = h & mask
            while self.entries[j].slot >= 0:
                j = (j + 1) & mask
            e = &self.entries[j]
        if self.count == self.fields_cap:
            self._grow_fields()
        e.hash = h
        for k in range(self.nfields):
            Py_INCREF(<object>f[k])
            self.fields[self.count * STRIDE + k] = f[k]
        e.slot = self.count
        self.count += 1
        self._fresh_now = 1
        return e.slot

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
