"""Go binaries → modules and toolchain: real binaries built by the Go toolchain at test time.

The fixtures are built by ``go build`` offline (``GOPROXY=off``; dependencies vendored or
replaced by a local directory) into a cache directory under the system temp dir, keyed by the
sources and ``go version``, so only the first run pays for the builds (≈ 15 s cold). ``go
version -m`` — the Go toolchain's own reader — is the oracle the parser is checked against.
The pre-1.18 pointer layout cannot be produced by the Go 1.19 here, so it is produced by
gcc from C that lays out the same structure (and ``go version -m`` reads it, proving the
layout is the real one).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from regsweep.crawler.analyzers.gobinary import (
    MAGIC,
    SIZE_CAP,
    GoBinaryAnalyzer,
    GoBuildInfoError,
    NoBuildInfo,
    _facts,
    _stdlib_version,
    parse_buildinfo,
)
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, FileFacts, LayerFile

LAYER = "sha256:" + "cd" * 32
GO = shutil.which("go")
needs_go = pytest.mark.skipif(GO is None, reason="go toolchain (golang-go) not installed")

_MAIN_DIR_REPLACE = """package main

import (
\t"fmt"

\t"example.com/dep"
)

func main() { fmt.Println(dep.Hello()) }
"""
_MAIN_VENDOR = """package main

import (
\t"example.com/old"
\t"example.com/plain"
)

func main() { println(old.A() + plain.B()) }
"""
SOURCES: dict[str, str] = {
    "dep/go.mod": "module example.com/dep\n\ngo 1.19\n",
    "dep/dep.go": 'package dep\n\nfunc Hello() string { return "hello" }\n',
    "app/go.mod": (
        "module example.com/app\n\ngo 1.19\n\nrequire example.com/dep v1.2.3\n\n"
        "replace example.com/dep => ../dep\n"
    ),
    "app/main.go": _MAIN_DIR_REPLACE,
    "app2/go.mod": (
        "module example.com/app2\n\ngo 1.19\n\nrequire (\n\texample.com/old v1.0.0\n"
        "\texample.com/plain v0.4.0\n)\n\n"
        "replace example.com/old v1.0.0 => example.com/new v1.1.0\n"
    ),
    "app2/vendor/modules.txt": (
        "# example.com/old v1.0.0 => example.com/new v1.1.0\n## explicit; go 1.19\n"
        "example.com/old\n# example.com/plain v0.4.0\n## explicit; go 1.19\n"
        "example.com/plain\n# example.com/old v1.0.0 => example.com/new v1.1.0\n"
    ),
    "app2/vendor/example.com/old/a.go": "package old\n\nfunc A() int { return 1 }\n",
    "app2/vendor/example.com/plain/b.go": "package plain\n\nfunc B() int { return 2 }\n",
    "app2/main.go": _MAIN_VENDOR,
}
#: (output name, source dir, GOOS, GOARCH, -mod)
BUILDS = [
    ("dirreplace-linux-amd64", "app", "linux", "amd64", "mod"),
    ("vendor-linux-amd64", "app2", "linux", "amd64", "vendor"),
    ("vendor-windows-amd64.exe", "app2", "windows", "amd64", "vendor"),
    ("vendor-linux-s390x", "app2", "linux", "s390x", "vendor"),
]
OLD_FORMAT_C = r"""
/* The Go <= 1.17 buildinfo layout: magic, pointer size, flags (0: little-endian, pointers),
   then the addresses of two Go string headers {data, len}. */
struct gostring { const char *data; unsigned long len; };
static const char version[] = "go1.16.15";
#define SENT_A "\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
#define SENT_B "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"
static const char modinfo[] = SENT_A
    "path\texample.com/old\n"
    "mod\texample.com/old\tv0.9.0\th1:abc=\n"
    "dep\tgolang.org/x/text\tv0.3.5\th1:def=\n"
    SENT_B;
static const struct gostring vs = {version, sizeof version - 1};
static const struct gostring ms = {modinfo, sizeof modinfo - 1};
struct buildinfo { char magic[14]; unsigned char ptrsize; unsigned char flags;
                   const struct gostring *v, *m; };
__attribute__((used, aligned(16), section(".go.buildinfo")))
const struct buildinfo go_buildinfo = {"\xff Go buildinf:", sizeof(void *), 0, &vs, &ms};
int main(void) { return 0; }
"""


#: The Go <= 1.17 layout as Go's linker lays it out: the buildinfo first in the data segment,
#: the string headers after it (in .noptrdata, 100 KB after it and 200 KB before the end of
#: the file: a large chunk holds them far from its end), the strings
#: themselves in .rodata before it. ``go version -m`` reads it (checked below).
OLD_FORMAT_AFTER_C = r"""
/* The Go <= 1.17 layout as the Go linker lays it out: the buildinfo first in the data
   segment, the string headers after it (here 100 KB after it, with 200 KB more data after
   them), the strings before it. */
