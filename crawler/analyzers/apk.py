"""The apk analyzer: Alpine, Wolfi and Chainguard packages from ``lib/apk/db/installed``.

The database is a text file of entries separated by blank lines, one ``X:value`` per line
(apk-tools ``apk_db_index_read``): ``P`` name, ``V`` version, ``A`` arch, ``o`` origin (the
source package: advisories are keyed by it), ``F`` a directory and the ``R`` file names
that follow it (their paths, joined, become ``owners``). Other letters (checksums, sizes,
dependencies, ACLs) are not needed and are skipped.

usr-merged distributions may keep the database at ``usr/lib/apk/db/installed`` with
``lib`` a symlink; both spellings are asked for and ``lib/…`` wins when both are present
(they are then the same file).

Layer attribution: apk rewrites the whole database on every change and keeps no per-package
file, so every package carries the layer of the database's last rewrite.
"""

from __future__ import annotations

import io
import re
from typing import ClassVar

from regsweep.crawler.analyzers._pkgutil import (
    Notes,
    distribution,
    package_url,
    placed,
    without_nul_entries,
)
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
)
from regsweep.matcher.records import Package

__all__ = ["ApkAnalyzer", "ApkEntry", "parse_installed"]

PATHS = ("lib/apk/db/installed", "usr/lib/apk/db/installed")
#: Alpine's database with file lists is ~100 KB per 20 packages; 64 MiB is far beyond real.
SIZE_CAP = 64 * 1024 * 1024

#: No system has more installed packages (the largest real images hold a few thousand), nor
#: more owned files: past these, a database is hostile and is read no further.
MAX_PACKAGES = 50_000
MAX_FILES = 2_000_000

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")
_VERSION = re.compile(r"[A-Za-z0-9.+~_-]+")
_LINE = re.compile(r"[A-Za-z]:")


class ApkEntry:
    """One package entry of the installed database."""

    __slots__ = ("arch", "files", "line", "name", "origin", "version")

    def __init__(self, line: int) -> None:
        self.line = line
        self.name: str | None = None
        self.version: str | None = None
        self.arch: str | None = None
        self.origin: str | None = None
        self.files: list[str] = []


def parse_installed(text: str, notes: Notes, path: str) -> list[ApkEntry]:
    """The entries of an installed database; a line that is not ``X:value`` is noted.

    Lines are read one at a time (a split into a list held tens of millions of strings
    for a hostile 50 MB database: 2.3 GB), and reading stops at ``MAX_PACKAGES`` entries
    or ``MAX_FILES`` file lines, with a note: what is kept is what costs memory.
    """
    entries: list[ApkEntry] = []
    entry: ApkEntry | None = None
    directory = ""
    files = 0
    for lineno, raw in enumerate(io.StringIO(text, newline="\n"), 1):
        line = raw.rstrip("\r\n")
        if not line:
            if entry is not None:
                entries.append(entry)
                if len(entries) >= MAX_PACKAGES:
                    notes.add(f"{path}: more than {MAX_PACKAGES} packages; the rest not read")
                    return entries
            entry, directory = None, ""
            continue
        if entry is None:
            entry = ApkEntry(lineno)
        if not _LINE.match(line):
            notes.add(f"{path}:{lineno}: not an 'X:value' line, ignored")
            continue
        key, value = line[0], line[2:]
        if key == "P":
            entry.name = value
        elif key == "V":
            entry.version = value
        elif key == "A":
            entry.arch = value
        elif key == "o":
            entry.origin = value
        elif key == "F":
            directory = value.strip("/")
        elif key == "R":
            files += 1
            if files > MAX_FILES:
                notes.add(f"{path}: more than {MAX_FILES} file lines; the rest not read")
                return entries  # the entry being read is left out whole
            entry.files.append(f"{directory}/{value}" if directory else value)
    if entry is not None:
        entries.append(entry)
    return entries


class ApkAnalyzer(BufferedAnalyzer):
    """Installed apk packages, their origins and the files each one owns."""

    NAME: ClassVar[str] = "apk"
    VERSION: ClassVar[int] = 4

    def wants(self, path: str) -> int | None:
        """The installed database, under either spelling of its directory."""
        return SIZE_CAP if path in PATHS else None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """Packages (a purl without the distribution yet) and the files each one owns."""
        notes = Notes()
        clean = without_nul_entries(data, path, "an apk database", notes)
        if clean is None:
            return FileFacts(notes=tuple(notes.result()))
        data = clean
        if truncated:
            notes.add(f"{path}: larger than the size cap; the last partial entry is dropped")
            # Keep whole entries only: a cut inside one could leave a wrong version.
            cut = data.rfind(b"\n\n")
            data = data[: cut + 2] if cut >= 0 else b""
        text = data.decode("utf-8", errors="replace")
        packages: list[Package] = []
        owners: dict[str, str] = {}
        for e in parse_installed(text, notes, path):
            where = f"{path}: entry at line {e.line}"
            if e.name is None or not _NAME.fullmatch(e.name):
                notes.add(f"{where}: missing or invalid P: {e.name!r}; skipped")
                continue
            if e.version is None or not _VERSION.fullmatch(e.version):
                notes.add(f"{where}: {e.name}: missing or invalid V: {e.version!r}; skipped")
                continue
            origin = e.origin if e.origin and _NAME.fullmatch(e.origin) else e.name
            arch = e.arch if e.arch and _NAME.fullmatch(e.arch) else None
            for p in e.files:
                owners.setdefault(p, e.name)
            packages.append(
                Package(
                    name=e.name,
                    version=e.version,
                    type="apk",
                    source_name=origin,
                    source_version=e.version,
                    purl=package_url("apk", None, e.name, e.version, {"arch": arch}),
                    path=path,
                )
            )
        return FileFacts(packages=tuple(packages), owners=owners, notes=tuple(notes.result()))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Packages and owners from the first database present."""
        f = next((found for p in PATHS if (found := view.get(self.NAME, p)) is not None), None)
        if f is None:
            return AnalyzerResult()
        notes = Notes()
        for note in f.facts.notes:
            notes.add(note)
        namespace, distro = distribution(ctx.os, "alpine")
        packages = placed(
            f.facts.packages, ctx.ecosystem, namespace, distro, layer=f.layer, path=f.path
        )
        if packages and ctx.ecosystem is None:
            notes.add(f"{len(packages)} apk packages: OS release unknown, they are not matched")
        return AnalyzerResult(packages=packages, owners=dict(f.facts.owners), notes=notes.result())
