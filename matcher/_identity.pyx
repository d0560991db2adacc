# cython: language_level=3, boundscheck=False, wraparound=False
# The per-package half of the matcher, in C: a fleet repeats the same packages millions of
# times, so each package is reduced to a slot number (one per distinct identity) by an
# open-addressing hash table over the identity fields, read straight from the Struct's slots,
# and results are fanned back out by slot. Python only ever sees the distinct identities.
# ``identity.py`` is the pure-Python twin with the same API (REGSWEEP_PURE_PYTHON=1).
#
# The table keeps each identity's *contents* (the fields' characters, back to back, in one
# arena), not references to the string objects. Packages decoded from NDJSON or the state
# store are new objects with new strings every time: comparing them with stored objects
# would touch five or six scattered strings per lookup, where the arena holds the whole
# identity in one or two cache lines.

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.object cimport Py_TYPE, PyObject, PyObject_Hash, PyTypeObject
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    ctypedef struct PyASCIIObject:
        Py_hash_t hash
    bint PyUnicode_CheckExact(PyObject* o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject* o)
    int PyUnicode_KIND(PyObject* o)
    void* PyUnicode_DATA(PyObject* o)
    PyObject* Py_None

cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* p) noexcept nogil

cdef enum:
    MAX_FIELDS = 8
    # How many packages ahead of the probe each pipeline stage works (see ``assign``).
    LEAD_FIELDS = 4
    LEAD_HASH = 8
    LEAD_ENTRY = 12
    LEAD_PROBE = 16
    RING = 32
    MAX_CAP = 1 << 30
    # Field header in the arena: one byte (0 for None, else the str's kind: 1, 2 or 4
    # bytes per character) and, for a str, its length in characters (4 bytes).
    NONE_TAG = 0


cdef struct Entry:
    uint64_t hash
    int32_t slot       # -1: empty
    uint32_t size      # bytes of the identity in the arena
    uint64_t offset    # where it starts


cdef inline Py_hash_t field_hash(PyObject* o) except? -1:
    # A str caches its hash in the object once computed: read it without a call.
    cdef Py_hash_t h
    if PyUnicode_CheckExact(o):
        h = (<PyASCIIObject*>o).hash
        if h != -1:
            return h
        return PyObject_Hash(<object>o)
    if o == Py_None:
        return 0x9E3779B9
    raise TypeError(f"an identity field is {type(<object>o).__name__}, not str or None")


cdef inline bint same_bytes(const uint8_t* a, const uint8_t* b, Py_ssize_t n) noexcept:
    # Package names and versions are a few bytes long: a loop beats a call to memcmp.
    cdef Py_ssize_t i
    if n > 32:
        return memcmp(a, b, n) == 0
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


cdef inline Py_ssize_t field_size(PyObject* o) noexcept:
    # Bytes this field takes in the arena. CPython stores every str in the narrowest kind
    # its characters fit, so equal strings have equal kinds and equal bytes.
    if o == Py_None:
        return 1
    return 5 + PyUnicode_GET_LENGTH(o) * PyUnicode_KIND(o)


