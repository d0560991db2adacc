"""The npm analyzer: installed Node packages from ``node_modules/<name>/package.json``.

A package is a ``package.json`` directly inside a ``node_modules`` directory
(``node_modules/left-pad/package.json``) or inside a scope in one
(``node_modules/@babel/core/package.json``), at any depth, nested ``node_modules`` included.
Other ``package.json`` files are not installed packages and are never asked for: a project's
own root manifest, or the ``{"type": "module"}`` stubs packages keep in subdirectories
(``node_modules/x/esm/package.json``). A manifest without a string ``name`` and ``version``
is skipped silently (some packages ship placeholder directories); one that is not JSON is
noted.

A project's ``package-lock.json`` names the project itself (``packages[""]``, or v1's top
level): it is a package with ``root`` set, a component of the image but not a dependency,
never matched (no ecosystem: an app's own name may be a public package's). The lockfile
(versions 1, 2 and 3) also adds the packages it pins
that are *not* installed in the image — a lock shipped without its ``node_modules``, or
entries whose directory is missing — so an image that installs at start-up is still seen.
An entry whose ``node_modules`` manifest is in the image is left to that manifest (the file on
disk wins over the lock); ``link`` entries (workspaces) and non-registry versions (``file:``,
git URLs, tarball paths) are skipped. npm's hidden ``node_modules/.package-lock.json`` is not
read: it only mirrors what the manifests already say.

``name`` is the manifest's, not the directory's: an aliased install
(``npm i foo@npm:bar``) lives in ``node_modules/foo`` but *is* ``bar``. ``owner`` is set as
for Python when an OS package manager lists the manifest or its directory (Alpine's ``npm``
package ships its own dependencies under ``usr/lib/node_modules/npm/node_modules``).
"""

from __future__ import annotations

import re
from typing import ClassVar

import msgspec

from regsweep.crawler.analyzers._pkgutil import Notes, package_url
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    Found,
    placed_files,
)
from regsweep.matcher.advisories.ecosystems import Ecosystem
from regsweep.matcher.records import Package

__all__ = ["NpmAnalyzer"]

#: package.json files are a few KB; 1 MiB is generous.
SIZE_CAP = 1024 * 1024
#: Lockfiles of large monorepos reach tens of MB.
LOCK_CAP = 64 * 1024 * 1024

# npm's validate-npm-package-name, loosened for legacy names (upper case was allowed).
_NAME = re.compile(r"(?:@[A-Za-z0-9~][A-Za-z0-9._~-]*/)?[A-Za-z0-9~_.-][A-Za-z0-9._~-]*")
_VERSION = re.compile(r"[\x21-\x7e]+")
# A registry version in a lockfile: semver, never a URL or path.
_SEMVERISH = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?")


class _Manifest(msgspec.Struct, kw_only=True):
    # ``object``: a wrong type is a skipped package, not a decode error for the file.
    name: object = None
    version: object = None


_DECODER = msgspec.json.Decoder(_Manifest)


class _LockEntry(msgspec.Struct, kw_only=True):
    name: object = None
    version: object = None
    link: object = False
    dependencies: object = None


class _Lock(msgspec.Struct, kw_only=True):
    lockfileVersion: object = None  # noqa: N815 - npm's own field name
    name: object = None
    version: object = None
    packages: object = None
    dependencies: object = None


def _lock_root(lock: _Lock) -> tuple[str, str] | None:
    """The project's own ``(name, version)``: lockfile v2/v3's ``packages[""]`` entry, or
    v1's top level; None without both."""
    name, version = lock.name, lock.version
    if isinstance(lock.packages, dict) and isinstance(lock.packages.get(""), dict):
        entry = msgspec.convert(lock.packages[""], _LockEntry)
        name, version = entry.name if entry.name is not None else name, entry.version
    if isinstance(name, str) and isinstance(version, str):
        return name, version
    return None


_LOCK_DECODER = msgspec.json.Decoder(_Lock)


def _parent(path: str) -> str:
    """A manifest's package directory, which an OS package manager may list instead."""
    return path.rpartition("/")[0]


def _is_lockfile(path: str) -> bool:
    parts = path.split("/")
    return parts[-1] == "package-lock.json" and "node_modules" not in parts[:-1]


