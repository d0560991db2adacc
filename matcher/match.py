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
from regsweep.matcher.advisories.ecosystems import normalize_name, parse_ecosystem
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
    return Target(info.ecosystem, normalize_name(info.family, name), version, info.scheme)


class Matcher:
    """Matches batches of packages against one ``AdvisoryIndex``."""

    def __init__(self, index: AdvisoryIndex) -> None:
        self.index = index
        self._advisories: dict[str, StoredAdvisory] = {}

    def match(self, packages: Sequence[Package]) -> tuple[list[list[Advisory]], list[MatchError]]:
        """Return, per package, the advisories that affect it; plus what could not be matched."""
        found: list[list[Advisory]] = [[] for _ in packages]
        errors: list[MatchError] = []
        # (ecosystem, name) -> version -> package indices
        wanted: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        schemes: dict[tuple[str, str], versions.Scheme] = {}
        for i, pkg in enumerate(packages):
            try:
                t = target(pkg)
            except ValueError as err:
                errors.append(MatchError(package=i, error="unknown_ecosystem", message=str(err)))
                continue
            if t is None:
                continue
            wanted[(t.ecosystem, t.name)][t.version].append(i)
            schemes[(t.ecosystem, t.name)] = t.scheme

        pkeys = {package_key(eco, name): (eco, name) for eco, name in wanted}
        tables = self.index.tables(pkeys)
        for pkey, raw in tables.items():
            eco_name = pkeys[pkey]
            mod = versions.module(schemes[eco_name])
            by_version = wanted[eco_name]
            good: list[str] = []
            keys: list[bytes] = []
            for v in by_version:
                try:
                    keys.append(mod.key(v))
                except InvalidVersion as err:
                    errors += [
                        MatchError(package=i, error="invalid_version", message=str(err))
                        for i in by_version[v]
                    ]
                else:
                    good.append(v)
            results = table.query_many(raw, keys)
            hits: list[Hit] | None = None
            for v, rows in zip(good, results, strict=True):
                if not rows:
                    continue
                if hits is None:
                    hits = self.index.hits(raw)
                advisories = self._advisories_for(mod, v, [hits[r] for r in rows])
                for i in by_version[v]:
                    found[i].extend(advisories)
        return found, errors

    def _advisories_for(
        self, mod: versions.SchemeModule, version: str, hits: list[Hit]
    ) -> list[Advisory]:
        # Several affected entries of one advisory can cover the same version (two ranges
        # for one package): the package gets one record per advisory, their fixes merged.
        merged: dict[str, Hit] = {}
        for hit in hits:
            if hit.recheck and not reference.is_affected(mod, version, hit.ranges, hit.versions):
                continue
            prev = merged.get(hit.advisory)
            if prev is None:
                merged[hit.advisory] = hit
            else:
                fixed = prev.fixed + [f for f in hit.fixed if f not in prev.fixed]
                merged[hit.advisory] = msgspec.structs.replace(prev, fixed=fixed)
        return [self._advisory(hit) for hit in merged.values()]

    def _advisory(self, hit: Hit) -> Advisory:
        stored = self._advisories.get(hit.advisory)
        if stored is None:
            stored = self._advisories[hit.advisory] = self.index.advisory(hit.advisory)
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
