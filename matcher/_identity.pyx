# cython: language_level=3, boundscheck=False, wraparound=False
# The per-package half of the matcher, in C: a fleet repeats the same packages millions of
# times, so each package is reduced to a slot number (one per distinct identity) by an
# open-addressing hash table over the identity fields, read straight from the Struct's slots,
# and results are fanned back out by slot. Python only ever sees the distinct identities.
# ``identity.py`` is the pure-Python twin with the same API (REGSWEEP_PURE_PYTHON=1).
#
# Each package's identity is written out as one short byte string, its *key* (the fields'
# characters back to back, each behind a length header), and the table keeps a 96-bit
# keyed hash of the key of each identity it has seen, not the key. A lookup is then a hash
# of a few dozen bytes in L1 and one compare with one table entry, instead of a walk over
# five or six strings. Reading a stored key to compare it byte by byte was a quarter of the
# time per package: the keys of a fleet's distinct packages outgrow the cache, and each
# compare was a miss that prefetching did not hide. Two identities are told apart unless
# their keys agree in 96 hash bits under per-process secret seeds: among the 2**18
# identities the matcher holds at most, about 2**-61 is the chance that some pair does
# (hashes that behave as random functions of the key; the secrets keep an image's author
# from choosing names that collide).
# Packages decoded from NDJSON or the state store are new objects with new strings every
# time, so the key is taken from the characters, never from object identity, and the
# strings' own cached hashes are neither needed nor computed.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.object cimport Py_TYPE, PyObject, PyTypeObject
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset
from os import urandom

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    ctypedef struct PyASCIIObject:
        pass
    bint PyUnicode_CheckExact(PyObject* o)
    bint PyUnicode_IS_COMPACT_ASCII(PyObject* o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject* o)
    int PyUnicode_KIND(PyObject* o)
    void* PyUnicode_DATA(PyObject* o)
    PyObject* Py_None
    ctypedef struct PyListObject:
        PyObject** ob_item
    PyTypeObject PyTuple_Type
    PyTypeObject PyUnicode_Type
    void incref "Py_INCREF"(PyObject* o) noexcept nogil

cdef extern from *:
    """
    /* The 64x64 -> 128-bit multiply, folded: the mixing step of the key hash. */
    static inline uint64_t regsweep_fold_mul(uint64_t a, uint64_t b) {
    #if defined(__x86_64__) && defined(__GNUC__)
        /* GCC 12 keeps the __int128 product on the stack inside assign's loop: a store and
           a reload on the hash's critical path at every round. */
        uint64_t hi;
        __asm__("mulq %2" : "+a"(a), "=d"(hi) : "rm"(b) : "cc");
        return a ^ hi;
    #else
        unsigned __int128 r = (unsigned __int128)a * b;
        return (uint64_t)r ^ (uint64_t)(r >> 64);
    #endif
    }
    """
    uint64_t fold_mul "regsweep_fold_mul"(uint64_t a, uint64_t b) noexcept nogil

cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* p) noexcept nogil
    # Non-temporal: for the packages, read once per pass, so that they pass through without
    # pushing the table out of the cache.
    void prefetch_once "__builtin_prefetch"(const void* p, int rw, int loc) noexcept nogil

cdef enum:
    MAX_FIELDS = 8
    MAX_FOLD_VALUES = 8
    MAX_FOLD_LEN = 8
    # How many steps behind the first each pipeline stage works (see ``assign``).
    LEAD_FIELDS = 3
    LEAD_HASH = 6
    LEAD_PROBE = 12  # six steps for the entry, the likeliest miss
    RING = 16
    FAN_LEAD = 32  # fan_out: items this far ahead, their tuples half as far (16: 1.12x)
    MAX_CAP = 1 << 30
    # The key, field by field: 0xFF for None; a str of one byte per character shorter than
    # 0xFE characters (nearly all) as its length in one byte, then its characters; any
    # other str as 0xFE, its kind (1, 2 or 4 bytes per character), its length in
    # characters (4 bytes), then its characters. CPython keeps every str in the narrowest
    # kind its characters fit, so equal identities have equal keys and unequal ones differ.
    KEY_NONE = 0xFF
    KEY_LONG = 0xFE
    KEY_MIN_BUF = 256
    # The key buffer of ``assign``: room for the longest key ``_key`` writes (every field a
    # str of KEY_LONG - 1 characters behind its length byte), and before it for the 32
    # bytes of its first field's copy.
    KEY_FAST_BUF = 32 + MAX_FIELDS * KEY_LONG


cdef struct Entry:
    # 16 bytes, four to a cache line: the table of a fleet's distinct packages outgrows
    # the cache, and every lookup is a miss on its entry.
    uint64_t hash      # the key's first hash (its low bits pick the place)
    uint32_t check     # the high half of its second hash
    int32_t slot       # -1: empty


