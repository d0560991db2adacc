"""Fuzzing the language analyzers: whatever the bytes, ``analyze`` returns (notes at most).

Each analyzer gets arbitrary bytes and mutations of a valid input of its format (a zip with
pom.properties, a Go buildinfo header, an ELF with a section table, gemspec and JSON text);
the invariant is that no exception escapes and every package has a non-empty name and
version.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from regsweep.crawler.analyzers.dotnet import DotnetDepsAnalyzer
from regsweep.crawler.analyzers.gobinary import GoBinaryAnalyzer
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.java import JavaAnalyzer
from regsweep.crawler.analyzers.php import ComposerAnalyzer
from regsweep.crawler.analyzers.ruby import GemspecAnalyzer
from regsweep.crawler.analyzers.rust import RustBinaryAnalyzer

LAYER = "sha256:" + "00" * 32


def _jar() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        # Fixed timestamps: the corpus below names byte offsets in this archive.
        for name, data in (
            ("META-INF/maven/g/a/pom.properties", b"groupId=g\nartifactId=a\nversion=1\n"),
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nBundle-Version: 1\r\n\r\n"),
        ):
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _mutate(seed: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed)
    for at, value in flips:
        data[at % len(data)] = value
    return bytes(data[: max(cut, len(data) // 2)])


def _go() -> bytes:
    mod = b"0" * 16 + b"path\tx\nmod\tx\tv1.0.0\t\ndep\ty\tv2.0.0\t\n=>\tz\tv3.0.0\t\n" + b"1" * 16
    ver = b"go1.21.3"
    head = b"\xff Go buildinf:\x08\x02" + b"\0" * 16
    return b"\x7fELF" + b"\0" * 12 + head + bytes([len(ver)]) + ver + bytes([len(mod)]) + mod


def _elf() -> bytes:
    """A minimal ELF64 LE: header, a ``.dep-v0`` section, the name table, two headers."""
    blob = zlib.compress(b'{"packages":[{"name":"a","version":"1.0.0","source":"crates.io"}]}')
    names = b"\0.dep-v0\0.shstrtab\0"
    body = blob + names
    shoff = 64 + len(body)
    hdr = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    )
    null = b"\0" * 64
    dep = struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, 64, len(blob), 0, 0, 1, 0)
    strt = struct.pack("<IIQQQQIIQQ", 9, 3, 0, 0, 64 + len(blob), len(names), 0, 0, 1, 0)
    return hdr + body + null + dep + strt


SEEDS = {
    "app/a.jar": (JavaAnalyzer(), _jar()),
    "usr/bin/go": (GoBinaryAnalyzer(), _go()),
    "usr/bin/rs": (RustBinaryAnalyzer(), _elf()),
    "x/specifications/a.gemspec": (GemspecAnalyzer(), b's.name = "a"\ns.version = "1"\n'),
    "vendor/composer/installed.json": (
        ComposerAnalyzer(),
        b'{"packages":[{"name":"a/b","version":"1.0"}]}',
    ),
    "a.deps.json": (DotnetDepsAnalyzer(), b'{"libraries":{"A/1.0":{"type":"package"}}}'),
}


def _check(path: str, data: bytes) -> AnalyzerResult:
    az, _ = SEEDS[path]
    res = az.analyze({path: LayerFile(path=path, data=data, layer=LAYER)}, Context())
    assert all(p.name and p.version for p in res.packages)
    return res


def test_seeds_are_valid() -> None:
    """Each unmutated seed yields at least one package (so mutations start from real input)."""
    for path, (_, data) in SEEDS.items():
        assert _check(path, data).packages, path


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SEEDS)), st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(path: str, data: bytes) -> None:
    """Random bytes in any wanted file: a result, never an exception."""
    _check(path, data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 4096),
)
# Found by this test: a gemspec whose name literal is a tab gave a package with no name.
@example(path="x/specifications/a.gemspec", flips=[(213, 9)], cut=28)
def test_mutated_seeds_never_raise(path: str, flips: list[tuple[int, int]], cut: int) -> None:
    """A valid input with bytes overwritten and its tail cut: a result, never an exception."""
    _check(path, _mutate(SEEDS[path][1], flips, cut))


#: Inputs fuzzing found that once escaped as exceptions (kept as the regression corpus).
CORPUS = [
    # msgspec raises UnicodeDecodeError, not DecodeError, for invalid UTF-8 in a string.
    ("vendor/composer/installed.json", b'{"packages":[{"name":"\x80","version":"1"}]}'),
    ("a.deps.json", b'{"libraries":{"\x80/1.0":{"type":"package"}}}'),
    ("usr/bin/rs", b""),  # rebuilt in the test: the JSON is compressed in the section
    # A central-directory name length zeroed: ZipInfo.is_dir() raised IndexError.
    ("app/a.jar", _mutate(_jar(), [(579, 0)], 350)),
    # "Version needed to extract" 6.4: zipfile raised NotImplementedError.
    ("app/a.jar", _mutate(_jar(), [(3418, 64)], 350)),
]


def test_found_cases_stay_fixed() -> None:
    """Each corpus entry returns instead of raising; damaged data gives a note (the member
    with an empty name is simply not a package, which needs none)."""
    for path, data in CORPUS:
        if path == "usr/bin/rs":
            # The JSON sits compressed in the section: rebuild it with the bad byte inside.
            blob = zlib.compress(
                b'{"packages":[{"name":"\x80","version":"1","source":"crates.io"}]}'
            )
            good = zlib.compress(
                b'{"packages":[{"name":"a","version":"1.0.0","source":"crates.io"}]}'
            )
            assert len(blob) <= len(good)
            elf = _elf()
            at = elf.index(good)
            data = elf[:at] + blob + b"\0" * (len(good) - len(blob)) + elf[at + len(good) :]
        res = _check(path, data)
        assert res.packages == []
        assert res.notes or data == CORPUS[3][1], path
