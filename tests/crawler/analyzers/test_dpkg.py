"""The dpkg analyzer on real Debian status files, file lists and distroless status.d."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.dpkg import _FIELD, DpkgAnalyzer, parse_paragraphs
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
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
