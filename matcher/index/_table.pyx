# cython: language_level=3
# The compiled interval-table query: reads the table in place (bytes, or an LMDB memoryview),
# bisects the ranges by upper bound, scans on, and bisects the exact rows. The layout is
# documented in table.py; every offset is bounds-checked, so a corrupt table raises TableError
# instead of reading outside the buffer.

from libc.stdint cimport uint32_t
from libc.string cimport memcmp

from regsweep.matcher.index.errors import TableError

cdef enum:
    HEADER_SIZE = 28
    RANGE_SIZE = 20
    EXACT_SIZE = 12

cdef uint32_t UNBOUNDED = 0xFFFFFFFF


cdef inline uint32_t u32(const unsigned char* p) noexcept nogil:
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef struct Table:
    const unsigned char* base
    Py_ssize_t n_ranges
    Py_ssize_t n_exact
    const unsigned char* blob
    Py_ssize_t blob_len


cdef int open_table(const unsigned char[::1] buf, Table* t) except -1:
    cdef Py_ssize_t size = buf.shape[0]
    cdef const unsigned char* p
    cdef Py_ssize_t blob_off, payload_off, payload_len
    if size < HEADER_SIZE:
        raise TableError("interval table shorter than its header")
    p = &buf[0]
    if memcmp(p, b"RSIT", 4) != 0 or u32(p + 4) != 1:
        raise TableError("not an interval table v1")
    t.base = p
    t.n_ranges = u32(p + 8)
    t.n_exact = u32(p + 12)
    blob_off = u32(p + 16)
    payload_off = u32(p + 20)
    payload_len = u32(p + 24)
    if (blob_off != HEADER_SIZE + t.n_ranges * RANGE_SIZE + t.n_exact * EXACT_SIZE
            or blob_off > payload_off or payload_off + payload_len != size):
        raise TableError("interval table sections do not add up to its size")
    t.blob = p + blob_off
    t.blob_len = payload_off - blob_off
    return 0


cdef inline int check(const Table* t, uint32_t off, uint32_t length) except -1:
    if <Py_ssize_t>off + <Py_ssize_t>length > t.blob_len:
        raise TableError("interval table row points outside its key blob")
    return 0


cdef inline int keycmp(const unsigned char* a, Py_ssize_t alen,
                       const unsigned char* b, Py_ssize_t blen) noexcept nogil:
    # memcmp order of two byte strings, the order version keys are built for.
    cdef Py_ssize_t n = alen if alen < blen else blen
    cdef int r = memcmp(a, b, n) if n else 0
    if r != 0:
        return r
    return (alen > blen) - (alen < blen)


cdef list query_one(const Table* t, const unsigned char* key, Py_ssize_t klen):
    cdef list hits = []
    cdef Py_ssize_t lo = 0, hi = t.n_ranges, mid, i
    cdef const unsigned char* row
    cdef uint32_t off, length
    # Bisect: the first range whose upper bound is above the key (unbounded ranges are last).
    while lo < hi:
        mid = (lo + hi) >> 1
        row = t.base + HEADER_SIZE + mid * RANGE_SIZE
        off = u32(row)
        length = u32(row + 4)
        if length == UNBOUNDED:
            hi = mid
            continue
        check(t, off, length)
        if keycmp(t.blob + off, length, key, klen) > 0:
            hi = mid
        else:
            lo = mid + 1
    for i in range(lo, t.n_ranges):
        row = t.base + HEADER_SIZE + i * RANGE_SIZE
        off = u32(row + 8)
        length = u32(row + 12)
        check(t, off, length)
        if keycmp(t.blob + off, length, key, klen) <= 0:
            hits.append(u32(row + 16))
    # Exact rows (OSV ``versions`` lists): bisect to the first key >= ours, take the equal run.
    cdef const unsigned char* exact = t.base + HEADER_SIZE + t.n_ranges * RANGE_SIZE
    lo = 0
    hi = t.n_exact
    while lo < hi:
        mid = (lo + hi) >> 1
        row = exact + mid * EXACT_SIZE
        off = u32(row)
        length = u32(row + 4)
        check(t, off, length)
        if keycmp(t.blob + off, length, key, klen) < 0:
            lo = mid + 1
        else:
            hi = mid
    while lo < t.n_exact:
        row = exact + lo * EXACT_SIZE
        off = u32(row)
        length = u32(row + 4)
        check(t, off, length)
        if keycmp(t.blob + off, length, key, klen) != 0:
            break
        hits.append(u32(row + 8))
        lo += 1
    if len(hits) > 1:
        # Overlapping ranges of one advisory (several ranges or affected entries) hit once.
        hits = sorted(set(hits))
    return hits


def query(const unsigned char[::1] table, const unsigned char[::1] key):
    """Payload indices of the ranges containing ``key`` and exact rows equal to it (sorted)."""
    cdef Table t
    open_table(table, &t)
    return query_one(&t, &key[0] if key.shape[0] else <const unsigned char*>b"", key.shape[0])


def query_many(const unsigned char[::1] table, keys):
    """``[query(table, k) for k in keys]`` with the header read once."""
    cdef Table t
    cdef const unsigned char[::1] k
    cdef list out = []
    open_table(table, &t)
    for key in keys:
        k = key
        out.append(query_one(&t, &k[0] if k.shape[0] else <const unsigned char*>b"", k.shape[0]))
    return out