# Per-process secrets of the key hashes (four each), drawn from os.urandom when the module
# loads.
cdef uint64_t SEED[8]


cdef void set_seed(const char* secret) noexcept:
    memcpy(SEED, secret, sizeof(SEED))


set_seed(urandom(sizeof(SEED)))

# ``IdentityTable._key`` reads up to 32 bytes before the end of a short str's characters,
# from inside its header: true of every CPython whose compact str header is that long.
if sizeof(PyASCIIObject) < 32:
    raise ImportError("the compact str header is shorter than _key assumes")


cdef inline uint64_t load8(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef const uint8_t* ONES = b"\xff\xff\xff\xff\xff\xff\xff\xff"


cdef inline uint64_t last8(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    # ``n`` (at most 8) bytes as the last ``n`` of a word, behind zeros: what ``load8``
    # reads from ``p + n - 8`` with the bytes before ``p`` cleared.
    cdef uint8_t buf[8]
    memset(buf, 0, 8)
    memcpy(buf + 8 - n, p, n)
    return load8(buf)


cdef inline uint64_t key_hash(const uint8_t* p, Py_ssize_t n, uint32_t* check) noexcept nogil:
    # Two keyed multiply-fold hashes of a key, 16 bytes a round (the construction of
    # wyhash, which Go's runtime uses for maps on machines without AES), with independent
    # secrets: the first is returned, the high half of the second goes to ``check``.
    # SipHash, CPython's own, costs about 20 ns for a 50-byte key, a fifth of the whole
    # per-package budget. The secrets are per process: packages come from untrusted images,
    # and names crafted to collide cannot be computed in advance. Callers pass keys of at
    # least 1 byte.
    cdef uint64_t h = SEED[0] ^ <uint64_t>n, g = SEED[4] ^ <uint64_t>n, a, b
    cdef Py_ssize_t i = 0
    while n - i > 16:
        a, b = load8(p + i), load8(p + i + 8)
        h = fold_mul(a ^ SEED[1], b ^ h)
        g = fold_mul(a ^ SEED[5], b ^ g)
        i += 16
    # The last 1..16 bytes, read as two (possibly overlapping) words.
    if n >= 16:
        a, b = load8(p + n - 16), load8(p + n - 8)
    elif n >= 8:
        a, b = load8(p), load8(p + n - 8)
    else:
        a = 0
        for i in range(n):
            a = (a << 8) | p[i]
        b = a >> 32
    check[0] = <uint32_t>(
        fold_mul(fold_mul(a ^ SEED[6], b ^ g) ^ SEED[7], <uint64_t>n ^ SEED[5]) >> 32
    )
    return fold_mul(fold_mul(a ^ SEED[2], b ^ h) ^ SEED[3], <uint64_t>n ^ SEED[1])


cdef inline void copy_bytes(uint8_t* d, const uint8_t* s, Py_ssize_t n) noexcept nogil:
    # A field's characters into a key: a few bytes, where a call to memcpy costs more.
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    if n < 8:
        for i in range(n):
            d[i] = s[i]
        return
    while i + 8 <= n:
        w = load8(s + i)
        memcpy(d + i, &w, 8)
        i += 8
    w = load8(s + n - 8)
    memcpy(d + n - 8, &w, 8)


cdef inline Py_ssize_t field_key_size(PyObject* o) noexcept:
    # Bytes field ``o`` (a str or None) takes in a key.
    cdef Py_ssize_t n
    cdef int kind
    if o == Py_None:
        return 1
    n = PyUnicode_GET_LENGTH(o)
    kind = PyUnicode_KIND(o)
    if kind == 1 and n < KEY_LONG:
        return 1 + n
    return 6 + n * kind


cdef inline uint8_t* put_field(uint8_t* p, int kind, Py_ssize_t n, const void* data) noexcept:
    # Appends one str field (``n`` characters of ``kind`` bytes at ``data``) to a key.
    cdef uint32_t n32 = <uint32_t>n
    if kind == 1 and n < KEY_LONG:
        p[0] = <uint8_t>n
        p += 1
    else:
        p[0] = KEY_LONG
        p[1] = <uint8_t>kind
        memcpy(p + 2, &n32, 4)
        p += 6
    copy_bytes(p, <const uint8_t*>data, n * kind)
    return p + n * kind


cdef class IdentityTable:
    """Package identity (the fields matching reads) -> slot number, in C.

    ``assign(packages)`` gives every package the slot of its identity, creating slots for
    identities not seen before (numbered from ``len(self)`` on) and returning the index of
    the first package of each new one; ``fan_out(results, …)`` then returns, per package,
    ``results[slot]``. The two are called in pairs: ``assign`` keeps the slots of the last
    batch for ``fan_out``. Every field must be a ``str`` or ``None``. The table keeps 16
    bytes per identity it has seen (two keyed hashes of its fields' characters, 96 bits in
    all: see the module comment), so its memory grows with the distinct identities until
    ``clear()``; it holds no reference to any package or string.

    ``fold=(field, values, pairs)`` names fields that do not count for some packages: when
    ``field`` is one of ``values`` (each of 1 to 8 ASCII characters), each
    ``(dropped, decider)`` of ``pairs`` drops field ``dropped`` (it is not read, and counts
    as None) when field ``decider`` is a non-empty str. The matcher's rules read a distro
    package's source name and version, when it has them, instead of its binary name and
    version, so all binaries built from one source share one identity, and the binary name
    is never read.
    """

    cdef Entry* entries
    cdef Py_ssize_t cap, count
    cdef int nfields
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef object ptype
    cdef tuple names
    cdef int32_t* slots
    cdef Py_ssize_t nslots, slots_cap
    # The buffer ``assign`` writes each package's key to, and the one of ``_find_plain``;
    # each grows to the longest key it has held.
    cdef uint8_t* key_buf
    cdef Py_ssize_t key_cap
    cdef uint8_t* scratch
    cdef Py_ssize_t scratch_cap
    # ``fold``: the deciding field (-1: none), its values, and the (dropped, decider) pairs.
    cdef int fold_k, nfold_values, npairs
    cdef uint32_t droppable  # bit k: field k is some pair's dropped field
    # Each fold value as the 8 bytes that end with its last character, zeros before it,
    # and the mask of its characters in those bytes (see ``_fold_value``).
    cdef uint64_t fold_words[MAX_FOLD_VALUES]
    cdef uint64_t fold_masks[MAX_FOLD_VALUES]
    cdef Py_ssize_t fold_lens[MAX_FOLD_VALUES]
    cdef int fold_drop[MAX_FIELDS]
    cdef int fold_decider[MAX_FIELDS]

    def __cinit__(self, ptype, tuple names, fold=None):
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
        self.fold_k = -1
        if fold is not None:
            self._set_fold(fold)
        self.entries = self._alloc(1024)
        self.cap = 1024
        self.key_buf = <uint8_t*>malloc(KEY_FAST_BUF)
        if self.key_buf is NULL:
            raise MemoryError()
        self.key_cap = KEY_FAST_BUF

    def __dealloc__(self):
        free(self.entries)
        free(self.slots)
        free(self.scratch)
        free(self.key_buf)

    cdef int _set_fold(self, fold) except -1:
        field, values, pairs = fold
        if field not in self.names:
            raise ValueError(f"fold field {field!r} is not an identity field")
        if not 0 < len(values) <= MAX_FOLD_VALUES:
            raise ValueError(f"between 1 and {MAX_FOLD_VALUES} fold values")
        if not 0 < len(pairs) <= MAX_FIELDS:
            raise ValueError(f"between 1 and {MAX_FIELDS} fold pairs")
        for i, v in enumerate(values):
            b = v.encode("ascii")
            if not 0 < len(b) <= MAX_FOLD_LEN:
                raise ValueError(f"fold value {v!r}: 1 to {MAX_FOLD_LEN} ASCII characters")
            self.fold_words[i] = last8(<const uint8_t*>(<const char*>b), len(b))
            self.fold_masks[i] = last8(ONES, len(b))
            self.fold_lens[i] = len(b)
        for j, (dropped, decider) in enumerate(pairs):
            if dropped not in self.names or decider not in self.names:
                raise ValueError(f"fold pair {(dropped, decider)!r}: not identity fields")
            if field in (dropped, decider) or dropped == decider:
                raise ValueError(f"fold pair {(dropped, decider)!r} is not independent")
            self.fold_drop[j] = self.names.index(dropped)
            self.fold_decider[j] = self.names.index(decider)
        for j in range(len(pairs)):
            for i in range(len(pairs)):
                if self.fold_drop[j] == self.fold_decider[i]:
                    raise ValueError("a fold pair drops another pair's decider")
        self.nfold_values = len(values)
        self.npairs = len(pairs)
        for j in range(self.npairs):
            self.droppable |= (<uint32_t>1) << self.fold_drop[j]
        self.fold_k = self.names.index(field)
        return 0

    cdef inline void _fold(self, PyObject** f) noexcept:
        # Sets the fields that do not count for the package with fields ``f`` (see
        # ``fold``) to None. Reads only the deciding str and the deciders' lengths; a field
        # of any other type folds nothing (``_key`` then raises).
        cdef PyObject* o
        cdef int i
        cdef Py_ssize_t n
        if self.fold_k < 0:
            return
        o = f[self.fold_k]
        if not (o != Py_None and PyUnicode_CheckExact(o) and PyUnicode_IS_COMPACT_ASCII(o)):
            return
        n = PyUnicode_GET_LENGTH(o)
        # The 8 bytes that end with the last character: those before it are the str's
        # header, always there (see ``_key``).
        if not (0 < n <= MAX_FOLD_LEN and self._fold_value(
            load8(<const uint8_t*>(<PyASCIIObject*>o + 1) + n - 8), n
        )):
            return
        for i in range(self.npairs):
            o = f[self.fold_decider[i]]
            if o != Py_None and PyUnicode_CheckExact(o) and PyUnicode_GET_LENGTH(o) > 0:
                f[self.fold_drop[i]] = Py_None

    cdef inline bint _fold_value(self, uint64_t last, Py_ssize_t n) noexcept:
        # Whether the deciding field, of ``n`` characters (1 to MAX_FOLD_LEN) that end
        # ``last`` (8 bytes), is one of the fold values: a word compare each, where a call
        # to memcmp per value cost more than the rest of the fold.
        cdef int i
        for i in range(self.nfold_values):
            if (last & self.fold_masks[i]) == self.fold_words[i] and n == self.fold_lens[i]:
                return True
        return False

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

    cdef int _unreadable(self, PyObject* p) except -1:
        # Raises why ``_fetch`` cannot read package ``p``'s identity fields.
        cdef int k
        if Py_TYPE(<object>p) != <PyTypeObject*>self.ptype:
            raise TypeError(f"expected {self.ptype.__name__}, got {type(<object>p).__name__}")
        for k in range(self.nfields):
            if (<PyObject**>((<char*>p) + self.offsets[k]))[0] is NULL:
                raise AttributeError(f"a package with no {self.names[k]}")
        raise AssertionError("the package is readable")

    cdef inline Py_ssize_t _key(self, PyObject** f, const uint8_t** start) except -1:
        # Writes the key of fields ``f`` (folded: see ``_fold``) to the key buffer; returns
        # its size and sets ``start`` to where it starts. Nearly every field is None or a
        # short ASCII str: those are written here, last field first, backwards from the
        # buffer's end. A str of up to 16 (or 32) characters is copied as the 16 (32) bytes
        # that end with its last character: a fixed-size copy instead of a loop whose length
        # varies from field to field (mispredicted branches were a third of the key's
        # cost). The bytes before its characters are the str's own header, always there,
        # and land where the next field written (the previous one) overwrites them.
        # Anything else goes the general way.
        cdef uint8_t* end = self.key_buf + self.key_cap
        cdef uint8_t* p = end
        cdef const uint8_t* data
        cdef PyObject* o
        cdef Py_ssize_t n
        cdef int k
        # In registers: the key's byte stores may alias anything in memory.
        cdef PyObject* none = Py_None
        cdef PyTypeObject* str_type = &PyUnicode_Type
        for k in range(self.nfields - 1, -1, -1):
            o = f[k]
            if o == none:
                p -= 1
                p[0] = KEY_NONE
                continue
            if not (Py_TYPE(<object>o) == str_type and PyUnicode_IS_COMPACT_ASCII(o)):
                return self._key_general(f, start)
            n = PyUnicode_GET_LENGTH(o)
            data = <const uint8_t*>(<PyASCIIObject*>o + 1) + n  # just past the last character
            if n <= 16:
                memcpy(p - 16, data - 16, 16)
            elif n <= 32:
                memcpy(p - 32, data - 32, 32)
            elif n < KEY_LONG:
                memcpy(p - n, data - n, n)
            else:
                return self._key_general(f, start)
            p -= n + 1
            p[0] = <uint8_t>n
        start[0] = p
        return end - p

    cdef Py_ssize_t _key_general(self, PyObject** f, const uint8_t** start) except -1:
        # ``_key`` for any fields: a size pass (the buffer grows to fit), then the key.
        cdef Py_ssize_t size = 0
        cdef uint8_t* p
        cdef int k
        for k in range(self.nfields):
            if f[k] != Py_None and not PyUnicode_CheckExact(f[k]):
                raise TypeError(
                    f"{self.names[k]} is {type(<object>f[k]).__name__}, not str or None"
                )
            size += field_key_size(f[k])
        if size > 0xFFFFFFFF:
            raise ValueError("package identity too large")
        if size > self.key_cap:
            p = <uint8_t*>realloc(self.key_buf, size)
            if p is NULL:
                raise MemoryError()
            self.key_buf = p
            self.key_cap = size
        p = self.key_buf
        start[0] = p
        for k in range(self.nfields):
            if f[k] == Py_None:
                p[0] = KEY_NONE
                p += 1
            else:
                p = put_field(
                    p, PyUnicode_KIND(f[k]), PyUnicode_GET_LENGTH(f[k]), PyUnicode_DATA(f[k])
                )
        return size

    cdef inline Entry* _find(self, uint64_t h, uint32_t check) noexcept:
        # The entry of the key with hashes ``h`` and ``check``, or the empty entry where it
        # would go.
        cdef Py_ssize_t mask = self.cap - 1, j = h & mask
        cdef Entry* e
        while True:
            e = &self.entries[j]
            if e.slot < 0 or (e.hash == h and e.check == check):
                return e
            j = (j + 1) & mask

    cdef Py_ssize_t _add(self, Entry* e, uint64_t h, uint32_t check) except -1:
        # Gives the key with hashes ``h`` and ``check`` the next slot, in empty entry ``e``
        # (where ``_find`` stopped), or where it goes once the table has grown; returns it.
        if (self.count + 1) * 4 > self.cap * 3:
            self._grow()
            e = self._find(h, check)
        e.hash = h
        e.check = check
        e.slot = <int32_t>self.count
        self.count += 1
        return e.slot

    cdef Py_ssize_t _find_plain(self, const uint8_t** vals, Py_ssize_t* lens) except -2:
        # The slot of an identity given as ASCII byte strings (NULL for None), else -1. An
        # ASCII str is one byte per character, so its key is made of the same bytes.
        cdef Py_ssize_t size = 0
        cdef uint8_t* p
        cdef int k
        cdef const uint8_t* kept[MAX_FIELDS]
        cdef uint32_t drop = 0, check
        cdef uint64_t h
        cdef const uint8_t* v = vals[self.fold_k] if self.fold_k >= 0 else NULL
        cdef Py_ssize_t vn = lens[self.fold_k] if self.fold_k >= 0 else 0
        if v is not NULL and 0 < vn <= MAX_FOLD_LEN and self._fold_value(last8(v, vn), vn):
            for k in range(self.npairs):
                if vals[self.fold_decider[k]] is not NULL and lens[self.fold_decider[k]] > 0:
                    drop |= (<uint32_t>1) << self.fold_drop[k]
        for k in range(self.nfields):
            kept[k] = vals[k]
            if (drop >> k) & 1:
                kept[k] = NULL
        vals = kept
        for k in range(self.nfields):
            size += 1 if vals[k] is NULL else (1 + lens[k] if lens[k] < KEY_LONG else 6 + lens[k])
        if size > self.scratch_cap:
            p = <uint8_t*>realloc(self.scratch, max(size, KEY_MIN_BUF))
            if p is NULL:
                raise MemoryError()
            self.scratch = p
            self.scratch_cap = max(size, KEY_MIN_BUF)
        p = self.scratch
        for k in range(self.nfields):
            if vals[k] is NULL:
                p[0] = KEY_NONE
                p += 1
            else:
                p = put_field(p, 1, lens[k], vals[k])
        h = key_hash(self.scratch, size, &check)
        return self._find(h, check).slot  # -1 when empty

    cdef inline int _fetch(
        self, list packages, Py_ssize_t step, Py_ssize_t n, PyObject* (*ring_f)[MAX_FIELDS]
    ) except -1:
        # The first two stages of the pipeline (see ``assign``): prefetch package ``step``;
        # read the identity fields of package ``step - LEAD_FIELDS`` (borrowed from the
        # Struct's slots) into its ring entry and prefetch each str's header and first
        # characters (often the next line). Each field is a str or None: ``_key`` checks,
        # once the string is in cache.
        cdef Py_ssize_t x = step
        cdef PyObject* obj
        cdef PyObject* v
        cdef PyObject** f
        cdef int k
        if x < n:
            obj = PyList_GET_ITEM(packages, x)
            prefetch_once(obj, 0, 0)
            prefetch_once((<char*>obj) + 64, 0, 0)
        x = step - LEAD_FIELDS
        if 0 <= x < n:
            obj = PyList_GET_ITEM(packages, x)
            f = ring_f[x & (RING - 1)]
            if Py_TYPE(<object>obj) != <PyTypeObject*>self.ptype:
                return self._unreadable(obj)
            for k in range(self.nfields):
                v = (<PyObject**>((<char*>obj) + self.offsets[k]))[0]
                if v is NULL:
                    return self._unreadable(obj)
                f[k] = v
                if not (self.droppable >> k) & 1:
                    prefetch_once(v, 0, 0)
                    prefetch_once((<char*>v) + 63, 0, 0)
            # A field ``fold`` may drop is fetched only when its decider is None: a package
            # it is then dropped for never has its characters brought in. (The rare package
            # whose decider is set but folds nothing reads the field without a prefetch.)
            for k in range(self.npairs):
                if f[self.fold_decider[k]] == Py_None:
                    v = f[self.fold_drop[k]]
                    prefetch_once(v, 0, 0)
                    prefetch_once((<char*>v) + 63, 0, 0)
        return 0

    def assign(self, list packages):
        """Slot every package; return the index of the first package of each new identity."""
        cdef Py_ssize_t n = PyList_GET_SIZE(packages), step, x, slot
        cdef int r
        cdef Entry* e
        # Packages in flight, by index % RING: their fields (borrowed) and key hashes.
        cdef PyObject* ring_f[RING][MAX_FIELDS]
        cdef uint64_t ring_h[RING]
        cdef uint32_t ring_check[RING]
        cdef const uint8_t* key
        cdef Py_ssize_t size
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
        # object, its field strings, its table entry. Each stage prefetches what a later
        # stage reads, for packages a few places ahead, so the misses of neighbouring
        # packages overlap instead of adding up. The packages stream past once; the table
        # is read again and again.
        for step in range(n + LEAD_PROBE):
            self._fetch(packages, step, n, ring_f)
            x = step - LEAD_HASH
            if 0 <= x < n:
                r = x & (RING - 1)
                self._fold(ring_f[r])
                size = self._key(ring_f[r], &key)
                ring_h[r] = key_hash(key, size, &ring_check[r])
                prefetch(&self.entries[ring_h[r] & (self.cap - 1)])
            x = step - LEAD_PROBE
            if x >= 0:
                r = x & (RING - 1)
                e = self._find(ring_h[r], ring_check[r])
                if e.slot >= 0:
                    slot = e.slot
                else:
                    slot = self._add(e, ring_h[r], ring_check[r])
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
        cdef Py_ssize_t i, n = self.nslots, nres = PyList_GET_SIZE(results)
        cdef list out = PyList_New(n)
        cdef list errors = []
        cdef PyObject* r
        cdef PyObject* empty = <PyObject*>()
        cdef PyObject** items = (<PyListObject*>results).ob_item
        cdef int32_t* slots = self.slots
        for i in range(n):
            if slots[i] >= nres:
                raise IndexError("a slot without a result: fan_out before its results")
        for i in range(n):
            # ``results`` is as long as the distinct identities, read in the packages'
            # order: prefetch the item and then the tuple it points to (whose count the
            # INCREF writes) a few packages ahead.
            if i + FAN_LEAD < n:
                prefetch(&items[slots[i + FAN_LEAD]])
                if i + FAN_LEAD // 2 < n:
                    prefetch(items[slots[i + FAN_LEAD // 2]])
            r = items[slots[i]]
            if Py_TYPE(<object>r) == &PyTuple_Type:
                incref(r)
                PyList_SET_ITEM(out, i, <object>r)
            else:
                if Py_TYPE(<object>r) != <PyTypeObject*>failure_type:
                    raise TypeError(
                        f"result {type(<object>r).__name__} is neither tuple nor failure"
                    )
                incref(empty)
                PyList_SET_ITEM(out, i, <object>empty)
                errors.append(error_factory(i, <object>r))
        return out, errors


    def read_floor(self, list packages):
        """Touch every cache line that holds an identity character of a package (each
        field's first and last character, and every 64th between), as ``assign`` must, and
        do nothing else: the memory floor that any matcher of package objects stays above.
        ``benchmarks.bench_matcher`` reports the core against it, in the same run. Returns
        the sum of the bytes read, so that the reads cannot be optimised away."""
        cdef Py_ssize_t n = PyList_GET_SIZE(packages), step, x, i, nbytes
        cdef PyObject* o
        cdef PyObject** f
        cdef PyObject* ring_f[RING][MAX_FIELDS]
        cdef const uint8_t* d
        cdef uint64_t acc = 0
        cdef int k
        # The same prefetch pipeline as ``assign`` up to the point where the key is made.
        for step in range(n + LEAD_HASH):
            self._fetch(packages, step, n, ring_f)
            x = step - LEAD_HASH
            if 0 <= x < n:
                f = ring_f[x & (RING - 1)]
                self._fold(f)
                for k in range(self.nfields):
                    o = f[k]
                    if o == Py_None:
                        continue
                    if not PyUnicode_CheckExact(o):
                        raise TypeError(f"{self.names[k]} is not a str")
                    d = <const uint8_t*>PyUnicode_DATA(o)
                    nbytes = PyUnicode_GET_LENGTH(o) * PyUnicode_KIND(o)
                    if nbytes == 0:
                        continue
                    acc += d[0] + d[nbytes - 1]
                    i = 64
                    while i < nbytes - 1:
                        acc += d[i]
                        i += 64
        return acc


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

cdef enum:
    MAX_KEYS = 16


cdef struct KeySet:
    int n
    const char* names[MAX_KEYS]
    Py_ssize_t lens[MAX_KEYS]
    # Each name of up to 16 bytes as two words (``key_words``), so that a key is told in a
    # compare or two instead of a call to memcmp per name of its length.
    uint64_t head[MAX_KEYS]
    uint64_t tail[MAX_KEYS]


cdef struct Cursor:
    const uint8_t* p
    const uint8_t* end


cdef inline void skip_ws(Cursor* c) noexcept nogil:
    # Whitespace is all at or below the space; encoders write none (one test, then).
    while c.p < c.end and c.p[0] <= 32 and (
        c.p[0] == 32 or c.p[0] == 9 or c.p[0] == 10 or c.p[0] == 13
    ):
        c.p += 1


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* How many bytes from p on (up to end) are printable ASCII other than quote and backslash:
       the characters of a JSON string that needs no unescaping. 16 at a time where the
       machine has SSE2: a byte at a time, this loop was a third of a package line's
       instructions. */
    static inline Py_ssize_t regsweep_plain_run(const uint8_t* p, const uint8_t* end) {
        const uint8_t* q = p;
    #if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8(0x22), backslash = _mm_set1_epi8(0x5C);
        const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F);
        while (end - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i*)q);
            /* Compared as signed bytes, 0x80 and up are below the space, with the controls. */
            __m128i stop = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
            int m = _mm_movemask_epi8(stop);
            if (m)
                return q - p + __builtin_ctz(m);
            q += 16;
        }
    #endif
        while (q < end && *q >= 0x20 && *q < 0x7F && *q != 0x22 && *q != 0x5C)
            q++;
        return q - p;
    }
    """
    Py_ssize_t plain_run "regsweep_plain_run"(const uint8_t* p, const uint8_t* end) noexcept nogil


cdef inline bint plain_string(Cursor* c, const uint8_t** s, Py_ssize_t* n) noexcept nogil:
    # A JSON string of printable ASCII without escapes; its characters in (s, n).
    cdef const uint8_t* q
    if c.p >= c.end or c.p[0] != 34:  # '"'
        return False
    q = c.p + 1
    q += plain_run(q, c.end)
    if q >= c.end or q[0] != 34:  # the end, or a control, non-ASCII or backslash
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


cdef void key_words(const uint8_t* s, Py_ssize_t n, uint64_t* head, uint64_t* tail) noexcept:
    # ``n`` (at most 16) bytes as two words: the first 8 (fewer behind zeros), and the last
    # 8 (none: 0). Together they hold every byte: a key name's words, or a mask's.
    cdef uint8_t buf[8]
    memset(buf, 0, 8)
    memcpy(buf, s, min(n, 8))
    head[0] = load8(buf)
    tail[0] = load8(s + n - 8) if n >= 8 else 0


# HEAD_MASK[n]: the bits of a word (as ``load8`` reads it) that hold its first n bytes.
cdef uint64_t HEAD_MASK[9]


cdef void set_head_masks() noexcept:
    cdef uint64_t unused
    cdef int n
    for n in range(9):
        key_words(ONES, n, &HEAD_MASK[n], &unused)


set_head_masks()


cdef inline int key_index(
    const KeySet* ks, const uint8_t* s, Py_ssize_t n, const uint8_t* end, int first
) noexcept nogil:
    # Which of ``ks`` the key of ``n`` bytes at ``s`` (in a line that ends at ``end``) is:
    # the words of ``key_words``, read straight from the line when 8 bytes are there. The
    # names are tried from ``first`` on (msgspec writes a struct's fields in order, so the
    # one after the previous key is nearly always the next).
    cdef int i, j
    cdef uint64_t head, tail
    if 0 < n <= 16 and end - s >= 8:
        head = load8(s) & HEAD_MASK[min(n, 8)]
        tail = load8(s + n - 8) if n >= 8 else 0
        for j in range(ks.n):
            i = first + j
            if i >= ks.n:
                i -= ks.n
            if ks.lens[i] == n and ks.head[i] == head and ks.tail[i] == tail:
                return i
        return -1
    for i in range(ks.n):
        if ks.lens[i] == n and memcmp(ks.names[i], s, n) == 0:
            return i
    return -1


cdef inline int member_key(
    Cursor* c, const KeySet* ks, uint32_t* seen, int* last
) noexcept nogil:
    # At an object member: reads its key (one of ``ks``, not seen before in this object) and
    # the colon. Returns the key's index (also in ``last``, -1 before the first member), or
    # -1 for anything else.
    cdef const uint8_t* s
    cdef Py_ssize_t n
    cdef int i
    skip_ws(c)
    if not plain_string(c, &s, &n):
        return -1
    i = key_index(ks, s, n, c.end, last[0] + 1)
    if i < 0 or seen[0] & (1u << i):
        return -1
    seen[0] |= 1u << i
    last[0] = i
    skip_ws(c)
    if c.p >= c.end or c.p[0] != 58:  # ':'
        return -1
    c.p += 1
    skip_ws(c)
    return i


cdef inline int member_end(Cursor* c) noexcept nogil:
    # After a member's value: 1 when another member follows, 0 at the object's closing
    # brace, -1 for anything else.
    skip_ws(c)
    if c.p < c.end and c.p[0] == 44:  # ','
        c.p += 1
        return 1
    if c.p < c.end and c.p[0] == 125:  # '}'
        c.p += 1
        return 0
    return -1


cdef class LineScanner:
    """Decides from an NDJSON line's bytes whether it is a ``package`` record whose package
    the ``IdentityTable`` already knows with an empty result (see the section comment).

    ``package_fields``: every field of the package struct; ``required``: those without a
    default; the identity fields are the table's, in its order. The record's own fields are
    ``kind`` (``"package"``), ``schema_version`` (an int), ``image`` (null or an object of
    ``image_fields``, ``image_required`` among them) and ``package``. ``false_fields`` are
    the package's boolean fields that are never part of an identity (``root``): ``false``
    there reads as absent (a ``true`` one is decoded).
    """

    cdef IdentityTable table
    cdef KeySet top, image, package
    cdef int ident_of[MAX_KEYS]    # package key index -> identity field index, or -1
    cdef uint32_t package_required, image_required, package_false
    cdef list _keep               # the bytes the KeySets point into

    def __cinit__(
        self,
        IdentityTable table,
        tuple package_fields,
        tuple required,
        tuple image_fields,
        tuple image_required,
        tuple false_fields=(),
    ):
        self.table = table
        self._keep = []
        self._fill(&self.top, ("kind", "schema_version", "image", "package"))
        self._fill(&self.image, image_fields)
        self._fill(&self.package, package_fields)
        self.package_required = self._mask(package_fields, required)
        self.image_required = self._mask(image_fields, image_required)
        self.package_false = self._mask(package_fields, false_fields)
        if any(name in table.names for name in false_fields):
            raise ValueError("a boolean field read as absent cannot be an identity field")
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
            if 0 < len(b) <= 16:
                key_words(<const uint8_t*>ks.names[i], len(b), &ks.head[i], &ks.tail[i])
        return 0

    cdef uint32_t _mask(self, tuple names, tuple required):
        cdef uint32_t m = 0
        for i, name in enumerate(names):
            if name in required:
                m |= 1u << i
        return m

    cdef bint _object(
        self, Cursor* c, const KeySet* ks, uint32_t required, uint32_t falses,
        const uint8_t** vals, Py_ssize_t* lens,
    ) noexcept:
        # An object of ``ks`` keys whose values are plain strings or null (value pointer
        # NULL for null or absent), or ``false`` for the keys of ``falses`` (read as
        # absent). False for anything else.
        cdef uint32_t seen = 0
        cdef int last = -1
        cdef int i, more
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
            i = member_key(c, ks, &seen, &last)
            if i < 0:
                return False
            if c.p < c.end and c.p[0] == 110:  # 'n'
                if not literal(c, "null", 4):
                    return False
            elif c.p < c.end and c.p[0] == 102 and falses & (1u << i):  # 'f'
                if not literal(c, "false", 5):
                    return False
            elif not plain_string(c, &vals[i], &lens[i]):
                return False
            more = member_end(c)
            if more < 0:
                return False
            if more == 0:
                break
        # Required fields present, and not null.
        for i in range(ks.n):
            if required & (1u << i) and vals[i] is NULL:
                return False
        return True

    def clean(self, bytes line not None, list results):
        """True when ``line`` is a valid ``package`` record of a known identity whose result
        in ``results`` is empty; False when it must be decoded (new, found something, or
        anything this scanner does not read)."""
        cdef Cursor c
        cdef uint32_t seen = 0
        cdef int last = -1
        cdef const uint8_t* s
        cdef Py_ssize_t n, slot
        cdef int i, k, more
        cdef const uint8_t* pvals[MAX_KEYS]
        cdef Py_ssize_t plens[MAX_KEYS]
        cdef const uint8_t* ivals[MAX_KEYS]
        cdef Py_ssize_t ilens[MAX_KEYS]
        cdef const uint8_t* fvals[MAX_FIELDS]
        cdef Py_ssize_t flens[MAX_FIELDS]
        c.p = <const uint8_t*>PyBytes_AS_STRING(line)
        c.end = c.p + PyBytes_GET_SIZE(line)
        skip_ws(&c)
        if c.p >= c.end or c.p[0] != 123:
            return False
        c.p += 1
        while True:
            i = member_key(&c, &self.top, &seen, &last)
            if i < 0:
                return False
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
                elif not self._object(&c, &self.image, self.image_required, 0, ivals, ilens):
                    return False
            else:  # package
                if not self._object(
                    &c, &self.package, self.package_required, self.package_false, pvals, plens
                ):
                    return False
            more = member_end(&c)
            if more < 0:
                return False
            if more == 0:
                break
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
