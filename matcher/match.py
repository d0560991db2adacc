"""Match installed packages against the advisory index, in batches.

The rules that decide accuracy live here:

* distro packages (deb, apk, rpm) are looked up by **source** package and source version,
  in their release's ecosystem only (``Debian:11`` advisories never reach a Debian 12
  package); a Debian binNMU (``+bN``) is the source version without the suffix;
* a language package owned by the OS package manager (``owner`` set: a python module that
  dpkg installed) is not matched against upstream language advisories — the distro's
  backport is what counts, and the distro advisory matches its source package instead;
* names are normalised exactly as the index normalised them (PEP 503 for PyPI …);
* a finding's severity is the vendor's rating of the package or the advisory (Debian
  urgency, Ubuntu priority, Red Hat impact, GHSA severity), else the advisory's own CVSS,
  else the rating the CVE records give the CVEs it names (its id, aliases, upstream and
  related ids: ``advisories.cve``; the worst of them for a DSA that fixes several), with
  ``severity_source`` saying which. The CVE ratings are read from the index here, at match
  time, so the same stored advisory takes whatever CVE data the index was built with.

A batch is deduplicated to unique ``(ecosystem, name, version)`` before any lookup, every
package table is read once per batch, versions are keyed once, and the compiled table query
answers all versions of one package in one call; results fan back out to the packages.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import msgspec

from regsweep.matcher import reference, versions
from regsweep.matcher.advisories import cve
from regsweep.matcher.advisories.ecosystems import (
    name_normalizer,
    normalize_version,
    parse_ecosystem,
)
from regsweep.matcher.identity import Fold, IdentityTable, LineScanner
from regsweep.matcher.index import table
from regsweep.matcher.index.store import AdvisoryIndex, Hit, StoredAdvisory, package_key
from regsweep.matcher.records import Advisory, Cvss, ErrorRecord, ImageRef, Package, Severity
from regsweep.matcher.versions import InvalidVersion

#: Package types whose advisories are keyed by source package and release.
DISTRO_TYPES = frozenset({"deb", "apk", "rpm"})
_BINNMU = re.compile(r"\+b\d+$")


class MatchError(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A package that could not be matched, and why (becomes an ``error`` record)."""

    package: int
    error: str
    message: str

    def record(self, image: ImageRef | None, package: Package) -> ErrorRecord:
        """The ``error`` record (stage ``match``) about ``package`` in ``image``, worded
        alike wherever packages are matched (an image's judgement, ``regsweep match``)."""
        return ErrorRecord(
            image=image,
            ref=image.ref if image else None,
            stage="match",
            error=self.error,
            message=f"{package.name} {package.version}: {self.message}",
        )


class Target(msgspec.Struct, frozen=True, gc=False):
    """What one package is looked up as: canonical ecosystem, name, version, scheme."""

    ecosystem: str
    name: str
    version: str
    scheme: versions.Scheme


class _Rule(NamedTuple):
    # How packages of one (type, ecosystem) are looked up: everything ``target`` derives
    # from those two fields, worked out once.
    ecosystem: str
    key_prefix: bytes
    scheme: versions.Scheme
    mod: versions.SchemeModule
    distro: bool
    deb: bool
    name: Callable[[str], str]
    lower_version: bool


@functools.lru_cache(maxsize=4096)
def _rule(typ: str, ecosystem: str) -> _Rule:
    info = parse_ecosystem(ecosystem)
    if info is None:
        raise ValueError(f"unknown ecosystem {ecosystem!r}")
    return _Rule(
        ecosystem=info.ecosystem,
        key_prefix=package_key(info.ecosystem, ""),
        scheme=info.scheme,
        mod=versions.module(info.scheme),
        distro=typ in DISTRO_TYPES,
        deb=typ == "deb",
        name=name_normalizer(info.family),
        lower_version=normalize_version(info.family, "A") == "a",
    )


def _name_version(rule: _Rule, pkg: Package) -> tuple[str, str] | None:
    # The normalised (name, version) ``pkg`` is looked up as, or None when not matched.
    if rule.distro:
        name = pkg.source_name or pkg.name
        version = pkg.source_version or pkg.version
        if rule.deb and "+b" in version:
            # A binNMU rebuilds the same source: its advisories are the source version's.
            version = _BINNMU.sub("", version)
    elif pkg.owner is not None:
        return None
    else:
        name, version = pkg.name, pkg.version
    return rule.name(name), version.lower() if rule.lower_version else version


