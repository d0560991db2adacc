"""The dpkg analyzer on real Debian status files, file lists and distroless status.d."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.dpkg import (
    _FIELD,
    MAX_PACKAGES,
    MAX_PARAGRAPH,
    STATUS_CAP,
    DpkgAnalyzer,
    parse_paragraphs,
)
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    Context,
    FileFacts,
    FileReader,
    LayerFile,
)
from regsweep.matcher.records import OsInfo
from tests import paths

DATA = paths.DATA / "crawler" / "dpkg"
STATUS = (DATA / "status").read_bytes()
BASE, TOP = "sha256:" + "b" * 64, "sha256:" + "c" * 64
DEBIAN_12 = Context(
    os=OsInfo(family="debian", name="Debian GNU/Linux", version="12"), ecosystem="Debian:12"
)


def _files(paths: dict[str, bytes], layer: str = TOP) -> dict[str, LayerFile]:
    return {p: LayerFile(path=p, data=d, layer=layer) for p, d in paths.items()}


def _lists() -> dict[str, LayerFile]:
    return _files(
        {f"var/lib/dpkg/info/{p.name}": p.read_bytes() for p in (DATA / "info").iterdir()}, BASE
    )


def _analyze(files: dict[str, LayerFile], ctx: Context = DEBIAN_12) -> AnalyzerResult:
    return DpkgAnalyzer().analyze(files, ctx)


def _paragraphs(text: bytes) -> list[bytes]:
    return [p for p in text.split(b"\n\n") if p.strip()]


def _paragraph(name: bytes) -> bytes:
    for para in STATUS.split(b"\n\n"):
        if para.startswith(b"Package: " + name + b"\n"):
            return para + b"\n"
    raise AssertionError(name)


def test_real_status_packages_sources_and_versions() -> None:
    """Invariant: binary name and version as installed; the source from ``Source: name
    (version)``, ``Source: name`` (source version = binary version) or no Source at all."""
    r = _analyze(_files({"var/lib/dpkg/status": STATUS}))
    assert r.notes == []
    got = {p.name: (p.version, p.source_name, p.source_version) for p in r.packages}
    assert got == {
        "base-files": ("12.4+deb12u11", "base-files", "12.4+deb12u11"),
        "bash": ("5.2.15-2+b8", "bash", "5.2.15-2"),
        "bsdutils": ("1:2.38.1-5+deb12u3", "util-linux", "2.38.1-5+deb12u3"),
        "libc6": ("2.36-9+deb12u14", "glibc", "2.36-9+deb12u14"),
        "libgcc-s1": ("12.2.0-14+deb12u1", "gcc-12", "12.2.0-14+deb12u1"),
        "libssl3": ("3.0.19-1~deb12u2", "openssl", "3.0.19-1~deb12u2"),
        "openssl": ("3.0.19-1~deb12u2", "openssl", "3.0.19-1~deb12u2"),
        "python3-yaml": ("6.0-3+b2", "pyyaml", "6.0-3"),
    }
    for p in r.packages:
        assert (p.type, p.ecosystem, p.path, p.owner) == (
            "deb",
            "Debian:12",
            "var/lib/dpkg/status",
            None,
        )


def test_purl_follows_the_spec() -> None:
    """Invariant: purls are canonical: ``+`` percent-encoded, the epoch colon kept,
    qualifiers sorted (arch, distro)."""
    r = _analyze(_files({"var/lib/dpkg/status": STATUS}))
    purls = {p.name: p.purl for p in r.packages}
    assert (
        purls["bsdutils"]
        == "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12"
    )
    assert purls["libssl3"] == "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12"


def test_file_lists_give_owners_without_leading_slash() -> None:
    """Invariant: every path of ``info/<pkg>[:arch].list`` maps to the package name (arch
    stripped), relative to the root, the ``/.`` root entry dropped."""
    r = _analyze(_lists())
    assert r.packages == []
    assert r.owners["usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA"] == (
        "python3-yaml"
    )
    assert r.owners["usr/lib/python3/dist-packages/PyYAML-6.0.dist-info"] == "python3-yaml"
    assert r.owners["usr/lib/x86_64-linux-gnu/libssl.so.3"] == "libssl3"
    assert r.owners["bin/bash"] == "bash"
    assert "." not in r.owners and "" not in r.owners
    assert not any(p.startswith("/") for p in r.owners)
    expected = set()
    for f in (DATA / "info").iterdir():
        expected |= {ln.lstrip("/") for ln in f.read_text().splitlines() if ln not in ("/.", "")}
    assert set(r.owners) == expected


def test_layer_is_the_one_that_wrote_the_package_file_list() -> None:
    """Invariant: a package carries the layer of its own ``.list`` (written when it was
    installed), not the layer of the shared status file that every install rewrites."""
    files = {**_lists(), **_files({"var/lib/dpkg/status": STATUS}, TOP)}
    layers = {p.name: p.layer for p in _analyze(files).packages}
    assert layers["libssl3"] == layers["python3-yaml"] == layers["bash"] == BASE
    assert layers["libc6"] == layers["openssl"] == TOP


@pytest.mark.parametrize(
    ("status", "installed", "noted"),
    [
        (b"install ok installed", True, False),
        (b"hold ok installed", True, False),
        (b"deinstall ok installed", True, False),
        (b"install ok triggers-pending", True, False),
        (b"deinstall ok config-files", False, False),
        (b"purge ok not-installed", False, False),
        (b"install ok half-installed", False, False),
        (b"install ok unpacked", False, True),
        (b"install reinstreq half-configured", False, True),
        (b"install ok", False, True),
        (b"bogus ok installed", False, True),
    ],
)
def test_status_decides_installed(status: bytes, installed: bool, noted: bool) -> None:
    """Invariant: a package counts when its files are on disk and configured (state
    ``installed`` / ``triggers-*``), whatever the admin wants next; config-files and
    not-installed entries are silently absent; unconfigured or malformed ones are noted."""
    para = _paragraph(b"openssl").replace(b"Status: install ok installed", b"Status: " + status)
    r = _analyze(_files({"var/lib/dpkg/status": para}))
    assert bool(r.packages) is installed
    assert bool(r.notes) is noted


def test_malformed_paragraph_is_skipped_and_the_rest_survive() -> None:
    """Invariant: one broken paragraph costs that paragraph only, with a note naming it."""
    broken = [
        _paragraph(b"bash").replace(b"Version:", b"Version 5.2 no colon\nVersion:"),
        b" continuation first\n" + _paragraph(b"libc6"),
        _paragraph(b"openssl") + b"Version: 9.9\n",  # duplicate field
        _paragraph(b"libssl3").replace(b"Version: 3.0.19-1~deb12u2\n", b""),
        _paragraph(b"python3-yaml").replace(b"Package: python3-yaml", b"Package: bad name!"),
    ]
    good = _paragraph(b"base-files")
    text = b"\n\n" + b"\n".join([*broken, good])  # leading blank lines count too
    r = _analyze(_files({"var/lib/dpkg/status": text}))
    assert [p.name for p in r.packages] == ["base-files"]
    assert len(r.notes) == len(broken)
    # Each note names the line its paragraph starts on, and the line that is wrong.
    lines = text.split(b"\n")
    starts = [int(n.split("paragraph at line ")[1].split(":")[0]) for n in r.notes]
    assert [lines[s - 1][:9] for s in starts] == [
        b"Package: ",
        b" continua",
        b"Package: ",
        b"Package: ",
        b"Package: ",
    ]
    assert (
        "line " + str(starts[0] + text.split(b"\n")[starts[0] - 1 :].index(b"Version 5.2 no colon"))
        in r.notes[0]
    )


def test_multiline_fields_do_not_hide_later_fields() -> None:
    """Invariant: continuation lines (including `` .`` blank lines) stay in their field;
    a field after a multi-line value is still read."""
    para = _paragraph(b"libc6")
    head, _, rest = para.partition(b"Version: 2.36-9+deb12u14\n")
    moved = head + rest.rstrip(b"\n") + b"\nVersion: 2.36-9+deb12u14\n"
    r = _analyze(_files({"var/lib/dpkg/status": moved}))
    assert [(p.name, p.version) for p in r.packages] == [("libc6", "2.36-9+deb12u14")]
    fields = next(iter(parse_paragraphs(para.decode()))).fields
    assert fields["description"].startswith("GNU C Library: Shared libraries\n")


def test_distroless_status_d_and_md5sums() -> None:
    """Invariant: distroless ``status.d/<pkg>`` entries count without a Status field, carry
    their own file's layer, and ``status.d/<pkg>.md5sums`` gives owners."""
    para = b"".join(
        ln + b"\n" for ln in _paragraph(b"libssl3").splitlines() if not ln.startswith(b"Status:")
    )
    md5 = (
        b"6a1de1fa2fa2b1a4b34c2b68b9c1dc7d  usr/lib/x86_64-linux-gnu/libssl.so.3\n"
        b"0d2b1b8b1c0e3e5a37f2b8a1b6f4a2c1  usr/share/doc/libssl3/changelog.Debian.gz\n"
    )
    files = {
        **_files({"var/lib/dpkg/status.d/libssl3": para}, BASE),
        **_files({"var/lib/dpkg/status.d/libssl3.md5sums": md5}, BASE),
        **_files({"var/lib/dpkg/status.d/base": _paragraph(b"base-files")}, TOP),
    }
    r = _analyze(files)
    assert {(p.name, p.layer, p.path) for p in r.packages} == {
        ("libssl3", BASE, "var/lib/dpkg/status.d/libssl3"),
        ("base-files", TOP, "var/lib/dpkg/status.d/base"),
    }
    assert r.owners == {
        "usr/lib/x86_64-linux-gnu/libssl.so.3": "libssl3",
        "usr/share/doc/libssl3/changelog.Debian.gz": "libssl3",
    }