def _lock_entries(lock: _Lock) -> list[tuple[str, str, str]]:
    """``(install location, name, version)`` of every pinned package of a lockfile."""
    out: list[tuple[str, str, str]] = []
    if isinstance(lock.packages, dict):  # lockfile v2 and v3
        for location, raw in lock.packages.items():
            if not isinstance(location, str) or "node_modules/" not in location:
                continue  # "" is the project itself; workspace folders are not packages
            entry = msgspec.convert(raw, _LockEntry) if isinstance(raw, dict) else None
            if entry is None or entry.link:
                continue
            name = (
                entry.name
                if isinstance(entry.name, str)
                else location.rsplit("node_modules/", 1)[1]
            )
            if isinstance(entry.version, str):
                out.append((location, name, entry.version))
    elif isinstance(lock.dependencies, dict):  # lockfile v1: nested by install location

        def walk(deps: dict[object, object], base: str) -> None:
            for name, raw in deps.items():
                if not isinstance(name, str) or not isinstance(raw, dict):
                    continue
                entry = msgspec.convert(raw, _LockEntry)
                location = f"{base}node_modules/{name}"
                if isinstance(entry.version, str):
                    out.append((location, name, entry.version))
                if isinstance(entry.dependencies, dict):
                    walk(entry.dependencies, location + "/")

        walk(lock.dependencies, "")
    return out


def _package(name: str, version: str, path: str) -> Package:
    """An npm package read in the file at ``path``."""
    scope, _, bare = name.rpartition("/")
    return Package(
        name=name,
        version=version,
        type="npm",
        ecosystem=Ecosystem.NPM.value,
        purl=package_url("npm", scope or None, bare, version),
        path=path,
    )


def _is_package_manifest(path: str) -> bool:
    parts = path.split("/")
    if len(parts) < 3 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith(".")
    return len(parts) >= 4 and parts[-3].startswith("@") and parts[-4] == "node_modules"


class NpmAnalyzer(BufferedAnalyzer):
    """Installed npm packages in ``node_modules`` trees."""

    NAME: ClassVar[str] = "npm"
    VERSION: ClassVar[int] = 5

    def wants(self, path: str) -> int | None:
        """``package.json`` of a package directory inside ``node_modules``; a project's
        ``package-lock.json``."""
        if path.endswith("package.json") and _is_package_manifest(path):
            return SIZE_CAP
        if path.endswith("package-lock.json") and _is_lockfile(path):
            return LOCK_CAP
        return None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """A manifest's package, or a lockfile's pinned packages (each with the manifest
        path that supersedes it once installed)."""
        if _is_lockfile(path):
            return self._read_lock(path, data, truncated)
        if truncated:
            return FileFacts(notes=(f"{path}: larger than {SIZE_CAP} bytes; skipped",))
        try:
            manifest = _DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            return FileFacts(notes=(f"{path}: not a JSON object ({exc}); skipped",))
        name, version = manifest.name, manifest.version
        if not isinstance(name, str) or not isinstance(version, str):
            # No package here, but an installed manifest all the same: its lockfile pin is
            # not reported as if the package were missing.
            return FileFacts()
        if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
            return FileFacts(
                notes=(f"{path}: invalid name/version ({name!r}, {version!r}); skipped",)
            )
        return FileFacts(packages=(_package(name, version, path),))

    @staticmethod
    def _read_lock(path: str, data: bytes, truncated: bool) -> FileFacts:
        if truncated:
            return FileFacts(notes=(f"{path}: larger than {LOCK_CAP} bytes; skipped",))
        try:
            lock = _LOCK_DECODER.decode(data)
            entries = _lock_entries(lock)
            root = _lock_root(lock)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            return FileFacts(notes=(f"{path}: not a readable package-lock.json ({exc}); skipped",))
        project = path.rpartition("/")[0]
        prefix = f"{project}/" if project else ""
        packages: list[Package] = []
        hints: list[str] = []
        if root is not None and _NAME.fullmatch(root[0]) and _VERSION.fullmatch(root[1]):
            # The project: a component, not a dependency, and never matched (no ecosystem).
            packages.append(
                msgspec.structs.replace(_package(root[0], root[1], path), ecosystem=None, root=True)
            )
            hints.append(f"{prefix}package.json")
        for location, name, version in entries:
            if not _NAME.fullmatch(name) or not _SEMVERISH.fullmatch(version):
                continue  # file:, git and tarball pins are not registry versions
            packages.append(_package(name, version, path))
            hints.append(f"{prefix}{location}/package.json")
        return FileFacts(packages=tuple(packages), hints=tuple(hints))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """One package per installed manifest; a lockfile's pins that are not installed."""
        notes = Notes()
        mine = view.found(self.NAME)
        manifests: dict[str, Found] = {}
        locks: dict[str, Found] = {}
        for path, f in mine.items():
            (locks if _is_lockfile(path) else manifests)[path] = f
        packages = placed_files(manifests, ctx, notes, _parent)
        # A lock's pins are placed only if not installed, and in an image that installed
        # its lock most are: filtered first, not placed by placed_files and then dropped.
        for path in sorted(locks):
            f = locks[path]
            for note in f.facts.notes:
                notes.add(note)
            owner = ctx.owners.get(f.path)
            packages += [
                msgspec.structs.replace(p, layer=f.layer, path=f.path, owner=owner)
                for p, installed in zip(f.facts.packages, f.facts.hints, strict=True)
                # Installed: its manifest already reported it.
                if installed not in mine
            ]
        return AnalyzerResult(packages=packages, notes=notes.result())