cdef class IdentityTable:
    """Package identity (the fields matching reads) -> slot number, in C.

    ``assign(packages)`` gives every package the slot of its identity, creating slots for
    identities not seen before (numbered from ``len(self)`` on) and returning the index of
    the first package of each new one; ``fan_out(results, …)`` then returns, per package,
    ``results[slot]``. The two are called in pairs: ``assign`` keeps the slots of the last
    batch for ``fan_out``. Every field must be a ``str`` or ``None``. The table copies the
    characters of every identity it has seen, so its memory grows with the distinct
    identities until ``clear()``; it holds no reference to any package or string.
    """

    cdef Entry* entries
    cdef Py_ssize_t cap, count
    cdef uint8_t* arena
    cdef Py_ssize_t arena_len, arena_cap
    cdef int nfields
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef object ptype
    cdef tuple names
    cdef int32_t* slots
    cdef Py_ssize_t nslots, slots_cap

    def __cinit__(self, ptype, tuple names):
        if not 0 < len(names) <= MAX_FIELDS:
            raise ValueError(f"between 1 and {MAX_FIELDS} identity fields")
        if not isinstance(ptype, type):
            raise TypeError(f"{ptype!r} is not a type")
        self.ptype = ptype
        self.names = names
        self.nfields = len(names)
        for k, name in enumerate(names):
            descr = ptype.__dict__.get(name)
            if type(descr).__name__ != "member_descriptor":
                raise TypeError(f"{ptype.__name__}.{name} is not a slot field")
            self.offsets[k] = (<PyMemberDescrObject*>descr).d_member.offset
        self.entries = self._alloc(1024)
        self.cap = 1024

    def __dealloc__(self):
        free(self.entries)
        free(self.arena)
        free(self.slots)

    cdef Entry* _alloc(self, Py_ssize_t n) except NULL:
        cdef Entry* e = <Entry*>malloc(n * sizeof(Entry))
        cdef Py_ssize_t i
        if e is NULL:
            raise MemoryError()
        for i in range(n):
            e[i].slot = -1
        return e

    def __len__(self):
        return self.count

    def clear(self):
        """Forget every identity (slots restart at 0)."""
        cdef Py_ssize_t i
        for i in range(self.cap):
            self.entries[i].slot = -1
        self.count = 0
        self.arena_len = 0

    cdef int _grow(self) except -1:
        cdef Py_ssize_t old_cap = self.cap, i, j, mask = old_cap * 2 - 1
        cdef Entry* old = self.entries
        if old_cap * 2 > MAX_CAP:
            raise MemoryError("identity table full")
        cdef Entry* new = self._alloc(old_cap * 2)
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

    cdef inline int _read(self, PyObject* p, PyObject** out) except -1:
        # The identity fields, borrowed from the Struct's slots; each a str or None.
        cdef int k
        cdef PyObject* v
        if Py_TYPE(<object>p) != <PyTypeObject*>self.ptype:
            raise TypeError(f"expected {self.ptype.__name__}, got {type(<object>p).__name__}")
        for k in range(self.nfields):
            v = (<PyObject**>((<char*>p) + self.offsets[k]))[0]
            if v is NULL:
                raise AttributeError(f"a package with no {self.names[k]}")
            out[k] = v  # str or None: checked by ``_hash``, once the string is in cache
        return 0

    cdef bint _same(self, const Entry* e, PyObject** f) noexcept:
        # Whether the stored identity of ``e`` has exactly the characters of fields ``f``.
        cdef const uint8_t* p = self.arena + e.offset
        cdef const uint8_t* end = p + e.size
        cdef int k, kind
        cdef uint32_t n
        cdef Py_ssize_t nbytes
        for k in range(self.nfields):
            if p >= end:
                return False
            if f[k] == Py_None:
                if p[0] != NONE_TAG:
                    return False
                p += 1
                continue
            kind = PyUnicode_KIND(f[k])
            if p[0] != kind or end - p < 5:
                return False
            memcpy(&n, p + 1, 4)
            if n != PyUnicode_GET_LENGTH(f[k]):
                return False
            nbytes = <Py_ssize_t>n * kind
            if end - p - 5 < nbytes:
                return False
            if not same_bytes(p + 5, <const uint8_t*>PyUnicode_DATA(f[k]), nbytes):
                return False
            p += 5 + nbytes
        return p == end

    cdef int _store(self, Entry* e, PyObject** f) except -1:
        # Copy the identity's characters to the end of the arena.
        cdef Py_ssize_t size = 0, cap
        cdef uint8_t* p
        cdef uint8_t* grown
        cdef int k, kind
        cdef uint32_t n
        for k in range(self.nfields):
            size += field_size(f[k])
        if size > 0xFFFFFFFF:
            raise ValueError("package identity too large")
        if self.arena_len + size > self.arena_cap:
            cap = max(self.arena_cap * 2, self.arena_len + size, 1 << 16)
            grown = <uint8_t*>realloc(self.arena, cap)
            if grown is NULL:
                raise MemoryError()
            self.arena, self.arena_cap = grown, cap
        p = self.arena + self.arena_len
        e.offset = self.arena_len
        e.size = <uint32_t>size
        for k in range(self.nfields):
            if f[k] == Py_None:
                p[0] = NONE_TAG
                p += 1
                continue
            kind = PyUnicode_KIND(f[k])
            n = <uint32_t>PyUnicode_GET_LENGTH(f[k])
            p[0] = <uint8_t>kind
            memcpy(p + 1, &n, 4)
            memcpy(p + 5, PyUnicode_DATA(f[k]), <Py_ssize_t>n * kind)
            p += 5 + <Py_ssize_t>n * kind
        self.arena_len += size
        return 0

    cdef Py_ssize_t _probe(self, PyObject** f, uint64_t h) except -2:
        # The slot of the identity with fields ``f`` and hash ``h``; -1 when it was new (it
        # then has slot ``count - 1``).
        cdef Py_ssize_t mask = self.cap - 1, j = h & mask
        cdef Entry* e
        while True:
            e = &self.entries[j]
            if e.slot < 0:
                break
            if e.hash == h and self._same(e, f):
                return e.slot
            j = (j + 1) & mask
        if (self.count + 1) * 4 > self.cap * 3:
            self._grow()
            mask = self.cap - 1
            j = h & mask
            while self.entries[j].slot >= 0:
                j = (j + 1) & mask
            e = &self.entries[j]
        self._store(e, f)
        e.hash = h
        e.slot = <int32_t>self.count
        self.count += 1
        return -1

    cdef Py_ssize_t _find_plain(self, const uint8_t** vals, Py_ssize_t* lens) noexcept:
        # The slot of an identity given as ASCII byte strings (NULL for None), else -1.
        # Hashed as ``assign`` hashes the same fields as str objects: for an ASCII str,
        # CPython's hash is ``_Py_HashBytes`` of its characters.
        cdef Py_hash_t h = 0x345678, hk
        cdef uint64_t h64
        cdef int k
        cdef Py_ssize_t mask = self.cap - 1, j
        cdef Entry* e
        cdef const uint8_t* p
        cdef const uint8_t* end
        cdef uint32_t n
        cdef bint same
        for k in range(self.nfields):
            hk = 0x9E3779B9 if vals[k] is NULL else _Py_HashBytes(vals[k], lens[k])
            h = (h ^ hk) * 1000003
        h64 = <uint64_t>(h ^ (h >> 29))
        j = h64 & mask
        while True:
            e = &self.entries[j]
            if e.slot < 0:
                return -1
            if e.hash == h64:
                p = self.arena + e.offset
                end = p + e.size
                same = True
                for k in range(self.nfields):
                    if vals[k] is NULL:
                        if p >= end or p[0] != NONE_TAG:
                            same = False
                            break
                        p += 1
                        continue
                    if end - p < 5 or p[0] != 1:
                        same = False
                        break
                    memcpy(&n, p + 1, 4)
                    if n != lens[k] or end - p - 5 < n or not same_bytes(p + 5, vals[k], n):
                        same = False
                        break
                    p += 5 + n
                if same and p == end:
                    return e.slot
            j = (j + 1) & mask

    def assign(self, list packages):
        """Slot every package; return the index of the first package of each new identity."""
        cdef Py_ssize_t n = PyList_GET_SIZE(packages), step, x, slot
        cdef PyObject* obj
        cdef PyObject** f
        cdef Py_hash_t h
        cdef int k
        cdef Entry* e
        # Packages in flight: their fields (borrowed) and hashes, by index % RING.
        cdef PyObject* ring_f[RING][MAX_FIELDS]
        cdef uint64_t ring_h[RING]
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
        # object, its field strings, its table entry, its stored identity. Each stage
        # prefetches what a later stage reads, for packages a few places ahead, so the
        # misses of neighbouring packages overlap instead of adding up.
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
                    # The str header (hash) and its first characters, often the next line.
                    prefetch(f[k])
                    prefetch((<char*>f[k]) + 63)
            x = step - LEAD_HASH
            if 0 <= x < n:
                f = ring_f[x % RING]
                h = 0x345678
                for k in range(self.nfields):
                    h = (h ^ field_hash(f[k])) * 1000003
                ring_h[x % RING] = <uint64_t>(h ^ (h >> 29))
                prefetch(&self.entries[ring_h[x % RING] & (self.cap - 1)])
            x = step - LEAD_ENTRY
            if 0 <= x < n:
                e = &self.entries[ring_h[x % RING] & (self.cap - 1)]
                if e.slot >= 0:
                    prefetch(self.arena + e.offset)
                    prefetch(self.arena + e.offset + 64)
            x = step - LEAD_PROBE
            if x >= 0:
                slot = self._probe(ring_f[x % RING], ring_h[x % RING])
                if slot < 0:
                    slot = self.count - 1
                    fresh.append(x)
                self.slots[x] = <int32_t>slot
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