def test_status_without_status_field_is_noted() -> None:
    """Invariant: in the main status file (unlike status.d) a missing Status is malformed."""
    para = b"".join(
        ln + b"\n" for ln in _paragraph(b"bash").splitlines() if not ln.startswith(b"Status:")
    )
    r = _analyze(_files({"var/lib/dpkg/status": para}))
    assert r.packages == [] and len(r.notes) == 1


def test_truncated_status_drops_only_the_cut_paragraph() -> None:
    """Invariant: a status file cut at the size cap yields every whole paragraph before the
    cut (no package with a half-read version) and a note."""
    cut = STATUS.index(b"Package: python3-yaml") + 40
    f = LayerFile(path="var/lib/dpkg/status", data=STATUS[:cut], layer=TOP, truncated=True)
    r = _analyze({f.path: f})
    names = [p.name for p in r.packages]
    assert names == ["base-files", "bash", "bsdutils", "libc6", "libgcc-s1", "libssl3", "openssl"]
    assert any("size cap" in n for n in r.notes)


def test_non_utf8_description_does_not_lose_the_package() -> None:
    """Invariant: Latin-1 bytes in a free-text field (old Maintainer/Description) do not
    cost the package: the fields used are ASCII."""
    para = _paragraph(b"openssl").replace(b"Secure Sockets Layer", b"S\xe9cure Sockets")
    r = _analyze(_files({"var/lib/dpkg/status": para}))
    assert [p.name for p in r.packages] == ["openssl"]