struct gostring { const char *data; unsigned long len; };
static const char version[] = "go1.16.15";
#define SENT_A "\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
#define SENT_B "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"
static const char modinfo[] = SENT_A
    "path\texample.com/old\n"
    "mod\texample.com/old\tv0.9.0\th1:abc=\n"
    "dep\tgolang.org/x/text\tv0.3.5\th1:def=\n"
    SENT_B;
extern struct gostring vs, ms;
struct buildinfo { char magic[14]; unsigned char ptrsize; unsigned char flags;
                   const struct gostring *v, *m; };
__attribute__((used, aligned(16), section(".go.buildinfo")))
const struct buildinfo go_buildinfo = {"\xff Go buildinf:", sizeof(void *), 0, &vs, &ms};
__attribute__((used, section(".noptrdata"))) char pad[100000] = {1};
__attribute__((used, section(".noptrdata"))) struct gostring vs = {version, sizeof version - 1};
__attribute__((used, section(".noptrdata"))) struct gostring ms = {modinfo, sizeof modinfo - 1};
__attribute__((used, section(".noptrdata"))) char pad2[200000] = {2};
int main(void) { return pad[0] + pad2[0]; }
"""
OLD_PACKAGES = [
    ("stdlib", "v1.16.15"),
    ("example.com/old", "v0.9.0"),
    ("golang.org/x/text", "v0.3.5"),
]


def _go_env(cache: Path, mod: str, goos: str, goarch: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cache),
        "GOPATH": str(cache / "gopath"),
        "GOCACHE": str(cache / "gocache"),
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": f"-mod={mod}",
        "CGO_ENABLED": "0",
        "GOOS": goos,
        "GOARCH": goarch,
    }


@pytest.fixture(scope="session")
def go_bins() -> dict[str, Path]:
    """The BUILDS, built once per sources + toolchain and kept in the temp dir."""
    assert GO is not None
    ver = subprocess.run([GO, "version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256((ver + repr(sorted(SOURCES.items())) + repr(BUILDS)).encode())
    cache = Path(tempfile.gettempdir()) / f"regsweep-go-fixtures-{key.hexdigest()[:16]}"
    out = {name: cache / "bin" / name for name, *_ in BUILDS}
    if all(p.exists() for p in out.values()):
        return out
    src = cache / "src"
    for rel, text in SOURCES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    (cache / "bin").mkdir(parents=True, exist_ok=True)
    for name, d, goos, goarch, mod in BUILDS:
        tmp = cache / "bin" / f".{name}.tmp"
        subprocess.run(
            [GO, "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp), "."],
            cwd=src / d,
            env=_go_env(cache, mod, goos, goarch),
            check=True,
        )
        tmp.replace(cache / "bin" / name)  # atomic: a concurrent run never sees half a file
    return out


def _oracle(path: Path) -> tuple[str, list[tuple[str, ...]]]:
    """``go version -m``: the toolchain version and the mod/dep/=> lines."""
    assert GO is not None
    text = subprocess.run([GO, "version", "-m", str(path)], capture_output=True, text=True)
    lines = text.stdout.splitlines()
    version = lines[0].split(": ", 1)[1]
    rows = [tuple(x.strip().split("\t")) for x in lines[1:]]
    return version, [r for r in rows if r[0] in ("mod", "dep", "=>")]


def _analyze(files: dict[str, bytes], ctx: Context | None = None) -> AnalyzerResult:
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return GoBinaryAnalyzer().analyze(lf, ctx or Context())


@needs_go
def test_vendored_binary_matches_go_version_m(go_bins: dict[str, Path]) -> None:
    """Toolchain, main module and deps agree with ``go version -m``; a versioned ``=>``
    replacement is reported as the module actually built in."""
    path = go_bins["vendor-linux-amd64"]
    info = parse_buildinfo(path.read_bytes())
    go_ver, rows = _oracle(path)
    assert info.go_version == go_ver
    assert rows[0][:3] == ("mod", "example.com/app2", "(devel)")
    assert info.main == ("example.com/app2", "(devel)")
    assert info.deps == [("example.com/new", "v1.1.0"), ("example.com/plain", "v0.4.0")]


@needs_go
def test_package_records_for_real_binary(go_bins: dict[str, Path]) -> None:
    """Packages: ``stdlib`` at the toolchain version with a ``v``, deps as in go.mod, type
    go, ecosystem Go, purl, layer, path and owner; a ``(devel)`` main module is left out."""
    data = go_bins["vendor-linux-amd64"].read_bytes()
    go_ver, _ = _oracle(go_bins["vendor-linux-amd64"])
    ctx = Context(owners={"usr/bin/app2": "app2-deb"})
    res = _analyze({"usr/bin/app2": data}, ctx)
    assert res.notes == []
    got = [(p.name, p.version, p.purl) for p in res.packages]
    assert got == [
        ("stdlib", "v" + go_ver.removeprefix("go"), f"pkg:golang/stdlib@v{go_ver[2:]}"),
        ("example.com/new", "v1.1.0", "pkg:golang/example.com/new@v1.1.0"),
        ("example.com/plain", "v0.4.0", "pkg:golang/example.com/plain@v0.4.0"),
    ]
    assert {(p.type, p.ecosystem, p.layer, p.path, p.owner) for p in res.packages} == {
        ("go", "Go", LAYER, "usr/bin/app2", "app2-deb")
    }


@needs_go
def test_directory_replacement_keeps_required_version(go_bins: dict[str, Path]) -> None:
    """``=> ../dep (devel)`` has no version: the dependency is reported as required."""
    path = go_bins["dirreplace-linux-amd64"]
    _, rows = _oracle(path)
    assert ("=>", "../dep", "(devel)") in [r[:3] for r in rows]
    assert parse_buildinfo(path.read_bytes()).deps == [("example.com/dep", "v1.2.3")]


@needs_go
@pytest.mark.parametrize("name", ["vendor-windows-amd64.exe", "vendor-linux-s390x"])
def test_pe_and_big_endian_binaries(go_bins: dict[str, Path], name: str) -> None:
    """The inline (1.18+) layout reads the same from a PE file and a big-endian ELF."""
    info = parse_buildinfo(go_bins[name].read_bytes())
    assert info.deps == [("example.com/new", "v1.1.0"), ("example.com/plain", "v0.4.0")]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("source", [OLD_FORMAT_C, OLD_FORMAT_AFTER_C], ids=["before", "after"])
def test_pre_118_pointer_layout(tmp_path: Path, source: str) -> None:
    """The Go ≤ 1.17 layout (pointers to string headers, mapped through PT_LOAD segments),
    with the string headers before the buildinfo or, as Go's linker puts them, 200 KB after
    it: the toolchain version, a versioned main module and its deps; ``go version -m``
    agrees when available."""
    (tmp_path / "bi.c").write_text(source)
    exe = tmp_path / "old"
    subprocess.run(
        ["gcc", "-O0", "-fno-toplevel-reorder", "-no-pie", "-o", str(exe), str(tmp_path / "bi.c")],
        check=True,
    )
    if GO is not None:
        assert _oracle(exe) == (
            "go1.16.15",
            [
                ("mod", "example.com/old", "v0.9.0", "h1:abc="),
                ("dep", "golang.org/x/text", "v0.3.5", "h1:def="),
            ],
        )
    res = _analyze({"app/old": exe.read_bytes()})
    assert [(p.name, p.version) for p in res.packages] == OLD_PACKAGES
    assert res.notes == []


def test_wants_executable_locations_only() -> None:
    """bin/sbin anywhere; extension-less files at the top, in app roots and one level below
    app/ and opt/; never libraries, files with extensions, or deep data trees."""
    az = GoBinaryAnalyzer()
    for p in (
        "usr/bin/kubectl",
        "bin/sh",
        "usr/local/sbin/x.bin",
        "opt/tool/bin/tool",
        "manager",
        "ko-app/server",
        "app/server",
        "app/svc/server",
        "opt/product/agent",
        "usr/local/coredns",
    ):
        assert az.wants(p) == SIZE_CAP, p
    for p in (
        "usr/lib/libc.so.6",
        "usr/share/doc/x",
        "etc/passwd",
        "app/config.yaml",
        "usr/lib/binfoo",
        "cabin/x",
        "x.txt",
        "usr/bin/",
        "opt/product/share/LICENSE",
        "usr/local/share/man/README",
        "app/a/b/c",
    ):
        assert az.wants(p) is None, p


def test_non_go_and_damaged_files() -> None:
    """Scripts, non-Go ELF files and an unaligned magic (a string constant in a program that
    reads Go binaries) are skipped silently; a damaged buildinfo is a note."""
    magic = b"\xff Go buildinf:"
    elf = b"\x7fELF" + b"\0" * 60
    # Inline-format header claiming a string longer than the file.
    damaged = elf + b"\0" * (64 - len(elf)) + magic + b"\x08\x02" + b"\0" * 16 + b"\xff\x7f"
    # An unaligned magic (a string constant in some other program) is not buildinfo.
    unaligned = elf + b"\0" * 3 + magic + b"\x08\x02" + b"\0" * 40
    res = _analyze(
        {
            "usr/bin/script": b"#!/bin/sh\necho hi\n",
            "usr/bin/cprog": elf + b"\0" * 100,
            "usr/bin/damaged": damaged,
            "usr/bin/unaligned": unaligned,
        }
    )
    assert res.packages == []
    assert [n.split(":")[0] for n in res.notes] == ["usr/bin/damaged"]
    with pytest.raises(NoBuildInfo):
        parse_buildinfo(unaligned)
    with pytest.raises(GoBuildInfoError):
        parse_buildinfo(damaged)


@needs_go
def test_truncated_real_binary_never_raises(go_bins: dict[str, Path]) -> None:
    """Every prefix cut of a real binary around its buildinfo gives packages or a note."""
    data = go_bins["vendor-linux-amd64"].read_bytes()
    at = data.find(b"\xff Go buildinf:")
    for cut in range(at, at + 400, 7):
        res = _analyze({"usr/bin/x": data[:cut]})
        assert res.packages or res.notes or cut < at + 14


@pytest.mark.parametrize(
    ("go", "expected"),
    [
        ("go1.21.3", "v1.21.3"),
        ("go1.21", "v1.21.0"),
        ("go1.21rc2", "v1.21.0-rc.2"),
        ("go1.18beta1", "v1.18.0-beta.1"),
        ("go1.22.0 X:boringcrypto", "v1.22.0"),
        ("devel go1.23-abc", None),
        ("", None),
    ],
)
def test_stdlib_version_spelling(go: str, expected: str | None) -> None:
    """Toolchain strings become semver the matcher can order; unknown ones give None."""
    assert _stdlib_version(go) == expected


def _streamed(data: bytes, sizes: list[int], path: str = "usr/bin/x") -> FileFacts | None:
    """The reader's facts when ``data`` arrives in pieces of ``sizes`` (cycled)."""
    cuts, pos, i = [], 0, 0
    while pos < len(data):
        pos += sizes[i % len(sizes)]
        cuts.append(min(pos, len(data)))
        i += 1
    return _fed(data, cuts, path)