# ---------------------------------------------------------------------------------------
# NDJSON package lines that need no Python objects at all
#
# ``regsweep match`` reads a package record per line, and most packages of a fleet have been
# seen before and have no finding. ``LineScanner.clean`` answers, from the line's bytes alone,
# "this is a valid package record of an identity the table knows, whose result is empty" —
# then the line is done without being decoded. It is deliberately narrow: plain ASCII
# strings without escapes, no unknown or repeated keys, the record and image shapes of the
# output contract. Anything else (or anything it is unsure of) answers False, and the line
# goes through msgspec as before, which decides validity and reports errors.

cdef extern from "Python.h":
    Py_hash_t _Py_HashBytes(const void* src, Py_ssize_t len)

cdef enum:
    MAX_KEYS = 16


cdef struct KeySet:
    int n
    const char* names[MAX_KEYS]
    Py_ssize_t lens[MAX_KEYS]


cdef struct Cursor:
    const uint8_t* p
    const uint8_t* end


cdef inline void skip_ws(Cursor* c) noexcept nogil:
    while c.p < c.end and (c.p[0] == 32 or c.p[0] == 9 or c.p[0] == 10 or c.p[0] == 13):
        c.p += 1


cdef inline bint plain_string(Cursor* c, const uint8_t** s, Py_ssize_t* n) noexcept nogil:
    # A JSON string of printable ASCII without escapes; its characters in (s, n).
    cdef const uint8_t* q
    if c.p >= c.end or c.p[0] != 34:  # '"'
        return False
    q = c.p + 1
    while q < c.end and q[0] != 34:
        if q[0] < 32 or q[0] >= 127 or q[0] == 92:  # control, non-ASCII, backslash
            return False
        q += 1
    if q >= c.end:
        return False
    s[0] = c.p + 1
    n[0] = q - (c.p + 1)
    c.p = q + 1
    return True


