"""The advisory index on disk: one LMDB file, built whole and swapped in atomically.

Named databases (LMDB keys are at most 511 bytes):

* ``meta``       ``b"meta"`` → ``IndexMeta`` (schema version, build time, sources, skips);
* ``advisories`` ``source NUL id`` → ``StoredAdvisory`` (what a vulnerability record shows);
* ``aliases``    alias id → the advisory keys that carry it;
* ``packages``   ``ecosystem NUL name`` → an interval table (``table.py``) whose payloads
  are ``Hit`` rows: which advisory, its fixed versions and the vendor's status;
* ``cves``       CVE id → ``CveRating``: the severity the CVE records give it
  (``advisories.cve``), for the findings whose advisory has none of its own. An index
  built before this database existed has none, and reads as one without CVE ratings.

The index is immutable once built: ``build`` writes a new file beside the old one and
``os.replace``s it into place, so a reader sees the old index or the new one, never half of
one, and readers open it without a lock file. A second build of the same path while one
runs fails at once (``BuildLocked``) instead of waiting or interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
import msgspec

from regsweep.matcher import lmdbfile, versions
from regsweep.matcher.advisories import cve
from regsweep.matcher.advisories.ecosystems import Ecosystem, normalize_version
from regsweep.matcher.advisories.model import (
    Advisory,
    Affected,
    Cvss,
    EventKind,
    Severity,
    SeveritySource,
    Status,
)
from regsweep.matcher.advisories.stats import IngestStats
from regsweep.matcher.index import intervals, table
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.versions import InvalidVersion

SCHEMA_VERSION = 1
#: Sparse on disk: LMDB only grows the file as pages are written.
MAP_SIZE = 1 << 36
_MAX_KEY = 511
#: meta, advisories, aliases, packages, cves.
_MAX_DBS = 5
_EVENT = {
    EventKind.INTRODUCED: intervals.EventKind.INTRODUCED,
    EventKind.FIXED: intervals.EventKind.FIXED,
    EventKind.LAST_AFFECTED: intervals.EventKind.LAST_AFFECTED,
    EventKind.LIMIT: intervals.EventKind.LIMIT,
}


class BuildLocked(AdvisoryIndexError):
    """Another build of the same index path is running."""


class IndexMissing(AdvisoryIndexError):
    """No index at the path (never built, or removed)."""


class IndexDamaged(AdvisoryIndexError):
    """The index file is truncated or not an LMDB file: it has to be rebuilt."""


class IndexMeta(msgspec.Struct, kw_only=True):
    """The index's own description, shown by ``regsweep db info``."""

    schema_version: int = SCHEMA_VERSION
    built_at: datetime
    advisories: int = 0
    packages: int = 0
    ranges: int = 0
    exact_versions: int = 0
    #: Reason → count of ranges and versions the build could not key (bad versions …).
    build_skipped: dict[str, int] = {}
    #: What the ingest read, skipped and noted, per source.
    ingest: IngestStats | None = None
    #: CVE ids rated in the ``cves`` database.
    cves: int = 0
    #: How many advisories have no severity of their own, and how many the CVE ratings fill.
    severity: cve.SeverityStats | None = None