def _fed(data: bytes, cuts: list[int], path: str = "usr/bin/x") -> FileFacts | None:
    """The reader's facts when ``data`` arrives cut at the (sorted) offsets ``cuts``."""
    reader = GoBinaryAnalyzer().open(path, len(data), SIZE_CAP)
    start = 0
    for end in [*cuts, len(data)]:
        if end > start and not reader.feed(data[start:end]):
            break
        start = max(start, end)
    return reader.close()


def _whole(data: bytes, path: str = "usr/bin/x") -> FileFacts | None:
    """The oracle: ``parse_buildinfo`` on the whole file in memory (the buffered parser,
    checked against ``go version -m`` above), made into the same facts."""
    try:
        info = parse_buildinfo(data)
    except NoBuildInfo:
        return None
    except GoBuildInfoError as exc:
        return FileFacts(notes=(f"{path}: {exc}",))
    return _facts(path, info)


_SIZES = [[4096], [65536, 3], [1 << 20], [100_003, 17, 1]]


def _gcc(tmp_path: Path, name: str, source: str, *flags: str) -> bytes:
    (tmp_path / f"{name}.c").write_text(source)
    exe = tmp_path / name
    subprocess.run(
        ["gcc", "-O0", *flags, "-no-pie", "-o", str(exe), str(tmp_path / f"{name}.c")],
        check=True,
    )
    return exe.read_bytes()