cdef inline bint literal(Cursor* c, const char* word, Py_ssize_t n) noexcept nogil:
    # ``null`` and friends, not followed by more letters.
    if c.end - c.p < n or memcmp(c.p, word, n) != 0:
        return False
    c.p += n
    return c.p >= c.end or not (97 <= c.p[0] <= 122)


cdef inline int key_index(const KeySet* ks, const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef int i
    for i in range(ks.n):
        if ks.lens[i] == n and memcmp(ks.names[i], s, n) == 0:
            return i
    return -1


cdef class LineScanner:
    """Decides from an NDJSON line's bytes whether it is a ``package`` record whose package
    the ``IdentityTable`` already knows with an empty result (see the section comment).

    ``package_fields``: every field of the package struct; ``required``: those without a
    default; the identity fields are the table's, in its order. The record's own fields are
    ``kind`` (``"package"``), ``schema_version`` (an int), ``image`` (null or an object of
    ``image_fields``, ``image_required`` among them) and ``package``.
    """

    cdef IdentityTable table
    cdef KeySet top, image, package
    cdef int ident_of[MAX_KEYS]    # package key index -> identity field index, or -1
    cdef uint32_t package_required, image_required
    cdef list _keep               # the bytes the KeySets point into

    def __cinit__(
        self,
        IdentityTable table,
        tuple package_fields,
        tuple required,
        tuple image_fields,
        tuple image_required,
    ):
        self.table = table
        self._keep = []
        self._fill(&self.top, ("kind", "schema_version", "image", "package"))
        self._fill(&self.image, image_fields)
        self._fill(&self.package, package_fields)
        self.package_required = self._mask(package_fields, required)
        self.image_required = self._mask(image_fields, image_required)
        for i, name in enumerate(package_fields):
            self.ident_of[i] = table.names.index(name) if name in table.names else -1
        if len({n for n in table.names} - set(package_fields)):
            raise ValueError("every identity field must be a package field")

    cdef int _fill(self, KeySet* ks, tuple names) except -1:
        cdef bytes b
        if len(names) > MAX_KEYS:
            raise ValueError(f"at most {MAX_KEYS} fields")
        ks.n = len(names)
        for i, name in enumerate(names):
            b = name.encode("ascii")
            self._keep.append(b)
            ks.names[i] = <const char*>b
            ks.lens[i] = len(b)
        return 0

    cdef uint32_t _mask(self, tuple names, tuple required):
        cdef uint32_t m = 0
        for i, name in enumerate(names):
            if name in required:
                m |= 1u << i
        return m

    cdef bint _object(
        self, Cursor* c, const KeySet* ks, uint32_t required,
        const uint8_t** vals, Py_ssize_t* lens,
    ) noexcept:
        # An object of ``ks`` keys whose values are plain strings or null (value pointer
        # NULL for null or absent). False for anything else.
        cdef uint32_t seen = 0
        cdef const uint8_t* s
        cdef Py_ssize_t n
        cdef int i
        for i in range(ks.n):
            vals[i] = NULL
        skip_ws(c)
        if c.p >= c.end or c.p[0] != 123:  # '{'
            return False
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == 125:  # '}'
            c.p += 1
            return required == 0
        while True:
            skip_ws(c)
            if not plain_string(c, &s, &n):
                return False
            i = key_index(ks, s, n)
            if i < 0 or seen & (1u << i):
                return False
            seen |= 1u << i
            skip_ws(c)
            if c.p >= c.end or c.p[0] != 58:  # ':'
                return False
            c.p += 1
            skip_ws(c)
            if c.p < c.end and c.p[0] == 110:  # 'n'
                if not literal(c, "null", 4):
                    return False
            elif not plain_string(c, &vals[i], &lens[i]):
                return False
            skip_ws(c)
            if c.p < c.end and c.p[0] == 44:  # ','
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == 125:
                c.p += 1
                break
            return False
        # Required fields present, and not null.
        for i in range(ks.n):
            if required & (1u << i) and vals[i] is NULL:
                return False
        return True

    def clean(self, const uint8_t[::1] line, list results):
        """True when ``line`` is a valid ``package`` record of a known identity whose result
        in ``results`` is empty; False when it must be decoded (new, found something, or
        anything this scanner does not read)."""
        cdef Cursor c
        cdef uint32_t seen = 0
        cdef const uint8_t* s
        cdef Py_ssize_t n, slot
        cdef int i, k
        cdef const uint8_t* pvals[MAX_KEYS]
        cdef Py_ssize_t plens[MAX_KEYS]
        cdef const uint8_t* ivals[MAX_KEYS]
        cdef Py_ssize_t ilens[MAX_KEYS]
        cdef const uint8_t* fvals[MAX_FIELDS]
        cdef Py_ssize_t flens[MAX_FIELDS]
        if line.shape[0] == 0:
            return False
        c.p = &line[0]
        c.end = c.p + line.shape[0]
        skip_ws(&c)
        if c.p >= c.end or c.p[0] != 123:
            return False
        c.p += 1
        while True:
            skip_ws(&c)
            if not plain_string(&c, &s, &n):
                return False
            i = key_index(&self.top, s, n)
            if i < 0 or seen & (1u << i):
                return False
            seen |= 1u << i
            skip_ws(&c)
            if c.p >= c.end or c.p[0] != 58:
                return False
            c.p += 1
            skip_ws(&c)
            if i == 0:  # kind
                if not plain_string(&c, &s, &n) or n != 7 or memcmp(s, b"package", 7) != 0:
                    return False
            elif i == 1:  # schema_version: a small non-negative JSON integer
                s = c.p
                while c.p < c.end and 48 <= c.p[0] <= 57:
                    c.p += 1
                n = c.p - s
                if n == 0 or n > 9 or (n > 1 and s[0] == 48):  # none, huge, leading zero
                    return False
                if c.p < c.end and (c.p[0] == 46 or c.p[0] == 101 or c.p[0] == 69):
                    return False  # a fraction or exponent: not an int
            elif i == 2:  # image
                if c.p < c.end and c.p[0] == 110:
                    if not literal(&c, "null", 4):
                        return False
                elif not self._object(&c, &self.image, self.image_required, ivals, ilens):
                    return False
            else:  # package
                if not self._object(&c, &self.package, self.package_required, pvals, plens):
                    return False
            skip_ws(&c)
            if c.p < c.end and c.p[0] == 44:
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == 125:
                c.p += 1
                break
            return False
        skip_ws(&c)
        if c.p != c.end or not (seen & 1) or not (seen & 8):
            return False  # trailing bytes, no kind or no package
        for i in range(self.package.n):
            k = self.ident_of[i]
            if k >= 0:
                fvals[k] = pvals[i]
                flens[k] = plens[i]
        slot = self.table._find_plain(fvals, flens)
        if slot < 0 or slot >= len(results):
            return False
        r = results[slot]
        return type(r) is tuple and len(<tuple>r) == 0
