"""Match installed packages against the advisory index, in batches.

The rules that decide accuracy live here:

* distro packages (deb, apk, rpm) are looked up by **source** package and source version,
  in their release's ecosystem only (``Debian:11`` advisories never reach a Debian 12
  package); a Debian binNMU (``+bN``) is the source version without the suffix;
* a language package owned by the OS package manager (``owner`` set: a python module that
  dpkg installed) is not matched against upstream language advisories — the distro's
  backport is what counts, and the distro advisory matches its source package instead;
* names are normalised exactly as the index normalised them (PEP 503 for PyPI …).

A batch is deduplicated to unique ``(ecosystem, name, version)`` before any lookup, every
package table is read once per batch, versions are keyed once, and the compiled table query
answers all versions of one package in one call; results fan back out to the packages.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import msgspec

from regsweep.matcher import reference, versions
from regsweep.matcher.advisories.ecosystems import (
    normalize_name,
    normalize_version,
    parse_ecosystem,
)
from regsweep.matcher.index import table
from regsweep.matcher.index.store import AdvisoryIndex, Hit, StoredAdvisory, package_key
from regsweep.matcher.records import Advisory, Cvss, Package, Severity, Status
from regsweep.matcher.versions import InvalidVersion

#: Package types whose advisories are keyed by source package and release.
DISTRO_TYPES = frozenset({"deb", "apk", "rpm"})
_BINNMU = re.compile(r"\+b\d+$")


class MatchError(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A package that could not be matched, and why (becomes an ``error`` record)."""

    package: int
    error: str
    message: str


class Target(msgspec.Struct, frozen=True, gc=False):
    """What one package is looked up as: canonical ecosystem, name, version, scheme."""

    ecosystem: str
    name: str
    version: str
    scheme: versions.Scheme


def target(pkg: Package) -> Target | None:
    """The lookup for ``pkg``, or None when the rules say it is not matched at all.

    Raises ``ValueError`` for a package whose ecosystem regsweep does not know.
    """
    if pkg.ecosystem is None:
        return None
    info = parse_ecosystem(pkg.ecosystem)
    if info is None:
        raise ValueError(f"unknown ecosystem {pkg.ecosystem!r}")
    if pkg.type in DISTRO_TYPES:
        name = pkg.source_name or pkg.name
        version = pkg.source_version or pkg.version
        if pkg.type == "deb":
            # A binNMU rebuilds the same source: its advisories are the source version's.
            version = _BINNMU.sub("", version)
    else:
        if pkg.owner is not None:
            return None
        name, version = pkg.name, pkg.version
    return Target(
        info.ecosystem,
        normalize_name(info.family, name),
        normalize_version(info.family, version),
        info.scheme,
    )


#: A package's identity for matching: the fields ``target`` reads.
_Identity = tuple[str, str | None, str, str | None, str | None, str, str | None]
#: Cache bounds: a long crawl sees millions of packages but far fewer distinct ones.
_CACHE_MAX = 1 << 20
_NONE: tuple[Advisory, ...] = ()