def _real_binaries(go_bins: dict[str, Path], tmp_path: Path) -> dict[str, bytes]:
    out = {name: p.read_bytes() for name, p in go_bins.items()}
    out["pre-1.18 layout"] = _gcc(tmp_path, "old", OLD_FORMAT_C)
    # The same, with 256 KiB of read-only data in front: the string headers (in
    # .data.rel.ro, just before the buildinfo here) lie past the start the reader keeps.
    out["pre-1.18 layout, padded"] = _gcc(
        tmp_path,
        "padded",
        OLD_FORMAT_C + "__attribute__((used)) static const char pad[262144] = {1};\n",
    )
    assert out["pre-1.18 layout, padded"].find(MAGIC) > 256 << 10
    # The linker's own layout: string headers 200 KB after the magic, strings before it.
    out["pre-1.18 layout, headers after"] = after = _gcc(
        tmp_path, "after", OLD_FORMAT_AFTER_C, "-fno-toplevel-reorder"
    )
    assert after.find(b"go1.16.15") < after.find(MAGIC) < len(after) - 250_000
    assert GO is not None
    # The toolchain itself: a large real Go binary (modules, cgo-free, stripped or not).
    out["go"] = Path(os.path.realpath(GO)).read_bytes()
    out["ls (not Go)"] = Path("/bin/ls").read_bytes()
    return out


