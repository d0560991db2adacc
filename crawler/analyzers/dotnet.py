""".NET applications: ``*.deps.json`` → NuGet packages.

The .NET SDK writes ``<app>.deps.json`` next to every published application (and the shared
frameworks carry their own). Its ``libraries`` object maps ``"Name/Version"`` to a record
whose ``type`` is ``package`` (restored from NuGet), ``project`` (the application or a project
reference: no advisory can name it) or ``reference``/``referenceassembly``; only ``package``
entries are reported. Names are kept as written (NuGet ids are case-insensitive;
``normalize_name`` lowercases them at match time, ``normalize_version`` the version). Type
``nuget``, ecosystem ``NuGet``, purl ``pkg:nuget/<name>@<version>``.
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

__all__ = ["DotnetDepsAnalyzer"]

#: deps.json files of big applications reach a few MiB (every runtime asset listed).
SIZE_CAP = 64 << 20


class _Library(msgspec.Struct):
    type: str | None = None


class _Deps(msgspec.Struct):
    libraries: dict[str, _Library] = {}


_DECODER = msgspec.json.Decoder(_Deps)


class DotnetDepsAnalyzer(BufferedAnalyzer):
    """NuGet packages listed in .NET ``deps.json`` files."""

    NAME: ClassVar[str] = "dotnet-deps"
    VERSION: ClassVar[int] = 2

    def wants(self, path: str) -> int | None:
        """Any file named ``*.deps.json``."""
        return SIZE_CAP if path.endswith(".deps.json") else None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Every ``package`` library of a deps.json; a bad file or key is a note."""
        if truncated:
            return FileFacts(notes=(f"{path}: larger than {SIZE_CAP} bytes, not read",))
        try:
            deps = _DECODER.decode(data)
        # ValidationError is a DecodeError; msgspec raises UnicodeDecodeError for
        # invalid UTF-8 inside a string (found by fuzzing).
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            return FileFacts(notes=(f"{path}: not a deps.json ({e})",))
        packages: list[Package] = []
        notes: list[str] = []
        for key, lib in deps.libraries.items():
            if lib.type != "package":
                continue
            name, sep, version = key.partition("/")
            if not (sep and name and version):
                notes.append(f"{path}: library key {key[:100]!r} is not Name/Version")
                continue
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="nuget",
                    ecosystem="NuGet",
                    purl=f"pkg:nuget/{quote(name, safe='-_.')}@{quote(version, safe='.-_~+')}",
                    path=path,
                )
            )
        return FileFacts(packages=tuple(packages), notes=tuple(notes))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Every visible deps.json's packages."""
        return assemble_files(view, self.NAME, ctx)