class Matcher:
    """Matches batches of packages against one ``AdvisoryIndex``.

    Keeps small caches across batches (lookups per package identity, package tables, and
    the output ``Advisory`` per table row), so a crawl that meets the same base layers in
    thousands of images pays for each distinct package once.
    """

    def __init__(self, index: AdvisoryIndex) -> None:
        self.index = index
        self._stored: dict[str, StoredAdvisory] = {}
        self._targets: dict[_Identity, Target | str | None] = {}
        self._tables: dict[bytes, tuple[bytes, list[Hit] | None] | None] = {}
        self._rows: dict[tuple[bytes, int], Advisory] = {}
        self._results: dict[_Identity, tuple[Advisory, ...]] = {}

    def match(
        self, packages: Sequence[Package]
    ) -> tuple[list[tuple[Advisory, ...]], list[MatchError]]:
        """Return, per package, the advisories that affect it; plus what could not be matched.

        Equal packages share one result tuple (immutable, so sharing is safe).
        """
        # 1. Distinct identities: a fleet repeats the same packages over and over. Equal
        # Package Structs are found by their C-level hash first (no attribute reads per
        # package); only distinct ones are reduced to the fields matching reads.
        same: dict[Package, list[int]] = {}
        for i, p in enumerate(packages):
            lst = same.get(p)
            if lst is None:
                same[p] = [i]
            else:
                lst.append(i)
        slots: dict[_Identity, list[int]] = {}
        for p, idxs in same.items():
            ident = (
                p.type,
                p.ecosystem,
                p.name,
                p.source_name,
                p.source_version,
                p.version,
                p.owner,
            )
            lst = slots.get(ident)
            if lst is None:
                slots[ident] = idxs
            else:
                lst.extend(idxs)

        # 2. Lookups, grouped by package table: (ecosystem, name) -> version -> identities.
        # An identity matched in an earlier batch is answered from the result cache: the
        # index is immutable, so its answer cannot change.
        errors: list[MatchError] = []
        results: dict[_Identity, tuple[Advisory, ...]] = {}
        wanted: dict[Target, list[_Identity]] = defaultdict(list)
        done = self._results
        for ident in slots:
            prev = done.get(ident)
            if prev is not None:
                results[ident] = prev
                continue
            t = self._target(ident)
            if isinstance(t, str):
                errors += [
                    MatchError(package=i, error="unknown_ecosystem", message=t)
                    for i in slots[ident]
                ]
            elif t is None:
                results[ident] = _NONE  # not matched, by rule (an OS-owned module …)
            else:
                wanted[t].append(ident)
        by_table: dict[bytes, list[Target]] = defaultdict(list)
        for t in wanted:
            by_table[package_key(t.ecosystem, t.name)].append(t)

        # 3. One table read per package, one key per version, one compiled query per table.
        self._load_tables([k for k in by_table if k not in self._tables])
        for pkey, targets in by_table.items():
            cached = self._tables[pkey]
            if cached is None:  # no advisory names this package
                for t in targets:
                    results.update(dict.fromkeys(wanted[t], _NONE))
                continue
            raw = cached[0]
            mod = versions.module(targets[0].scheme)
            good: list[Target] = []
            keys: list[bytes] = []
            for t in targets:
                try:
                    keys.append(mod.key(t.version))
                except InvalidVersion as err:
                    errors += [
                        MatchError(package=i, error="invalid_version", message=str(err))
                        for ident in wanted[t]
                        for i in slots[ident]
                    ]
                else:
                    good.append(t)
            for t, rows in zip(good, table.query_many(raw, keys), strict=True):
                found = self._advisories_for(pkey, mod, t.version, rows) if rows else _NONE
                for ident in wanted[t]:
                    results[ident] = found
        # Only clean answers are remembered; errors are reported again when met again.
        if len(done) + len(results) >= _CACHE_MAX:
            done.clear()
        done.update(results)

        # 4. Fan out to the packages.
        out: list[tuple[Advisory, ...]] = [_NONE] * len(packages)
        for ident, found in results.items():
            if found:
                for i in slots[ident]:
                    out[i] = found
        return out, errors

    def _target(self, ident: _Identity) -> Target | str | None:
        # Target, None (not matched by rule), or the message of an unknown ecosystem.
        try:
            return self._targets[ident]
        except KeyError:
            pass
        typ, eco, name, src, src_ver, ver, owner = ident
        pkg = Package(
            type=typ, ecosystem=eco, name=name, source_name=src, source_version=src_ver,
            version=ver, owner=owner,
        )  # fmt: skip
        result: Target | str | None
        try:
            result = target(pkg)
        except ValueError as err:
            result = str(err)
        if len(self._targets) >= _CACHE_MAX:
            self._targets.clear()
        self._targets[ident] = result
        return result

    def _load_tables(self, pkeys: list[bytes]) -> None:
        if len(self._tables) + len(pkeys) >= _CACHE_MAX:
            self._tables.clear()
            self._rows.clear()
        found = self.index.tables(pkeys)
        for k in pkeys:
            raw = found.get(k)
            self._tables[k] = None if raw is None else (raw, None)

    def _hits(self, pkey: bytes) -> list[Hit]:
        cached = self._tables[pkey]
        assert cached is not None
        raw, hits = cached
        if hits is None:
            hits = self.index.hits(raw)
            self._tables[pkey] = (raw, hits)
        return hits

    def _advisories_for(
        self, pkey: bytes, mod: versions.SchemeModule, version: str, rows: list[int]
    ) -> tuple[Advisory, ...]:
        hits = self._hits(pkey)
        # Several affected entries of one advisory can cover the same version (two ranges
        # for one package): the package gets one record per advisory, their fixes merged.
        chosen: dict[str, list[int]] = {}
        for r in rows:
            hit = hits[r]
            if hit.recheck and not reference.is_affected(mod, version, hit.ranges, hit.versions):
                continue
            chosen.setdefault(hit.advisory, []).append(r)
        out = []
        for same in chosen.values():
            if len(same) == 1:
                key = (pkey, same[0])
                adv = self._rows.get(key)
                if adv is None:
                    adv = self._rows[key] = self._advisory(hits[same[0]])
            else:
                fixed: list[str] = []
                for r in same:
                    fixed += [f for f in hits[r].fixed if f not in fixed]
                adv = self._advisory(msgspec.structs.replace(hits[same[0]], fixed=fixed))
            out.append(adv)
        return tuple(out)

    def _advisory(self, hit: Hit) -> Advisory:
        stored = self._stored.get(hit.advisory)
        if stored is None:
            stored = self._stored[hit.advisory] = self.index.advisory(hit.advisory)
        severity = stored.severity
        source = None if stored.severity_source is None else stored.severity_source.value
        if hit.severity is not None:
            # The feed rated this package itself (Debian urgency, affected[].severity).
            severity, source = hit.severity, "affected"
        return Advisory(
            id=stored.id,
            aliases=stored.aliases,
            related=stored.related,
            summary=stored.summary,
            severity=Severity(severity.value),
            severity_source=source,
            cvss=[Cvss(type=c.type.value, vector=c.vector, score=c.score) for c in stored.cvss],
            fixed=hit.fixed,
            status=Status(hit.status.value),
            vendor_status=hit.vendor_status,
            source=stored.source,
            modified=stored.modified,
        )