def target(pkg: Package) -> Target | None:
    """The lookup for ``pkg``, or None when the rules say it is not matched at all.

    Raises ``ValueError`` for a package whose ecosystem regsweep does not know.
    """
    if pkg.ecosystem is None:
        return None
    rule = _rule(pkg.type, pkg.ecosystem)
    found = _name_version(rule, pkg)
    if found is None:
        return None
    return Target(rule.ecosystem, found[0], found[1], rule.scheme)


#: The fields ``target`` reads: two packages equal in these are matched once.
IDENTITY_FIELDS = ("type", "ecosystem", "name", "source_name", "source_version", "version", "owner")
#: Of those, the ones ``target`` ignores: a distro package with a source name (version) is
#: looked up by it, whatever its binary name (version). The binaries of one source build
#: share one identity, and their names are never read.
IDENTITY_FOLD: Fold = (
    "type",
    tuple(sorted(DISTRO_TYPES)),
    (("name", "source_name"), ("version", "source_version")),
)
#: Cache bounds: a long crawl sees millions of packages but far fewer distinct ones; past
#: this many distinct identities the caches start over (each costs ~0.3 kB with its strings).
_CACHE_MAX = 1 << 18
_NONE: tuple[Advisory, ...] = ()
_UNKNOWN = object()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Resolving new packages creates tens of thousands of small objects (hits, advisories,
    # the tuples holding them) that all live on in the caches and form no cycles; the
    # cyclic collector, left on, would run many times over them in the middle of a resolve.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _line_scanner(table: object) -> Any:
    # The compiled table's NDJSON fast path, configured from the record contract.
    if LineScanner is None:
        return None
    return LineScanner(
        table,
        Package.__struct_fields__,
        tuple(f.name for f in msgspec.structs.fields(Package) if f.required),
        ImageRef.__struct_fields__,
        tuple(f.name for f in msgspec.structs.fields(ImageRef) if f.required),
        tuple(f.name for f in msgspec.structs.fields(Package) if f.type is bool),
    )


class _Loaded:
    # One package's interval table, and its rows decoded once a query hits it.
    __slots__ = ("advisories", "hits", "names", "raw", "recheck")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.hits: tuple[Hit, ...] = ()
        self.names: tuple[str, ...] = ()  # the advisory key of each row
        self.recheck = False  # whether any row needs the comparator
        self.advisories: list[Advisory | None] = []  # the output Advisory of each row

    def decode(self, index: AdvisoryIndex) -> None:
        self.hits = index.hits(self.raw)
        self.names = tuple(h.advisory for h in self.hits)
        self.recheck = any(h.recheck for h in self.hits)
        self.advisories = [None] * len(self.hits)


class _Stored(NamedTuple):
    # An advisory's fields as findings show them, converted once per advisory.
    stored: StoredAdvisory
    cvss: tuple[Cvss, ...]
    severity: Severity
    source: str | None


class _Failure(msgspec.Struct, frozen=True, gc=False):
    # Why an identity cannot be matched; every package with it gets a MatchError.
    error: str
    message: str


def _error(index: int, failure: _Failure) -> MatchError:
    return MatchError(package=index, error=failure.error, message=failure.message)


class Matcher:
    """Matches batches of packages against one ``AdvisoryIndex``.

    Keeps caches across batches (the result per package identity, package tables, and the
    output ``Advisory`` per table row), so a crawl that meets the same base layers in
    thousands of images pays for each distinct package once. The per-package work — finding
    a package's identity and handing it its result — is a compiled hash table
    (``identity.IdentityTable``); only identities not seen before reach Python.
    """

    def __init__(self, index: AdvisoryIndex) -> None:
        self.index = index
        self._stored: dict[str, _Stored] = {}
        self._ids = IdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
        #: Per identity slot: its advisories, or why it cannot be matched. The index is
        #: immutable, so an answer never goes stale.
        self._results: list[tuple[Advisory, ...] | _Failure] = []
        self._scanner = _line_scanner(self._ids)
        #: Package key -> its table (None: no advisory names the package).
        self._tables: dict[bytes, _Loaded | None] = {}
        self._row_sets: dict[tuple[bytes | int, ...], tuple[Advisory, ...]] = {}

    def known_clean(self, line: bytes) -> bool:
        """Whether NDJSON ``line`` is a valid ``package`` record of a package matched before
        with no finding: such a line needs no decoding at all. False whenever in doubt
        (and always with the pure-Python identity table)."""
        if self._scanner is None:
            return False
        return bool(self._scanner.clean(line, self._results))

    def match(
        self, packages: Sequence[Package]
    ) -> tuple[list[tuple[Advisory, ...]], list[MatchError]]:
        """Return, per package, the advisories that affect it; plus what could not be matched.

        Equal packages share one result tuple (immutable, so sharing is safe).
        """
        if len(self._results) >= _CACHE_MAX:
            self._ids.clear()
            self._results.clear()
        pkgs = packages if type(packages) is list else list(packages)
        try:
            fresh = self._ids.assign(pkgs)
            if fresh:
                with _gc_paused():
                    self._results += self._resolve([pkgs[i] for i in fresh])
        except BaseException:
            # The table may have slots for new identities and no results for them (``assign``
            # stops at a package it cannot read, after slotting those before it): start over,
            # or every later batch that meets one would fail too.
            self._ids.clear()
            self._results.clear()
            raise
        return self._ids.fan_out(self._results, _Failure, _error)

    def _resolve(self, distinct: list[Package]) -> list[tuple[Advisory, ...] | _Failure]:
        # The answer for each of ``distinct`` (packages of different identities): grouped by
        # package table, one table read per package, the versions keyed in one call and
        # answered by one compiled query per table.
        results: list[tuple[Advisory, ...] | _Failure] = [_NONE] * len(distinct)
        # package key -> (scheme module, version -> the ``distinct`` indices looked up as it)
        wanted: dict[bytes, tuple[versions.SchemeModule, dict[str, list[int]]]] = {}
        tables = self._tables
        # ``target`` inlined: this loop runs for every package seen for the first time.
        for j, p in enumerate(distinct):
            if p.ecosystem is None:
                continue
            try:
                rule = _rule(p.type, p.ecosystem)
            except ValueError as err:
                results[j] = _Failure("unknown_ecosystem", str(err))
                continue
            looked_up = _name_version(rule, p)
            if looked_up is None:  # not matched, by rule (an OS-owned module …)
                continue
            name, version = looked_up
            pkey = rule.key_prefix + name.encode()
            if tables.get(pkey, _UNKNOWN) is None:
                continue  # known to have no advisory: nothing to group
            entry = wanted.get(pkey)
            if entry is None:
                entry = wanted[pkey] = (rule.mod, {})
            same = entry[1].get(version)
            if same is None:
                entry[1][version] = [j]
            else:
                same.append(j)

        self._load_tables(list(wanted))
        answers: list[tuple[bytes, versions.SchemeModule, str, list[int]]] = []
        for pkey, (mod, by_version) in wanted.items():
            loaded = self._tables[pkey]
            if loaded is None:  # no advisory names this package
                continue
            vs = list(by_version)
            try:
                keys = mod.key_many(vs)
            except InvalidVersion:
                # Key them one by one to tell the bad versions from the good.
                good: list[str] = []
                keys = []
                for v in vs:
                    try:
                        keys.append(mod.key(v))
                    except InvalidVersion as err:
                        failure = _Failure("invalid_version", str(err))
                        for j in by_version[v]:
                            results[j] = failure
                    else:
                        good.append(v)
                vs = good
            answers += [
                (pkey, mod, v, rows)
                for v, rows in zip(vs, table.query_many(loaded.raw, keys), strict=True)
                if rows
            ]
        # Every advisory the hits name, read in one transaction, then the answers built.
        need: set[str] = set()
        for pkey, _, _, rows in answers:
            names = self._loaded(pkey).names
            need.update([names[r] for r in rows])
        self._load_advisories(need.difference(self._stored))
        for pkey, mod, v, rows in answers:
            found = self._advisories_for(pkey, mod, v, rows)
            for j in wanted[pkey][1][v]:
                results[j] = found
        return results

    def _load_tables(self, pkeys: list[bytes]) -> None:
        # Makes every table of ``pkeys`` cached; when the cache is full it starts over, and
        # then every table this batch needs is read again, not only the missing ones.
        missing = [k for k in pkeys if k not in self._tables]
        if len(self._tables) + len(missing) >= _CACHE_MAX:
            self._tables.clear()
            self._row_sets.clear()
            missing = pkeys
        found = self.index.tables(missing)
        for k in missing:
            raw = found.get(k)
            self._tables[k] = None if raw is None else _Loaded(raw)

    def _loaded(self, pkey: bytes) -> _Loaded:
        # A table whose rows are decoded (on the first hit: most tables are only queried).
        loaded = self._tables[pkey]
        assert loaded is not None
        if not loaded.hits:
            loaded.decode(self.index)
        return loaded

    def _advisories_for(
        self, pkey: bytes, mod: versions.SchemeModule, version: str, rows: list[int]
    ) -> tuple[Advisory, ...]:
        loaded = self._loaded(pkey)
        if not loaded.recheck:
            # The common case: each row a different advisory, nothing to re-check. Versions
            # between the same two fixes hit the same rows and share their answer.
            key: tuple[bytes | int, ...] = (pkey, *rows)
            known = self._row_sets.get(key)
            if known is not None:
                return known
            names = loaded.names
            if len(rows) == 1 or len({names[r] for r in rows}) == len(rows):
                made, row_advisory = loaded.advisories, self._row_advisory
                answer = tuple(
                    [a if (a := made[r]) is not None else row_advisory(loaded, r) for r in rows]
                )
            else:
                answer = self._build_answer(loaded, mod, version, rows)
            self._row_sets[key] = answer
            return answer
        return self._build_answer(loaded, mod, version, rows)

    def _row_advisory(self, loaded: _Loaded, row: int) -> Advisory:
        adv = loaded.advisories[row]
        if adv is None:
            adv = loaded.advisories[row] = self._advisory(loaded.hits[row])
        return adv

    def _build_answer(
        self, loaded: _Loaded, mod: versions.SchemeModule, version: str, rows: list[int]
    ) -> tuple[Advisory, ...]:
        # Several affected entries of one advisory can cover the same version (two ranges
        # for one package): the package gets one record per advisory, their fixes merged.
        hits = loaded.hits
        chosen: dict[str, list[int]] = {}
        for r in rows:
            hit = hits[r]
            if hit.recheck and not reference.is_affected(mod, version, hit.ranges, hit.versions):
                continue
            chosen.setdefault(hit.advisory, []).append(r)
        out = []
        for same in chosen.values():
            if len(same) == 1:
                adv = self._row_advisory(loaded, same[0])
            else:
                # Order-preserving union in linear time: Go advisories can put a version in
                # hundreds of rows of one advisory, each with its own fixed list.
                fixed = tuple(dict.fromkeys(f for r in same for f in hits[r].fixed))
                adv = self._advisory(msgspec.structs.replace(hits[same[0]], fixed=fixed))
            out.append(adv)
        return tuple(out)

    def _load_advisories(self, keys: set[str]) -> None:
        # The advisory-level fields, converted once per advisory: an advisory names many
        # packages (a DSA, every binary of a source) and each becomes a row.
        if not keys:
            return
        if len(self._stored) + len(keys) >= _CACHE_MAX:
            self._stored.clear()
        loaded = self.index.advisories(sorted(keys))
        # Unrated advisories take their CVEs' ratings: all of them read in one transaction.
        wanted = {
            key: cve.cve_ids((s.id,), s.aliases, s.upstream, s.related)
            for key, s in loaded.items()
            if s.severity is Severity.UNKNOWN
        }
        ratings = (
            self.index.cve_ratings({i for ids in wanted.values() for i in ids}) if wanted else {}
        )
        for key, stored in loaded.items():
            # ``CvssType`` is a StrEnum: a str that encodes as its value, no ``.value`` needed.
            cvss = tuple(Cvss(type=c.type, vector=c.vector, score=c.score) for c in stored.cvss)
            severity = stored.severity
            source = None if stored.severity_source is None else stored.severity_source.value
            rated = cve.best(ratings[i] for i in wanted.get(key, ()) if i in ratings)
            if rated is not None:
                severity, source = rated.severity, rated.source
                if not cvss and rated.cvss is not None:
                    # The score the rating came from, where the advisory had none of its own.
                    c = rated.cvss
                    cvss = (Cvss(type=c.type, vector=c.vector, score=c.score),)
            self._stored[key] = _Stored(stored, cvss, severity, source)

    def _advisory(self, hit: Hit) -> Advisory:
        base = self._stored.get(hit.advisory)
        if base is None:  # a caller that did not load it first (or a cache that started over)
            self._load_advisories({hit.advisory})
            base = self._stored[hit.advisory]
        stored, cvss, severity, source = base
        if hit.severity is not None:
            # The feed rated this package itself (Debian urgency, affected[].severity).
            severity, source = hit.severity, "affected"
        return Advisory(
            id=stored.id,
            aliases=stored.aliases,
            related=stored.related,
            summary=stored.summary,
            severity=severity,  # the index's enums are the contract's (advisories.model)
            severity_source=source,
            cvss=cvss,  # shared by the advisory's rows: Advisory is frozen, nobody mutates it
            fixed=hit.fixed,
            status=hit.status,
            vendor_status=hit.vendor_status,
            source=stored.source,
            modified=stored.modified,
        )
