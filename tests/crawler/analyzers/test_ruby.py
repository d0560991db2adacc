"""Installed gemspecs → RubyGems packages, checked against RubyGems itself.

Fixtures are the specs Debian's Ruby installs (``/usr/lib/ruby/gems/*/specifications`` and
``default/``) and specs written by ``Gem::Specification#to_ruby`` — the generator RubyGems
uses when it installs a gem. ``Gem::Specification.load`` is the oracle.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.ruby import SIZE_CAP, GemspecAnalyzer

LAYER = "sha256:" + "12" * 32
RUBY = shutil.which("ruby")
needs_ruby = pytest.mark.skipif(RUBY is None, reason="ruby not installed")
_LOAD = (
    "ARGV.each { |p| s = Gem::Specification.load(p); "
    "puts [File.basename(p), s.name, s.version.to_s].join(' ') }"
)
_GENERATE = (
    "s = Gem::Specification.new { |s| s.name = ARGV[0]; s.version = ARGV[1]; "
    "s.summary = 'x'; s.authors = ['a']; s.files = ['lib/x.rb']; "
    "s.platform = ARGV[2] if ARGV[2] }; print s.to_ruby"
)


def _analyze(files: dict[str, bytes], ctx: Context | None = None) -> AnalyzerResult:
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return GemspecAnalyzer().analyze(lf, ctx or Context())


@needs_ruby
def test_installed_specs_agree_with_rubygems() -> None:
    """Every spec Debian's Ruby installed (default gems included) gives the name and
    version ``Gem::Specification.load`` gives."""
    paths = sorted(glob.glob("/usr/lib/ruby/gems/*/specifications/**/*.gemspec", recursive=True))
    if not paths:
        pytest.skip("no installed gemspecs")
    assert RUBY is not None
    out = subprocess.run([RUBY, "-e", _LOAD, *paths], capture_output=True, text=True, check=True)
    expected = {}
    for line in out.stdout.splitlines():
        base, name, version = line.split(" ")
        expected[base] = (name, version)
    files = {p.lstrip("/"): Path(p).read_bytes() for p in paths}
    res = _analyze(files)
    assert res.notes == []
    got = {Path(p.path or "").name: (p.name, p.version) for p in res.packages}
    assert got == expected


@needs_ruby
def test_generated_spec_prerelease_and_platform(tmp_path: Path) -> None:
    """A spec written by RubyGems' generator for a platform gem with a pre-release version:
    name and version as RubyGems reads them; type gem, ecosystem RubyGems, purl, owner."""
    assert RUBY is not None
    spec = subprocess.run(
        [RUBY, "-e", _GENERATE, "nokogiri", "1.16.0.rc1", "x86_64-linux"],
        capture_output=True,
        check=True,
    ).stdout
    path = "usr/local/bundle/specifications/nokogiri-1.16.0.rc1-x86_64-linux.gemspec"
    (tmp_path / "s.gemspec").write_bytes(spec)
    oracle = subprocess.run(
        [RUBY, "-e", _LOAD, str(tmp_path / "s.gemspec")], capture_output=True, text=True
    ).stdout.split()
    res = _analyze({path: spec}, Context(owners={path: "ruby-nokogiri"}))
    [p] = res.packages
    assert [p.name, p.version] == oracle[1:]
    assert (p.type, p.ecosystem, p.purl) == ("gem", "RubyGems", "pkg:gem/nokogiri@1.16.0.rc1")
    assert (p.layer, p.path, p.owner) == (LAYER, path, "ruby-nokogiri")


def test_stub_line_is_the_fallback() -> None:
    """When the block's literals are missing the ``# stub:`` line written by the same
    generator names the gem."""
    spec = b"# stub: rack 2.2.3 ruby lib\n\nGem::Specification.new do |s|\n  s.name = NAME\nend\n"
    [p] = _analyze({"x/specifications/rack-2.2.3.gemspec": spec}).packages
    assert (p.name, p.version) == ("rack", "2.2.3")


def test_unreadable_specs_are_notes() -> None:
    """A computed version, binary garbage and a truncated (oversized) file give notes."""
    lf = {
        "a/specifications/x.gemspec": LayerFile(
            path="a/specifications/x.gemspec",
            data=b"Gem::Specification.new do |spec|\n  spec.name = 'x'\n"
            b"  spec.version = X::VERSION\nend\n",
            layer=LAYER,
        ),
        "a/specifications/bin.gemspec": LayerFile(
            path="a/specifications/bin.gemspec", data=bytes(range(256)) * 4, layer=LAYER
        ),
        "a/specifications/big.gemspec": LayerFile(
            path="a/specifications/big.gemspec", data=b"x", layer=LAYER, truncated=True
        ),
    }
    res = GemspecAnalyzer().analyze(lf, Context())
    assert res.packages == []
    assert len(res.notes) == 3


def test_wants_only_installed_spec_dirs() -> None:
    """``specifications/`` and ``specifications/default/`` at any depth; a gem's own source
    gemspec (in its gem directory) is not an installed spec."""
    az = GemspecAnalyzer()
    for p in (
        "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
        "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
        "usr/local/bundle/specifications/rack-2.2.3.gemspec",
        "specifications/x-1.gemspec",
    ):
        assert az.wants(p) == SIZE_CAP, p
    for p in (
        "usr/local/bundle/gems/rack-2.2.3/rack.gemspec",
        "app/myapp.gemspec",
        "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec.bak",
        "x/notspecifications/a.gemspec",
    ):
        assert az.wants(p) is None, p