def test_unknown_os_leaves_ecosystem_empty_with_a_note() -> None:
    """Invariant: without an OS ecosystem, packages are inventoried but a note says they
    are not matched (the ecosystem is never guessed)."""
    r = _analyze(_files({"var/lib/dpkg/status": STATUS}), Context())
    assert r.packages and all(p.ecosystem is None for p in r.packages)
    assert r.packages[0].purl is not None and "distro=" not in r.packages[0].purl
    assert any("not matched" in n for n in r.notes)


def test_binary_garbage_is_a_note() -> None:
    """Invariant: binary data in place of the database is a note, never an exception."""
    r = _analyze(_files({"var/lib/dpkg/status": b"\x00\x01\x02" * 1000}))
    assert r.packages == [] and r.notes


def test_wants() -> None:
    """Invariant: the analyzer asks for the status database, status.d entries and
    md5sums, and ``info/*.list``; not for other info files or nested paths."""
    a = DpkgAnalyzer()
    assert a.wants("var/lib/dpkg/status") == 64 * 1024 * 1024
    assert a.wants("var/lib/dpkg/info/libc6:amd64.list")
    assert a.wants("var/lib/dpkg/status.d/libc6")
    assert a.wants("var/lib/dpkg/status.d/libc6.md5sums")
    assert a.wants("var/lib/dpkg/info/libc6:amd64.md5sums") is None
    assert a.wants("var/lib/dpkg/info/libc6:amd64.postinst") is None
    assert a.wants("var/lib/dpkg/status-old") is None
    assert a.wants("var/lib/dpkg/status.d/sub/x") is None