class StoredAdvisory(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """The per-advisory part of a vulnerability record (``array_like``: compact on disk)."""

    # gc=False here and on Hit: both hold only immutable values (strings, enums, dates,
    # gc=False structs) and tuples of them, so they can never be part of a cycle, and a
    # matcher keeps tens of thousands of each in its caches that the cyclic collector would
    # otherwise walk again and again. Tuples, not lists, for the same reason: a tuple of
    # atoms is untracked at its first collection, a list stays tracked for life (a cold
    # 1M-package match spent a tenth of its time in collections walking 280k of them).
    # msgpack encodes both as arrays, so the index format is the same.

    id: str
    source: str
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    summary: str | None = None
    severity: Severity = Severity.UNKNOWN
    severity_source: SeveritySource | None = None
    cvss: tuple[Cvss, ...] = ()
    modified: datetime | None = None
    #: The ids a downstream record was derived from (OSV ``upstream``: Alpine's, Red Hat's
    #: CVEs), looked up with the aliases and related ids for a CVE's rating. Last, with a
    #: default: an index written before it decodes as having none.
    upstream: tuple[str, ...] = ()


class Hit(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A table payload: what it means that a version fell in one of the rows.

    ``recheck`` is set for schemes whose keys are not exact (``versions.authoritative``):
    the rows then only narrow the candidates and ``ranges``/``versions`` are evaluated again
    with the scheme's comparator.
    """

    advisory: str
    fixed: tuple[str, ...] = ()
    status: Status = Status.UNKNOWN
    vendor_status: str | None = None
    severity: Severity | None = None
    recheck: bool = False
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()
    versions: tuple[str, ...] = ()


def advisory_key(source: str, advisory_id: str) -> bytes:
    """The ``advisories`` key of one record: ids repeat across feeds, sources do not."""
    return f"{source}\x00{advisory_id}".encode()


def package_key(ecosystem: str, name: str) -> bytes:
    """The ``packages`` key of one (canonical ecosystem, normalised name)."""
    return f"{ecosystem}\x00{name}".encode()


class _Table:
    """One package's rows while the build collects them."""

    __slots__ = ("exact_keys", "exact_payloads", "payloads", "ranges")

    def __init__(self) -> None:
        self.ranges: list[tuple[intervals.Interval, int]] = []
        # Two columns, not a list of (key, payload) tuples: a full osv.dev export lists
        # millions of versions, and a tuple each was a third of the build's memory.
        self.exact_keys: list[bytes] = []
        self.exact_payloads = array("I")
        self.payloads: list[Hit] = []

    def exact(self) -> list[tuple[bytes, int]]:
        """The exact rows as ``table.build`` takes them (made per table, at write time)."""
        return list(zip(self.exact_keys, self.exact_payloads, strict=True))


def _event_key(
    mod: versions.SchemeModule, family: Ecosystem, kind: EventKind, version: str
) -> bytes | None:
    if kind is EventKind.INTRODUCED and version == "0":
        # OSV's "before any version": not semver's 0.0.0, which sorts above Go's
        # 0.0.0-<date>-<hash> pseudo-versions that vulndb ranges end at.
        return intervals.MIN_KEY
    if kind is EventKind.LIMIT and "*" in version:
        return None  # OSV: a limit containing "*" is infinity
    return mod.key(normalize_version(family, version))


def _compile_affected(
    advisory: str, aff: Affected, tab: _Table, skipped: Counter[str], keys: dict[bytes, bytes]
) -> None:
    # ``keys`` interns version keys over the whole build: osv.dev lists a package's versions
    # in every advisory of it, so most keys repeat, and one bytes object each is enough.
    mod = versions.module(aff.scheme)
    exact_keys: list[bytes] = []
    range_rows: list[intervals.Interval] = []
    raw_ranges: list[tuple[tuple[str, str], ...]] = []
    for rng in aff.ranges:
        try:
            keyed = [
                (_EVENT[e.kind], _event_key(mod, aff.family, e.kind, e.version)) for e in rng.events
            ]
        except InvalidVersion:
            # The whole range goes: half a range would invert its meaning. The readers
            # (OSV, secdb, Wolfi) refuse such ranges first and name each one in the ingest
            # stats; this count only catches advisories that did not come through them.
            skipped[f"invalid {aff.scheme.value} version in range"] += 1
            continue
        keyed = [(kind, k if k is None else keys.setdefault(k, k)) for kind, k in keyed]
        if not any(k is intervals.EventKind.INTRODUCED for k, _ in keyed):
            skipped["range without introduced event"] += 1
            continue
        raw_ranges.append(tuple((e.kind.value, e.version) for e in rng.events))
        if mod.AUTHORITATIVE:
            range_rows += intervals.compile_range(keyed)
        else:
            # Inexact keys: one coarse row over all the range's event keys, re-checked later.
            bounds = [k for _, k in keyed if k is not None]
            open_ended = not any(
                k in (intervals.EventKind.FIXED, intervals.EventKind.LAST_AFFECTED)
                for k, _ in keyed
            )
            hi = None if open_ended else intervals.successor(max(bounds))
            range_rows.append((min(bounds), hi))
    good_versions = []
    for v in aff.versions:
        try:
            key = mod.key(normalize_version(aff.family, v))
            exact_keys.append(keys.setdefault(key, key))
        except InvalidVersion:
            skipped[f"invalid {aff.scheme.value} version in versions list"] += 1
        else:
            good_versions.append(v)
    if not range_rows and not exact_keys:
        return
    hit = Hit(
        advisory=advisory,
        fixed=tuple(aff.fixed_versions()),
        status=aff.status,
        vendor_status=aff.vendor_status,
        severity=aff.severity,
        recheck=not mod.AUTHORITATIVE,
        ranges=tuple(raw_ranges) if not mod.AUTHORITATIVE else (),
        versions=tuple(good_versions) if not mod.AUTHORITATIVE else (),
    )
    idx = len(tab.payloads)
    tab.payloads.append(hit)
    tab.ranges += [(row, idx) for row in range_rows]
    tab.exact_keys += exact_keys
    tab.exact_payloads.extend([idx] * len(exact_keys))


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".build-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another build of {path} is running") from None
        yield
    finally:
        os.close(fd)


def build(
    path: str | os.PathLike[str],
    advisories: Iterable[Advisory],
    ingest: IngestStats | None = None,
    cves: cve.CveSeverities | None = None,
) -> IndexMeta:
    """Build the index at ``path`` from ``advisories`` and swap it into place atomically.

    ``ingest`` is the statistics object of the load that yields ``advisories`` (complete
    once they are consumed); it is recorded in the meta so that ``db info`` shows what was
    read and what was left out, and why. ``cves`` is the same load's CVE ratings (complete
    once ``advisories`` are), stored beside them. Raises ``BuildLocked`` if another build
    of ``path`` is running, ``AdvisoryIndexError`` if the index cannot be written (a path
    that cannot be created, a full disk); the index that was there then stays.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(path):
            # Holding the lock, no other build of ``path`` runs: any temporary file beside
            # it is a killed build's (up to the index's size, left forever otherwise).
            for stale in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
                stale.unlink(missing_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            try:
                table = cve.CveSeverities() if cves is None else cves
                meta = _write(tmp, advisories, ingest, table)
                os.replace(tmp, path)
            finally:
                for leftover in (tmp, tmp.with_name(tmp.name + "-lock")):
                    leftover.unlink(missing_ok=True)
    except (OSError, lmdb.Error) as err:
        # lmdb reports a full disk as its own error (``mdb_txn_commit: …``), not OSError.
        raise AdvisoryIndexError(f"cannot build the index {path}: {err}") from None
    return meta


def merge_duplicates(a: StoredAdvisory, b: StoredAdvisory) -> StoredAdvisory:
    """One record from two with the same ``(source, id)``.

    Ids, CVSS vectors and related ids are the union (first seen first); the summary and
    severity are those of the more recently modified copy (the later one on a tie), as a
    feed's newer word on a vulnerability replaces its older one.
    """
    newer, older = (a, b) if _when(a) > _when(b) else (b, a)

    def union(x: tuple[Any, ...], y: tuple[Any, ...]) -> tuple[Any, ...]:
        return x + tuple(v for v in y if v not in x)

    return msgspec.structs.replace(
        newer,
        aliases=union(newer.aliases, older.aliases),
        related=union(newer.related, older.related),
        upstream=union(newer.upstream, older.upstream),
        cvss=union(newer.cvss, older.cvss),
        summary=newer.summary or older.summary,
        severity=newer.severity if newer.severity is not Severity.UNKNOWN else older.severity,
        severity_source=(
            newer.severity_source if newer.severity is not Severity.UNKNOWN
            else older.severity_source
        ),
    )  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _when(adv: StoredAdvisory) -> datetime:
    # Comparable whatever the feed wrote: no timestamp is oldest, a naive one is UTC.
    t = adv.modified or _EPOCH
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _write(
    tmp: Path, advisories: Iterable[Advisory], ingest: IngestStats | None, cves: cve.CveSeverities
) -> IndexMeta:
    skipped: Counter[str] = Counter()
    tables: dict[bytes, _Table] = defaultdict(_Table)
    # Lists, not sets (a set is 216 bytes even with one member, and most aliases name one
    # advisory); repeats are dropped when written.
    aliases: dict[bytes, list[bytes]] = defaultdict(list)
    keys: dict[bytes, bytes] = {}
    n_advisories = 0
    enc = msgspec.msgpack.Encoder()
    # Owner only, like the state store: nobody else needs to read or swap a user's index.
    env = lmdb.open(
        str(tmp), subdir=False, map_size=MAP_SIZE, max_dbs=_MAX_DBS, sync=False, mode=0o600
    )
    try:
        adv_db = env.open_db(b"advisories")
        with env.begin(write=True, db=adv_db) as txn:
            for adv in advisories:
                akey = advisory_key(adv.source, adv.id)
                akey_str = akey.decode()
                n_advisories += 1
                stored = StoredAdvisory(
                    id=adv.id,
                    source=adv.source,
                    aliases=tuple(adv.aliases),
                    related=tuple(adv.related),
                    summary=adv.summary,
                    severity=adv.severity,
                    severity_source=adv.severity_source,
                    cvss=tuple(adv.cvss),
                    modified=adv.modified,
                    upstream=tuple(adv.upstream),
                )
                if not txn.put(akey, enc.encode(stored), overwrite=False):
                    # The same (source, id) twice: Docker's DHI feed repeats a CVE once per
                    # component. Every copy's affected rows are kept below; the record
                    # itself becomes one, merged.
                    n_advisories -= 1
                    old = msgspec.msgpack.decode(txn.get(akey, b""), type=StoredAdvisory)
                    txn.put(akey, enc.encode(merge_duplicates(old, stored)))
                for alias in (adv.id, *adv.aliases):
                    aliases[alias.encode()].append(akey)
                for aff in adv.affected:
                    if aff.status is Status.NOT_AFFECTED:
                        continue
                    pkey = package_key(aff.ecosystem, aff.package)
                    if len(pkey) > _MAX_KEY:
                        skipped["package key longer than 511 bytes"] += 1
                        continue
                    _compile_affected(akey_str, aff, tables[pkey], skipped, keys)
        n_ranges = n_exact = 0
        pkg_db = env.open_db(b"packages")
        with env.begin(write=True, db=pkg_db) as txn:
            for pkey in sorted(tables):
                tab = tables[pkey]
                n_ranges += len(tab.ranges)
                n_exact += len(tab.exact_keys)
                txn.put(pkey, table.build(tab.ranges, tab.exact(), tab.payloads))
        alias_db = env.open_db(b"aliases")
        with env.begin(write=True, db=alias_db) as txn:
            for name in sorted(aliases):
                if len(name) <= _MAX_KEY:
                    txn.put(name, enc.encode(sorted(set(aliases[name]))))
        severity = _write_cves(env, adv_db, cves, enc)
        meta = IndexMeta(
            built_at=datetime.now(UTC).replace(microsecond=0),
            advisories=n_advisories,
            packages=len(tables),
            ranges=n_ranges,
            exact_versions=n_exact,
            build_skipped=dict(skipped),
            ingest=ingest,
            cves=len(cves),
            severity=severity,
        )
        with env.begin(write=True, db=env.open_db(b"meta")) as txn:
            txn.put(b"meta", enc.encode(meta))
        env.sync(True)
    finally:
        env.close()
    return meta


def _write_cves(
    env: Any, adv_db: Any, cves: cve.CveSeverities, enc: msgspec.msgpack.Encoder
) -> cve.SeverityStats:
    # The CVE ratings, then what they leave unrated: every stored advisory (merged
    # duplicates once) read back, as the matcher will see it.
    with env.begin(write=True, db=env.open_db(b"cves")) as txn:
        for cve_id, rating in cves.items():
            key = cve_id.encode()
            if len(key) <= _MAX_KEY:
                txn.put(key, enc.encode(rating))
    stats = cve.SeverityStats(
        cve_records=dict(sorted(cves.records.items())),
        rejected=cves.rejected,
        cve_ratings=cves.by_rater(),
    )
    still: Counter[str] = Counter()
    dec = msgspec.msgpack.Decoder(StoredAdvisory)
    with env.begin(db=adv_db) as txn:
        for _, raw in txn.cursor():
            adv = dec.decode(raw)
            if adv.severity is not Severity.UNKNOWN:
                continue
            stats.unrated += 1
            ids = cve.cve_ids((adv.id,), adv.aliases, adv.upstream, adv.related)
            if any(i in cves for i in ids):
                stats.rated_by_cve += 1
            else:
                still[adv.source] += 1
    stats.still_unrated = sum(still.values())
    stats.still_unrated_by_source = dict(sorted(still.items()))
    return stats


class AdvisoryIndex:
    """A read-only view of a built index.

    Holds one LMDB environment; every lookup runs in a short read transaction (a long-lived
    one would pin old pages). Not for use across ``fork``: open it in the child instead.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise IndexMissing(f"no advisory index at {self.path} (build one: regsweep db build)")
        unusable = f"advisory index {self.path} is unusable"
        rebuild = "rebuild it with regsweep db build (or regsweep db update)"
        try:
            # Before LMDB maps it: a page past the end of a truncated file is a SIGBUS.
            lmdbfile.check(self.path)
        except lmdbfile.LmdbFileError as err:
            raise IndexDamaged(f"{unusable}: {err}; {rebuild}") from None
        except OSError as err:
            raise AdvisoryIndexError(f"cannot read advisory index {self.path}: {err}") from err
        try:
            self._env = lmdb.open(
                str(self.path), subdir=False, readonly=True, lock=False, max_dbs=_MAX_DBS
            )
        except lmdbfile.DAMAGE as err:
            raise IndexDamaged(f"{unusable}: {err}; {rebuild}") from err
        except lmdb.Error as err:
            raise AdvisoryIndexError(f"cannot open advisory index {self.path}: {err}") from err
        self._meta_db = self._env.open_db(b"meta", create=False)
        self._adv_db = self._env.open_db(b"advisories", create=False)
        self._alias_db = self._env.open_db(b"aliases", create=False)
        self._pkg_db = self._env.open_db(b"packages", create=False)
        self._cve_db = self._open_cves()
        self._cve_dec = msgspec.msgpack.Decoder(cve.CveRating)
        self._adv_dec = msgspec.msgpack.Decoder(StoredAdvisory)
        self._hits_dec = msgspec.msgpack.Decoder(tuple[Hit, ...])
        self.meta = self._read_meta()

    def _open_cves(self) -> Any:
        # An index built before CVE ratings were stored has no such database: no ratings.
        try:
            return self._env.open_db(b"cves", create=False)
        except lmdb.NotFoundError:
            return None

    def cve_ratings(self, cve_ids: Iterable[str]) -> dict[str, cve.CveRating]:
        """The ratings the index holds for ``cve_ids`` (those it has), in one transaction."""
        out: dict[str, cve.CveRating] = {}
        if self._cve_db is None:
            return out
        with self._env.begin(db=self._cve_db) as txn:
            for cve_id in cve_ids:
                raw = txn.get(cve_id.encode())
                if raw is not None:
                    out[cve_id] = self._cve_dec.decode(raw)
        return out

    def _read_meta(self) -> IndexMeta:
        with self._env.begin(db=self._meta_db) as txn:
            raw = txn.get(b"meta")
        if raw is None:
            raise AdvisoryIndexError(f"{self.path} has no meta record: not a regsweep index")
        meta = msgspec.msgpack.decode(raw, type=IndexMeta)
        if meta.schema_version != SCHEMA_VERSION:
            raise AdvisoryIndexError(
                f"{self.path} is index schema v{meta.schema_version}; this regsweep reads "
                f"v{SCHEMA_VERSION}: rebuild it with regsweep db build"
            )
        return meta

    def close(self) -> None:
        """Release the environment (the file stays)."""
        self._env.close()

    def __enter__(self) -> AdvisoryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """The interval tables of the given package keys that exist, in one transaction."""
        out = {}
        with self._env.begin(db=self._pkg_db) as txn:
            for k in keys:
                raw = txn.get(k)
                if raw is not None:
                    out[k] = raw
        return out

    def hits(self, raw_table: bytes) -> tuple[Hit, ...]:
        """Decode a table's payload rows."""
        return self._hits_dec.decode(table.payload_bytes(raw_table))

    def advisory(self, key: str) -> StoredAdvisory:
        """The stored advisory of a ``Hit.advisory`` key."""
        return self.advisories([key])[key]

    def advisories(self, keys: Iterable[str]) -> dict[str, StoredAdvisory]:
        """The stored advisories of several ``Hit.advisory`` keys, in one transaction."""
        out = {}
        with self._env.begin(db=self._adv_db) as txn:
            for key in keys:
                raw = txn.get(key.encode())
                if raw is None:
                    raise AdvisoryIndexError(f"index has a hit for {key!r} but no such advisory")
                out[key] = self._adv_dec.decode(raw)
        return out

    def lookup_alias(self, alias: str) -> list[StoredAdvisory]:
        """Every advisory whose id or alias is ``alias`` (e.g. a CVE id)."""
        with self._env.begin(db=self._alias_db) as txn:
            raw = txn.get(alias.encode())
        keys: list[bytes] = msgspec.msgpack.decode(raw) if raw else []
        return [self.advisory(k.decode()) for k in keys]

    def has_advisory(self, advisory_id: str) -> bool:
        """Whether the index holds an advisory with this id (from any source), not only as
        another advisory's alias: one read of ``aliases``, which lists every advisory under
        its own id too, as ``source NUL id`` keys."""
        with self._env.begin(db=self._alias_db) as txn:
            raw = txn.get(advisory_id.encode())
        if not raw:
            return False
        suffix = b"\x00" + advisory_id.encode()
        keys: list[bytes] = msgspec.msgpack.decode(raw)
        return any(k.endswith(suffix) for k in keys)

    def package_tables(self, batch: int = 1024) -> Iterator[tuple[str, str, bytes]]:
        """Every ``(ecosystem, name, interval table)`` the index holds, in key order.

        Read ``batch`` tables per read transaction: a caller may take its time over each
        table, and one transaction held across the whole walk would pin its pages.
        """
        start = b""
        while True:
            with self._env.begin(db=self._pkg_db) as txn:
                cursor = txn.cursor()
                rows: list[tuple[bytes, bytes]] = []
                if cursor.set_range(start):
                    for k, v in cursor:
                        rows.append((bytes(k), bytes(v)))
                        if len(rows) >= batch:
                            break
            for k, v in rows:
                ecosystem, _, name = k.decode().partition("\x00")
                yield ecosystem, name, v
            if len(rows) < batch:
                return
            # The smallest key after the last one read: keys are compared as bytes.
            start = rows[-1][0] + b"\x00"

    def package_count(self) -> int:
        """How many (ecosystem, package) tables the index holds."""
        with self._env.begin(db=self._pkg_db) as txn:
            n: int = txn.stat(self._pkg_db)["entries"]
        return n


def default_path() -> Path:
    """``$REGSWEEP_DB``, else ``$XDG_CACHE_HOME/regsweep/advisories.lmdb`` (``~/.cache``)."""
    env = os.environ.get("REGSWEEP_DB")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "regsweep" / "advisories.lmdb"
