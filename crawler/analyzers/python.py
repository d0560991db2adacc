"""The Python analyzer: installed distributions from their core metadata.

Reads ``<name>-<ver>.dist-info/METADATA`` (wheels, pip), ``<name>.egg-info/PKG-INFO``
(setuptools, ``pip install -e``), an ``.egg-info`` *file* (distutils; Debian's python3-rpm
ships one) and ``EGG-INFO/PKG-INFO`` inside an unzipped ``.egg``, wherever they are: under
``site-packages`` and ``dist-packages``, but also ``pip install --target`` directories and
vendored copies, which are installed code all the same.

``name`` is the ``Name:`` field as written (``PyYAML``): the output shows what the metadata
says, and the matcher folds it with ``normalize_name`` (PEP 503) before lookup, exactly as
the index folded the advisories. The purl follows the purl spec for pypi (lower case,
``_`` → ``-``).

Ownership: a distribution whose metadata file (or its ``.dist-info`` / ``.egg-info``
directory) is listed by an OS package manager carries that package's name in ``owner``
(``python3-yaml`` for ``/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info``); the matcher
then leaves it to the distro's advisories.

One directory can hold the same distribution twice: Debian's python3-cryptography has both
``cryptography-38.0.4.dist-info`` and ``cryptography.egg-info``. One package is reported
per (directory, PEP 503 name, version), the dist-info one when both exist.
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
    placed_files,
)
from regsweep.matcher.advisories.ecosystems import Ecosystem, normalize_name
from regsweep.matcher.records import Package

__all__ = ["PythonAnalyzer", "parse_metadata"]

#: Core metadata headers are small; the long description after them may be large, and a
#: truncated file still has its headers.
SIZE_CAP = 1024 * 1024

# PEP 508 names; versions are validated by the matcher's PEP 440 parser, not here.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[\x21-\x7e]+")


def _kind(path: str) -> int:
    """0 not metadata, 1 dist-info METADATA, 2 egg-info PKG-INFO or file, 3 EGG-INFO."""
    if path.endswith(".dist-info/METADATA"):
        return 1
    if path.endswith((".egg-info/PKG-INFO", ".egg-info")):
        return 2
    if path.endswith(".egg/EGG-INFO/PKG-INFO"):
        return 3
    return 0


def parse_metadata(text: str) -> dict[str, str]:
    """The header fields of a core-metadata file (RFC 822 style), first occurrence wins.

    Only the header block is read: it ends at the first empty line, after which the long
    description follows (Metadata-Version 2.1+).
    """
    fields: dict[str, str] = {}
    last: str | None = None
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line:
            break
        if line[0] in " \t":
            if last is not None and last in fields:
                fields[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = name.strip().lower()
        fields.setdefault(last, value.strip())
    return fields


class PythonAnalyzer(BufferedAnalyzer):
    """Installed Python distributions (dist-info, egg-info)."""

    NAME: ClassVar[str] = "python"
    VERSION: ClassVar[int] = 2

    def wants(self, path: str) -> int | None:
        """Metadata files of installed distributions, 1 MiB each."""
        return SIZE_CAP if _kind(path) else None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """The distribution a metadata file names; unreadable metadata is a note."""
        if b"\x00" in data:
            return FileFacts(notes=(f"{path}: binary data, not package metadata; skipped",))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Old distutils wrote PKG-INFO in the locale's encoding; the fields used here
            # are ASCII by PEP 508/440 and are validated below.
            text = data.decode("utf-8", errors="replace")
        fields = parse_metadata(text)
        name = fields.get("name", "")
        version = fields.get("version", "")
        if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
            return FileFacts(
                notes=(f"{path}: no valid Name/Version ({name!r}, {version!r}); skipped",)
            )
        pkg = Package(
            name=name,
            version=version,
            type="pypi",
            ecosystem=Ecosystem.PYPI.value,
            purl=package_url("pypi", None, name.lower().replace("_", "-"), version),
            path=path,
        )
        return FileFacts(packages=(pkg,))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """One package per distribution found; unreadable metadata is noted and skipped."""
        notes = Notes()
        # (site dir, PEP 503 name, version) → (kind, package); lower kind wins.
        found: dict[tuple[str, str, str], tuple[int, Package]] = {}
        for pkg in placed_files(view.found(self.NAME), ctx, notes):
            assert pkg.path is not None  # read sets it: the metadata file's path
            path = pkg.path
            kind = _kind(path)
            # The metadata directory (dist-info / egg-info / .egg) and the directory it is in.
            meta_dir = path if kind == 2 and path.endswith(".egg-info") else path.rpartition("/")[0]
            if kind == 3:
                meta_dir = meta_dir.rpartition("/")[0]
            site = meta_dir.rpartition("/")[0]
            # An OS package manager may list the metadata directory rather than the file.
            # Looked up here, not by placed_files' owner_dir: the site needs the directory
            # too, and it is worked out once.
            if not pkg.owner:
                owner = ctx.owners.get(meta_dir)
                if owner != pkg.owner:
                    pkg = msgspec.structs.replace(pkg, owner=owner)
            key = (site, normalize_name(Ecosystem.PYPI, pkg.name), pkg.version)
            prev = found.get(key)
            if prev is None:
                found[key] = (kind, pkg)
                continue
            # Keep the preferred file's record, and an owner if either copy has one.
            if prev[0] <= kind:
                best_kind, best, other = prev[0], prev[1], pkg
            else:
                best_kind, best, other = kind, pkg, prev[1]
            if best.owner is None and other.owner is not None:
                best = msgspec.structs.replace(best, owner=other.owner)
            found[key] = (best_kind, best)
        return AnalyzerResult(packages=[p for _, p in found.values()], notes=notes.result())