def _same(facts: FileFacts | None, whole: FileFacts | None) -> bool:
    return facts == whole


@needs_go
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("sizes", _SIZES, ids=str)
def test_streamed_in_any_pieces_equals_reading_the_whole_file(
    go_bins: dict[str, Path], tmp_path: Path, sizes: list[int]
) -> None:
    """The streaming reader, fed real binaries (every fixture, the pre-1.18 layout, the Go
    toolchain, a non-Go ELF) in pieces of any size (the magic and the strings cut by chunk
    boundaries), finds exactly what ``parse_buildinfo`` finds in the whole file."""
    for name, data in _real_binaries(go_bins, tmp_path).items():
        assert _streamed(data, sizes) == _whole(data), name
        # And as one piece: how ``Analyzer.analyze`` and a small file feed it.
        assert _streamed(data, [len(data)]) == _whole(data), name
        if name.startswith("pre-1.18"):
            found = _whole(data)
            assert found is not None
            assert [(p.name, p.version) for p in found.packages] == OLD_PACKAGES, name


@needs_go
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_streamed_with_every_cut_around_the_buildinfo(
    go_bins: dict[str, Path], tmp_path: Path
) -> None:
    """A chunk boundary at every offset around the magic, the header and the first string
    (1-byte pieces through them), and the pre-1.18 fixture fed one byte at a time: the
    same answer as the whole file."""
    binaries = _real_binaries(go_bins, tmp_path)
    old = binaries.pop("pre-1.18 layout")
    assert _same(_streamed(old, [1]), _whole(old))
    after = binaries["pre-1.18 layout, headers after"]
    assert _same(_streamed(after, [7]), _whole(after))
    for name, data in binaries.items():
        at = data.find(MAGIC)
        while at >= 0 and at % 16:
            at = data.find(MAGIC, at + 1)
        if at < 0:
            continue
        whole = _whole(data)
        for k in range(-20, 60):
            ones = list(range(at + k, at + k + 48))
            assert _same(_fed(data, [at + k - 1, *ones]), whole), (name, k)
        # The magic and everything after it in one large chunk: what the buildinfo points
        # at may lie anywhere in that chunk, far from its end.
        for cut in (at - 1, at, at + 1, at + 16):
            assert _same(_fed(data, [cut]), whole), (name, cut)


def test_streaming_holds_a_bounded_window_of_a_huge_executable() -> None:
    """A 256 MiB ELF stream with the buildinfo at its end is searched with a few MiB held
    at once (traced allocations), and the buildinfo is found."""
    info = (
        b"\xff Go buildinf:\x08\x02" + bytes(16) + b"\x08go1.21.3" + bytes([12]) + b"path\tx\nmod\t"
    )
    head = b"\x7fELF" + bytes(60)
    body = bytes(range(256)) * 4096  # 1 MiB, no magic in it
    reader = GoBinaryAnalyzer().open("usr/bin/big", 0, SIZE_CAP)
    tracemalloc.start()
    try:
        assert reader.feed(head + body[len(head) :])
        for _ in range(255):
            assert reader.feed(body)
        reader.feed(info + bytes(-len(info) % 16))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    facts = reader.close()
    assert facts is not None and [(p.name, p.version) for p in facts.packages] == [
        ("stdlib", "v1.21.3")
    ]
    assert peak < 4 << 20


def test_candidates_for_the_old_layout_are_bounded_per_match() -> None:
    """An executable made of nothing but ``go1.`` strings and module info start sentinels
    (64 MiB of them) keeps at most 1,024 version candidates and 16 module infos of at most
    1 MiB each: memory stays bounded (traced), and the bounds hold within one chunk."""
    start = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
    body = (b"go1." * 3 + start) * ((1 << 20) // 28)
    reader = GoBinaryAnalyzer().open("usr/bin/hostile", 0, SIZE_CAP)
    tracemalloc.start()
    try:
        assert reader.feed(b"\x7fELF" + body)
        for _ in range(63):
            assert reader.feed(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reader.close() is None
    assert peak < 24 << 20