@given(st.binary(max_size=2048), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, truncated: bool) -> None:
    """Invariant: any bytes as status, status.d or list files give a result, never raise."""
    files = {
        p: LayerFile(path=p, data=data, layer=TOP, truncated=truncated)
        for p in (
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/x",
            "var/lib/dpkg/status.d/x.md5sums",
            "var/lib/dpkg/info/x.list",
        )
    }
    _analyze(files)


@given(st.lists(st.sampled_from(STATUS.split(b"\n")), max_size=60))
def test_shuffled_real_lines_never_raise(lines: list[bytes]) -> None:
    """Invariant: any arrangement of real status lines parses without raising, and every
    package reported has a non-empty name and version."""
    r = _analyze(_files({"var/lib/dpkg/status": b"\n".join(lines)}))
    assert all(p.name and p.version for p in r.packages)


@pytest.mark.oracle
@pytest.mark.skipif(
    shutil.which("dpkg-query") is None or not Path("/var/lib/dpkg/status").is_file(),
    reason="needs a dpkg-based machine",
)
def test_matches_dpkg_query_on_this_machine(tmp_path: Path) -> None:
    """Invariant (differential, dpkg-query is the reference): on this machine's whole
    database, the installed packages, versions, source names and source versions are
    exactly what dpkg itself reports, and every file-list path is owned.

    Both read one snapshot of the status file (``--admindir``), so an ``apt-get install``
    running beside the test cannot make them disagree.
    """
    root = Path("/var/lib/dpkg")
    status = (root / "status").read_bytes()
    (tmp_path / "info").mkdir()
    (tmp_path / "updates").mkdir()
    (tmp_path / "status").write_bytes(status)
    fmt = "${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n"
    out = subprocess.run(
        ["dpkg-query", f"--admindir={tmp_path}", "-W", "-f", fmt],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    want = []
    for line in out.splitlines():
        state, *rest = line.split("\t")
        if state in ("installed", "triggers-pending", "triggers-awaited"):
            want.append(tuple(rest))
    files = {"var/lib/dpkg/status": status}
    for f in (root / "info").glob("*.list"):
        files[f"var/lib/dpkg/info/{f.name}"] = f.read_bytes()
    r = _analyze(_files(files))
    got = [(p.name, p.version, p.source_name, p.source_version) for p in r.packages]
    # Sorted lists, not sets: a Multi-Arch: same package installed twice counts twice.
    assert sorted(got) == sorted(want)
    assert r.owners["usr/bin/dpkg"] == "dpkg"


@given(st.text(alphabet=": \t\n\r#-aZ.\x0c(é", max_size=200))
def test_fast_and_slow_paragraph_checks_agree(text: str) -> None:
    """Invariant: the C-level well-formedness check and the per-field walk that explains a
    rejection agree: every rejected paragraph gets a reason naming its line, and every
    accepted one has fields whose names are valid deb822 field names."""
    for para in parse_paragraphs(text):
        if para.error is not None:
            assert para.error.startswith("line "), para.error
        else:
            assert para.fields
            assert all(_FIELD.fullmatch(k) for k in para.fields), para.fields


def test_a_nul_byte_in_one_paragraph_skips_that_paragraph_only() -> None:
    """One damaged stanza (a NUL byte inside it) is skipped with a note; every other
    package, the vulnerable ones among them, is still found."""
    paragraphs = STATUS.split(b"\n\n")
    whole = _analyze(_files({"var/lib/dpkg/status": STATUS}))
    damaged = paragraphs[:]
    damaged[1] = damaged[1].replace(b"\nVersion:", b"\x00\nVersion:", 1)
    r = _analyze(_files({"var/lib/dpkg/status": b"\n\n".join(damaged)}))
    assert len(r.packages) == len(whole.packages) - 1 > 1
    assert any("NUL byte" in n for n in r.notes)


# ----------------------------------------------------------------------------- hostile sizes


def _stream(reader: FileReader, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` to ``reader`` cut at ``cuts``, as the layer walker would."""
    at = 0
    for cut in [*sorted(cuts), len(data)]:
        if cut > at and not reader.feed(data[at:cut]):
            return
        at = max(at, cut)


def _streamed(data: bytes, cuts: list[int], cap: int = STATUS_CAP) -> FileFacts:
    reader = DpkgAnalyzer().open("var/lib/dpkg/status", len(data), cap)
    _stream(reader, data, cuts)
    facts = reader.close()
    assert facts is not None
    return facts


_DAMAGED = (
    b"\n\n".join(
        [
            _paragraph(b"bash").replace(b"Version:", b"Version 5.2 no colon\nVersion:").rstrip(),
            _paragraph(b"libc6").replace(b"\nVersion:", b"\x00\nVersion:", 1).rstrip(),
            STATUS.rstrip(),
            b" continuation first\n" + _paragraph(b"openssl").rstrip(),
        ]
    )
    + b"\n\n\n"
)


@given(st.lists(st.integers(min_value=0, max_value=len(_DAMAGED)), max_size=12))
def test_status_read_in_any_pieces_is_read_as_a_whole(cuts: list[int]) -> None:
    """The status file is parsed as it streams by: cut anywhere (inside a field, between
    the two newlines of a blank line), it gives the packages and the notes (line and entry
    numbers included) that reading it whole gives."""
    whole = _streamed(_DAMAGED, [])
    assert len(whole.packages) == len(_paragraphs(STATUS)) and len(whole.notes) == 3
    assert _streamed(_DAMAGED, cuts) == whole


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").is_file(), reason="not a Debian system")
def test_real_status_streamed_in_chunks_is_read_fully() -> None:
    """This machine's real status file (hundreds of KB), fed in the walker's pieces, gives
    every installed package that reading it whole gives."""
    real = Path("/var/lib/dpkg/status").read_bytes()
    whole = _streamed(real, [])
    assert len(whole.packages) > 50
    assert _streamed(real, list(range(4096, len(real), 65_536))) == whole


def test_huge_status_is_parsed_in_bounded_memory() -> None:
    """A 48 MiB status file is parsed as it streams by in 1 MiB pieces: the reader never
    holds more than a few MiB (a buffered read held all of it, and joined it once more)."""
    para = (
        b"Package: removed-%d\nStatus: deinstall ok config-files\nVersion: 1.0-1\n"
        b"Description: a package that left its configuration behind\n"
        + b" a long description line that goes on and on, as real ones do\n" * 12
        + b"\n"
    )
    data = b"".join(para % i for i in range(48 * 1024 * 1024 // len(para)))
    data += _paragraph(b"openssl")
    reader = DpkgAnalyzer().open("var/lib/dpkg/status", len(data), STATUS_CAP)
    tracemalloc.start()
    try:
        _stream(reader, data, list(range(1 << 20, len(data), 1 << 20)))
        facts = reader.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts is not None and [p.name for p in facts.packages] == ["openssl"]
    assert peak < 12 << 20, peak


def test_package_count_is_capped_with_a_note() -> None:
    """A status file of more installed packages than any system has (tiny hostile
    paragraphs) stops at ``MAX_PACKAGES``, with a note: memory grows with each one kept."""
    data = b"".join(
        b"Package: p%d\nStatus: install ok installed\nVersion: 1\n\n" % i
        for i in range(MAX_PACKAGES + 10)
    )
    facts = _streamed(data, list(range(1 << 20, len(data), 1 << 20)))
    assert len(facts.packages) == MAX_PACKAGES
    assert any(f"more than {MAX_PACKAGES} installed packages" in n for n in facts.notes)


def test_overlong_paragraph_is_skipped_and_the_next_is_read() -> None:
    """A paragraph longer than ``MAX_PARAGRAPH`` (no package's is) is skipped with a note
    naming its line, so the bytes held while looking for its end stay bounded; the
    paragraphs after it are read."""
    long = _paragraph(b"bash").rstrip() + b"\n" + b" filler line\n" * (MAX_PARAGRAPH // 12)
    data = _paragraph(b"libc6") + b"\n" + long + b"\n" + _paragraph(b"openssl")
    facts = _streamed(data, list(range(1 << 16, len(data), 1 << 16)))
    assert [p.name for p in facts.packages] == ["libc6", "openssl"]
    line = _paragraph(b"libc6").count(b"\n") + 2
    assert facts.notes == (
        f"var/lib/dpkg/status: paragraph at line {line}: longer than {MAX_PARAGRAPH} "
        "bytes; skipped",
    )
