"""cargo-auditable ``.dep-v0`` sections → crates.io packages.

cargo and cargo-auditable are not available offline here, so the section is attached with
binutils (``objcopy --add-section``, exactly how a linker-placed section looks to a reader)
to real ELF files: a gcc-linked x86-64 executable, a gcc ``-m32`` object (ELF32), and
big-endian ELF32/ELF64 objects written by ``objcopy -O elf{32,64}-big``. The JSON follows
cargo-auditable's schema (``rust-audit-info`` output of a real binary has this shape).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, FileFacts, LayerFile
from regsweep.crawler.analyzers.rust import (
    MAX_JSON,
    SIZE_CAP,
    RustAuditError,
    RustBinaryAnalyzer,
    read_elf_section,
)

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("objcopy") is None,
    reason="gcc and binutils needed to build ELF fixtures",
)
LAYER = "sha256:" + "ef" * 32
AUDIT_JSON = (
    b'{"packages":['
    b'{"name":"ripgrep","version":"14.1.0","source":"local","root":true,"dependencies":[1,2,3]},'
    b'{"name":"memchr","version":"2.7.4","source":"crates.io"},'
    b'{"name":"regex","version":"1.10.4","source":"crates.io","dependencies":[1]},'
    b'{"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},'
    b'{"name":"forked","version":"0.1.0","source":"git"},'
    b'{"name":"internal","version":"3.0.0","source":"registry"}'
    b'],"format":1}'
)
EXPECTED = [("memchr", "2.7.4"), ("regex", "1.10.4"), ("cc", "1.0.83")]


def _gcc(tmp: Path, *args: str) -> Path:
    (tmp / "t.c").write_text("int main(void) { return 0; }\n")
    out = tmp / ("t.o" if "-c" in args else "t")
    subprocess.run(["gcc", *args, "-o", str(out), str(tmp / "t.c")], check=True)
    return out


def _with_section(elf: Path, payload: bytes, name: str = ".dep-v0") -> bytes:
    blob = elf.parent / "payload.bin"
    blob.write_bytes(payload)
    out = elf.parent / (elf.name + ".audit")
    subprocess.run(["objcopy", "--add-section", f"{name}={blob}", str(elf), str(out)], check=True)
    return out.read_bytes()


def _big_endian(tmp: Path, payload: bytes, bfd: str) -> bytes:
    """A big-endian ELF object written by objcopy whose only section holds ``payload``."""
    (tmp / "p.bin").write_bytes(payload)
    out = tmp / f"p-{bfd}.o"
    subprocess.run(
        [
            "objcopy",
            "-I",
            "binary",
            "-O",
            bfd,
            "--rename-section",
            ".data=.dep-v0",
            str(tmp / "p.bin"),
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def _analyze(files: dict[str, bytes], ctx: Context | None = None) -> AnalyzerResult:
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return RustBinaryAnalyzer().analyze(lf, ctx or Context())


def test_crates_io_packages_from_linked_executable(tmp_path: Path) -> None:
    """Only ``crates.io`` crates are reported (build deps included); the local root, git and
    alternative-registry crates are not; type cargo, ecosystem crates.io, purl, owner."""
    data = _with_section(_gcc(tmp_path), zlib.compress(AUDIT_JSON))
    ctx = Context(owners={"usr/bin/rg": "ripgrep"})
    res = _analyze({"usr/bin/rg": data}, ctx)
    assert res.notes == []
    assert [(p.name, p.version) for p in res.packages] == EXPECTED
    p = res.packages[0]
    assert (p.type, p.ecosystem, p.purl) == ("cargo", "crates.io", "pkg:cargo/memchr@2.7.4")
    assert (p.layer, p.path, p.owner) == (LAYER, "usr/bin/rg", "ripgrep")


@pytest.mark.parametrize("form", ["elf32-little", "elf32-big", "elf64-big"])
def test_section_headers_in_every_class_and_byte_order(tmp_path: Path, form: str) -> None:
    """ELF32 and ELF64, little- and big-endian section tables are all read."""
    payload = zlib.compress(AUDIT_JSON)
    if form == "elf32-little":
        data = _with_section(_gcc(tmp_path, "-m32", "-c"), payload)
        assert data[4] == 1 and data[5] == 1
    else:
        data = _big_endian(tmp_path, payload, form)
        assert data[5] == 2 and data[4] == (1 if "32" in form else 2)
    assert read_elf_section(data, ".dep-v0") == payload
    assert [(p.name, p.version) for p in _analyze({"bin/x": data}).packages] == EXPECTED


def test_elf_without_section_and_non_elf_are_silent(tmp_path: Path) -> None:
    """A plain ELF (no cargo-auditable) and a script give nothing and no note."""
    elf = _gcc(tmp_path).read_bytes()
    assert read_elf_section(elf, ".dep-v0") is None
    res = _analyze({"usr/bin/c": elf, "usr/bin/s": b"#!/bin/sh\n"})
    assert res.packages == [] and res.notes == []


def test_bad_section_contents_are_notes(tmp_path: Path) -> None:
    """Not zlib, zlib of non-JSON, JSON of the wrong shape, and a zlib bomb past the 8 MiB
    limit each give a note for that file, never an exception."""
    elf = _gcc(tmp_path)
    cases = {
        "bin/notzlib": b"this is not zlib",
        "bin/notjson": zlib.compress(b"\x00\x01garbage"),
        "bin/shape": zlib.compress(b'{"packages":[{"name":1}]}'),
        "bin/bomb": zlib.compress(b'{"packages":[]}' + b" " * (MAX_JSON + 10)),
    }
    files = {k: _with_section(elf, v) for k, v in cases.items()}
    res = _analyze(files)
    assert res.packages == []
    assert sorted(n.split(":")[0] for n in res.notes) == sorted(cases)
    assert any("inflates past" in n for n in res.notes)


def test_truncated_elf_never_raises(tmp_path: Path) -> None:
    """Cutting a real ELF anywhere gives packages, nothing, or a note; ``read_elf_section``
    raises only its own error."""
    data = _with_section(_gcc(tmp_path), zlib.compress(AUDIT_JSON))
    for cut in [*range(0, 128, 5), *range(len(data) - 2048, len(data), 61)]:
        _analyze({"usr/bin/x": data[:cut]})
        with contextlib.suppress(RustAuditError):
            read_elf_section(data[:cut], ".dep-v0")


def test_wants_same_locations_as_go() -> None:
    """Executable locations only, at the 256 MiB cap."""
    az = RustBinaryAnalyzer()
    assert az.wants("usr/local/bin/rg") == SIZE_CAP
    assert az.wants("usr/lib/x86_64-linux-gnu/libz.so.1") is None


def _streamed(data: bytes, size: int, path: str = "usr/bin/x") -> FileFacts | None:
    reader = RustBinaryAnalyzer().open(path, len(data), SIZE_CAP)
    for pos in range(0, len(data), size):
        if not reader.feed(data[pos : pos + size]):
            break
    return reader.close()


@pytest.mark.parametrize("size", [1, 5, 64, 4096, 1 << 20])
def test_streamed_in_any_pieces_reads_the_section_by_name(tmp_path: Path, size: int) -> None:
    """Fed in pieces of any size, the streaming reader finds what ``read_elf_section`` finds
    by name in the whole file: the crates of every class and byte order, nothing for a
    plain ELF or a script, and a note (no package) for each kind of bad contents."""
    payload = zlib.compress(AUDIT_JSON)
    elf = _gcc(tmp_path)
    good = {
        "bin/linked": _with_section(elf, payload),
        "bin/m32": _with_section(_gcc(tmp_path, "-m32", "-c"), payload),
        "bin/be32": _big_endian(tmp_path, payload, "elf32-big"),
        "bin/be64": _big_endian(tmp_path, payload, "elf64-big"),
    }
    silent = {"bin/plain": elf.read_bytes(), "bin/script": b"#!/bin/sh\n"}
    bad = {
        "bin/notzlib": _with_section(elf, b"this is not zlib"),
        "bin/shape": _with_section(elf, zlib.compress(b'{"packages":[{"name":1}]}')),
        "bin/bomb": _with_section(elf, zlib.compress(b'{"packages":[]}' + b" " * (MAX_JSON + 10))),
    }
    for path, data in good.items():
        assert read_elf_section(data, ".dep-v0") == payload, path
        facts = _streamed(data, size, path)
        assert facts is not None and facts.notes == (), path
        assert [(p.name, p.version) for p in facts.packages] == EXPECTED, path
    for path, data in silent.items():
        assert _streamed(data, size, path) is None, path
    for path, data in bad.items():
        assert read_elf_section(data, ".dep-v0") is not None, path
        facts = _streamed(data, size, path)
        assert facts is not None and facts.packages == () and len(facts.notes) == 1, path
        assert facts.notes[0].startswith(f"{path}: "), path


def test_a_decoy_stream_before_the_section_is_not_taken_for_it(tmp_path: Path) -> None:
    """Another zlib stream of JSON in the file (here: a second section) is inflated too,
    but only the one where the section named ``.dep-v0`` starts is read."""
    decoy = zlib.compress(b'{"packages":[{"name":"evil","version":"6.6.6","source":"crates.io"}]}')
    elf = _gcc(tmp_path)
    first = tmp_path / "first"
    first.write_bytes(_with_section(elf, decoy, name=".other"))
    data = _with_section(first, zlib.compress(AUDIT_JSON))
    assert data.find(decoy) >= 0
    facts = _streamed(data, 4096)
    assert facts is not None
    assert [(p.name, p.version) for p in facts.packages] == EXPECTED
