"""The analyzer interface: what an analyzer asks of the layer walker and what it returns.

An analyzer names the paths it wants (``wants``) and a size cap for each; the layer walker
streams every layer once, keeps only those files (later layers replacing earlier ones,
whiteouts applied, links resolved) and hands the merged view to ``analyze``. Analyzers run in
a fixed order: the OS analyzer first (it fixes the ecosystem), then the OS package managers
(dpkg, apk, rpm: they fill ``Context.owners``), then language analyzers (which use the owners
to mark packages the OS installed). ``VERSION`` is part of the layer-cache key: bump it when
the analyzer's output for the same files changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

import msgspec

from regsweep.matcher.records import OsInfo, Package


class AnalyzerError(Exception):
    """Base of analyzer errors. ``analyze`` raises it only for a whole database it cannot
    read at all; a bad entry inside one is skipped and reported in ``AnalyzerResult.notes``."""


class LayerFile(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One file of the merged image filesystem, as an analyzer receives it."""

    #: Normalised path relative to the root, no leading slash (``var/lib/dpkg/status``).
    path: str
    data: bytes
    #: Digest of the layer that wrote the version of the file seen here.
    layer: str
    #: The file was larger than the analyzer's cap: ``data`` holds only the first bytes.
    truncated: bool = False


class Context(msgspec.Struct, kw_only=True):
    """What earlier analyzers found, for later ones."""

    os: OsInfo | None = None
    #: The advisory ecosystem of the OS packages, as the index keys it: ``Debian:11``,
    #: ``Ubuntu:22.04``, ``Alpine:v3.19``, ``Rocky Linux:9`` … (see advisories.ecosystems).
    ecosystem: str | None = None
    #: Path (as in ``LayerFile.path``) → name of the OS package that installed it.
    owners: dict[str, str] = {}


class AnalyzerResult(msgspec.Struct, kw_only=True):
    """An analyzer's findings; ``notes`` say what was skipped and why (for error records)."""

    packages: list[Package] = []
    os: OsInfo | None = None
    ecosystem: str | None = None
    owners: dict[str, str] = {}
    notes: list[str] = []


class Analyzer(Protocol):
    """One analyzer. Implementations are plain classes, registered explicitly by the caller."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int]

    def wants(self, path: str) -> int | None:
        """The size cap in bytes if the analyzer needs ``path``, else None (cheap: called for
        every tar header of every layer)."""
        ...

    def analyze(self, files: Mapping[str, LayerFile], ctx: Context) -> AnalyzerResult:
        """Read the wanted files (only those present) and return what they say."""
        ...
