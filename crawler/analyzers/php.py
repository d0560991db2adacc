"""PHP Composer installs: ``vendor/composer/installed.json`` → Packagist packages.

Composer writes the list of packages it installed into the vendor directory: Composer 1 as a
bare JSON list, Composer 2 as ``{"packages": [...], "dev": …, "dev-package-names": […]}``.
Both are read. Development packages are reported like the others: they are on disk in the
image, whatever the intent. Versions are kept as written (``v5.4.0``, ``1.2.3``,
``dev-main``): the composer scheme drops a leading ``v`` as Composer does, and a branch
version such as ``dev-main`` is not a release any advisory range can place, so it fails to
parse at match time and is skipped there with a reason rather than guessed here. Names are
kept as written (Composer 2 names are lowercase anyway; ``normalize_name`` folds case at match
time). Type ``composer``, ecosystem ``Packagist``, purl
``pkg:composer/<vendor>/<name>@<version>``.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import msgspec

from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    assemble_files,
)
from regsweep.matcher.records import Package

__all__ = ["ComposerAnalyzer"]

#: installed.json of a large application is a few MiB (descriptions, autoload maps).
SIZE_CAP = 64 << 20
_SUFFIX = "vendor/composer/installed.json"


class _Entry(msgspec.Struct):
    name: str | None = None
    version: str | None = None


class _Installed2(msgspec.Struct):
    packages: list[_Entry]


_LIST = msgspec.json.Decoder(list[_Entry])
_V2 = msgspec.json.Decoder(_Installed2)


def _purl(name: str, version: str) -> str:
    # The purl spec lowercases composer names (Packagist treats them case-insensitively).
    vendor, _, pkg = name.lower().partition("/")
    path = f"{quote(vendor, safe='-_.')}/{quote(pkg, safe='-_.')}" if pkg else quote(vendor)
    return f"pkg:composer/{path}@{quote(version, safe='.-_~+')}"


class ComposerAnalyzer(BufferedAnalyzer):
    """Packages Composer installed into a ``vendor`` directory."""

    NAME: ClassVar[str] = "composer"
    VERSION: ClassVar[int] = 2

    def wants(self, path: str) -> int | None:
        """``vendor/composer/installed.json`` at any depth."""
        if path == _SUFFIX or path.endswith("/" + _SUFFIX):
            return SIZE_CAP
        return None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Both Composer formats; an unreadable file or incomplete entries are notes."""
        if truncated:
            return FileFacts(notes=(f"{path}: larger than {SIZE_CAP} bytes, not read",))
        data = data.lstrip()
        try:
            entries = _LIST.decode(data) if data[:1] == b"[" else _V2.decode(data).packages
        # ValidationError is a DecodeError; msgspec raises UnicodeDecodeError for
        # invalid UTF-8 inside a string (found by fuzzing).
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            return FileFacts(notes=(f"{path}: not a Composer installed.json ({e})",))
        packages: list[Package] = []
        skipped = 0
        for entry in entries:
            if not entry.name or not entry.version:
                skipped += 1
                continue
            packages.append(
                Package(
                    name=entry.name,
                    version=entry.version,
                    type="composer",
                    ecosystem="Packagist",
                    purl=_purl(entry.name, entry.version),
                    path=path,
                )
            )
        notes = (f"{path}: {skipped} entries without name or version skipped",) if skipped else ()
        return FileFacts(packages=tuple(packages), notes=notes)

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Every visible installed.json's packages."""
        return assemble_files(view, self.NAME, ctx)
