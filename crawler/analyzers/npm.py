"""The npm analyzer: installed Node packages from ``node_modules/<name>/package.json``.

A package is a ``package.json`` directly inside a ``node_modules`` directory
(``node_modules/left-pad/package.json``) or inside a scope in one
(``node_modules/@babel/core/package.json``), at any depth, nested ``node_modules`` included.
Other ``package.json`` files are not installed packages and are never asked for: a project's
own root manifest, or the ``{"type": "module"}`` stubs packages keep in subdirectories
(``node_modules/x/esm/package.json``). A manifest without a string ``name`` and ``version``
is skipped silently (some packages ship placeholder directories); one that is not JSON is
noted.

``name`` is the manifest's, not the directory's: an aliased install
(``npm i foo@npm:bar``) lives in ``node_modules/foo`` but *is* ``bar``. ``owner`` is set as
for Python when an OS package manager lists the manifest or its directory (Alpine's ``npm``
package ships its own dependencies under ``usr/lib/node_modules/npm/node_modules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

import msgspec

from regsweep.crawler.analyzers._pkgutil import Notes, package_url
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.matcher.advisories.ecosystems import Ecosystem
from regsweep.matcher.records import Package

__all__ = ["NpmAnalyzer"]

#: package.json files are a few KB; 1 MiB is generous.
SIZE_CAP = 1024 * 1024

# npm's validate-npm-package-name, loosened for legacy names (upper case was allowed).
_NAME = re.compile(r"(?:@[A-Za-z0-9~][A-Za-z0-9._~-]*/)?[A-Za-z0-9~_.-][A-Za-z0-9._~-]*")
_VERSION = re.compile(r"[\x21-\x7e]+")


class _Manifest(msgspec.Struct, kw_only=True):
    # ``object``: a wrong type is a skipped package, not a decode error for the file.
    name: object = None
    version: object = None


_DECODER = msgspec.json.Decoder(_Manifest)


def _is_package_manifest(path: str) -> bool:
    parts = path.split("/")
    if len(parts) < 3 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith(".")
    return len(parts) >= 4 and parts[-3].startswith("@") and parts[-4] == "node_modules"


class NpmAnalyzer:
    """Installed npm packages in ``node_modules`` trees."""

    NAME: ClassVar[str] = "npm"
    VERSION: ClassVar[int] = 1

    def wants(self, path: str) -> int | None:
        """``package.json`` of a package directory inside ``node_modules``."""
        return SIZE_CAP if path.endswith("package.json") and _is_package_manifest(path) else None

    def analyze(self, files: Mapping[str, LayerFile], ctx: Context) -> AnalyzerResult:
        """One package per manifest with a name and version."""
        notes = Notes()
        packages: list[Package] = []
        for path in sorted(files):
            if not _is_package_manifest(path):
                continue
            f = files[path]
            if f.truncated:
                notes.add(f"{path}: larger than {SIZE_CAP} bytes; skipped")
                continue
            try:
                manifest = _DECODER.decode(f.data)
            except msgspec.DecodeError as exc:
                notes.add(f"{path}: not a JSON object ({exc}); skipped")
                continue
            name, version = manifest.name, manifest.version
            if not isinstance(name, str) or not isinstance(version, str):
                continue
            if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
                notes.add(f"{path}: invalid name/version ({name!r}, {version!r}); skipped")
                continue
            scope, _, bare = name.rpartition("/")
            pkg_dir = path.rpartition("/")[0]
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="npm",
                    ecosystem=Ecosystem.NPM.value,
                    purl=package_url("npm", scope or None, bare, version),
                    layer=f.layer,
                    path=path,
                    owner=ctx.owners.get(path) or ctx.owners.get(pkg_dir),
                )
            )
        return AnalyzerResult(packages=packages, notes=notes.result())
