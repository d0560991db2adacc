"""Installed Ruby gems: ``specifications/*.gemspec`` → RubyGems packages.

RubyGems writes a Ruby-source spec for every installed gem into ``<gem home>/specifications``
(and ``specifications/default/`` for the default gems shipped with Ruby itself — ``cgi``,
``net-imap``, ``uri`` … have their own advisories, so they are reported too). The spec is
Ruby code, never evaluated here: the generator (``Gem::Specification#to_ruby``) always writes
``s.name = "rack".freeze`` and ``s.version = "2.2.3"`` as plain string literals at the top
of the ``Gem::Specification.new do |s|`` block, which is what is read (any block variable
name; ``.freeze`` optional; either quote). Where those are missing, the ``# stub: NAME
VERSION PLATFORM PATHS`` comment the same generator writes is used. Hand-written gemspecs
that compute their version (``s.version = Foo::VERSION``) are not installed specs and give a
note. Type ``gem``, ecosystem ``RubyGems``, purl ``pkg:gem/<name>@<version>``.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import quote

from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    assemble_files,
)
from regsweep.matcher.records import Package

__all__ = ["GemspecAnalyzer"]

#: Generated specs are a few KiB; the biggest (long file lists) stay well under this.
SIZE_CAP = 1 << 20
_NAME = re.compile(rb"""^\s*\w+\.name\s*=\s*(["'])([^"'\n]+)\1""", re.M)
_VERSION = re.compile(rb"""^\s*\w+\.version\s*=\s*(["'])([^"'\n]+)\1""", re.M)
_STUB = re.compile(rb"^# stub: (\S+) (\S+)", re.M)


class GemspecAnalyzer(BufferedAnalyzer):
    """Gems installed by RubyGems or Bundler."""

    NAME: ClassVar[str] = "gemspec"
    VERSION: ClassVar[int] = 2

    def wants(self, path: str) -> int | None:
        """``…/specifications/NAME.gemspec`` and ``…/specifications/default/NAME.gemspec``."""
        if not path.endswith(".gemspec"):
            return None
        head, _, _ = path.rpartition("/")
        if head.endswith("/default"):
            head = head[: -len("/default")]
        return SIZE_CAP if head == "specifications" or head.endswith("/specifications") else None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """The gem a spec names; a spec without a literal name and version is a note."""
        if truncated:
            return FileFacts(
                notes=(f"{path}: larger than {SIZE_CAP} bytes, not a generated gemspec",)
            )
        name_m, ver_m = _NAME.search(data), _VERSION.search(data)
        if name_m and ver_m:
            name, version = name_m.group(2), ver_m.group(2)
        elif (stub := _STUB.search(data)) is not None:
            name, version = stub.group(1), stub.group(2)
        else:
            return FileFacts(notes=(f"{path}: no literal name and version",))
        try:
            n, v = name.decode("utf-8").strip(), version.decode("utf-8").strip()
        except UnicodeDecodeError:
            return FileFacts(notes=(f"{path}: name or version is not UTF-8",))
        if not n or not v:  # a literal of blanks ("\t") is no name
            return FileFacts(notes=(f"{path}: empty name or version",))
        pkg = Package(
            name=n,
            version=v,
            type="gem",
            ecosystem="RubyGems",
            purl=f"pkg:gem/{quote(n, safe='-_.')}@{quote(v, safe='.-_~+')}",
            path=path,
        )
        return FileFacts(packages=(pkg,))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """One package per readable spec visible in the image."""
        return assemble_files(view, self.NAME, ctx)
