"""The Python analyzer on real core metadata, with OS ownership from real dpkg file lists."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.dpkg import DpkgAnalyzer
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.python import PythonAnalyzer
from regsweep.matcher.advisories.ecosystems import Ecosystem, normalize_name
from tests import paths

DATA = paths.DATA / "crawler"
PY = DATA / "python"
LAYER = "sha256:" + "e" * 64
DIST = "usr/lib/python3/dist-packages"
VENV = "app/.venv/lib/python3.11/site-packages"

IMAGE = {
    f"{DIST}/PyYAML-6.0.dist-info/METADATA": PY / "PyYAML-6.0.dist-info-METADATA",
    f"{DIST}/cryptography-38.0.4.dist-info/METADATA": PY / "cryptography-38.0.4.dist-info-METADATA",
    f"{DIST}/cryptography.egg-info/PKG-INFO": PY / "cryptography.egg-info-PKG-INFO",
    f"{DIST}/rpm-4.18.0.egg-info": PY / "rpm-4.18.0.egg-info",
    f"{VENV}/mdurl-0.1.2.dist-info/METADATA": PY / "mdurl-0.1.2.dist-info-METADATA",
}


def _dpkg_owners() -> dict[str, str]:
    lists = [*(DATA / "dpkg" / "info").glob("python3-*.list"), *(PY / "dpkg-info").iterdir()]
    files = {
        f"var/lib/dpkg/info/{p.name}": LayerFile(
            path=f"var/lib/dpkg/info/{p.name}", data=p.read_bytes(), layer=LAYER
        )
        for p in lists
    }
    return DpkgAnalyzer().analyze(files, Context()).owners


def _analyze(
    paths: dict[str, bytes], owners: dict[str, str] | None = None, truncated: bool = False
) -> AnalyzerResult:
    files = {
        p: LayerFile(path=p, data=d, layer=LAYER, truncated=truncated) for p, d in paths.items()
    }
    return PythonAnalyzer().analyze(files, Context(owners=owners or {}))


def _image() -> dict[str, bytes]:
    return {p: f.read_bytes() for p, f in IMAGE.items()}


def test_dist_info_and_egg_info_as_written() -> None:
    """Invariant: dist-info METADATA, egg-info PKG-INFO and an egg-info *file* are all read;
    the name is kept as the metadata writes it (the matcher applies PEP 503); the purl
    follows the purl spec for pypi (lower case, ``_`` → ``-``)."""
    r = _analyze(_image())
    assert r.notes == []
    got = {(p.name, p.version, p.path) for p in r.packages}
    assert got == {
        ("PyYAML", "6.0", f"{DIST}/PyYAML-6.0.dist-info/METADATA"),
        ("cryptography", "38.0.4", f"{DIST}/cryptography-38.0.4.dist-info/METADATA"),
        ("rpm", "4.18.0", f"{DIST}/rpm-4.18.0.egg-info"),
        ("mdurl", "0.1.2", f"{VENV}/mdurl-0.1.2.dist-info/METADATA"),
    }
    for p in r.packages:
        assert (p.type, p.ecosystem, p.layer, p.source_name) == ("pypi", "PyPI", LAYER, None)
    assert {p.name: p.purl for p in r.packages}["PyYAML"] == "pkg:pypi/pyyaml@6.0"


def test_same_distribution_twice_in_one_directory_is_one_package() -> None:
    """Invariant: Debian's python3-cryptography ships both a dist-info and an egg-info for
    one distribution; it is one package (the dist-info), not two."""
    r = _analyze(_image())
    assert [p.name for p in r.packages].count("cryptography") == 1
    only_egg = {
        f"{DIST}/cryptography.egg-info/PKG-INFO": IMAGE[
            f"{DIST}/cryptography.egg-info/PKG-INFO"
        ].read_bytes()
    }
    assert [p.path for p in _analyze(only_egg).packages] == [
        f"{DIST}/cryptography.egg-info/PKG-INFO"
    ]


def test_os_owned_distributions_carry_the_owner() -> None:
    """Invariant: a distribution whose metadata a dpkg file list names is owned by that
    Debian package (so the matcher leaves it to Debian's advisories); a pip-installed one in
    a virtualenv is not owned."""
    r = _analyze(_image(), _dpkg_owners())
    owners = {p.name: p.owner for p in r.packages}
    assert owners == {
        "PyYAML": "python3-yaml",
        "cryptography": "python3-cryptography",
        "rpm": "python3-rpm",
        "mdurl": None,
    }


def test_owner_found_through_the_metadata_directory() -> None:
    """Invariant: a file list that names only the dist-info directory still marks it owned."""
    r = _analyze(_image(), {f"{DIST}/PyYAML-6.0.dist-info": "python3-yaml"})
    assert {p.name: p.owner for p in r.packages}["PyYAML"] == "python3-yaml"


def test_upgraded_by_pip_over_dpkg_is_not_owned() -> None:
    """Invariant: ``pip install -U`` over a dpkg package writes a new dist-info (new version
    in its name) that no file list names: it is the user's, matched against PyPI."""
    data = IMAGE[f"{DIST}/PyYAML-6.0.dist-info/METADATA"].read_bytes()
    newer = data.replace(b"Version: 6.0\n", b"Version: 6.0.1\n")
    r = _analyze({f"{DIST}/PyYAML-6.0.1.dist-info/METADATA": newer}, _dpkg_owners())
    assert [(p.version, p.owner) for p in r.packages] == [("6.0.1", None)]


def test_truncated_metadata_keeps_its_headers() -> None:
    """Invariant: metadata cut at the cap inside the long description still gives the
    package (the headers come first)."""
    data = IMAGE[f"{DIST}/cryptography-38.0.4.dist-info/METADATA"].read_bytes()[:1500]
    r = _analyze({f"{DIST}/cryptography-38.0.4.dist-info/METADATA": data}, truncated=True)
    assert [(p.name, p.version) for p in r.packages] == [("cryptography", "38.0.4")]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01garbage",
        b"Metadata-Version: 2.1\nSummary: no name or version\n",
        b"Metadata-Version: 2.1\nName: bad name\nVersion: 1.0\n",
        b"\xff\xfe\xfd",
        b"",
    ],
)
def test_unusable_metadata_is_a_note(data: bytes) -> None:
    """Invariant: metadata without a valid Name and Version is skipped with a note."""
    r = _analyze({f"{VENV}/x-1.0.dist-info/METADATA": data})
    assert r.packages == [] and len(r.notes) == 1


def test_wants() -> None:
    """Invariant: the analyzer asks for dist-info METADATA, egg-info files and PKG-INFO,
    and EGG-INFO/PKG-INFO in unzipped eggs; nothing else in those directories."""
    a = PythonAnalyzer()
    for path in (
        f"{DIST}/PyYAML-6.0.dist-info/METADATA",
        f"{DIST}/rpm-4.18.0.egg-info",
        f"{VENV}/foo.egg-info/PKG-INFO",
        "opt/deps/foo-1.0.dist-info/METADATA",
        f"{VENV}/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO",
    ):
        assert a.wants(path) == 1024 * 1024, path
    for path in (f"{DIST}/PyYAML-6.0.dist-info/RECORD", f"{VENV}/foo.py", "METADATA"):
        assert a.wants(path) is None, path


def test_matches_importlib_metadata_on_this_venv() -> None:
    """Invariant (differential, importlib.metadata is the reference): on this virtualenv's
    site-packages, every distribution Python sees is found with the same name and version,
    and nothing else is."""
    site = Path(sysconfig.get_paths()["purelib"])
    want = {
        (normalize_name(Ecosystem.PYPI, d.metadata["Name"]), d.version)
        for d in importlib.metadata.distributions(path=[str(site)])
    }
    a = PythonAnalyzer()
    root = site.anchor
    files: dict[str, bytes] = {}
    for p in site.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_file() and a.wants(rel) is not None:
            files[rel] = p.read_bytes()
    r = _analyze(files)
    got = {(normalize_name(Ecosystem.PYPI, p.name), p.version) for p in r.packages}
    # Vendored copies (setuptools/_vendor/*.dist-info) are installed code Python does not
    # list as top-level distributions; they are reported on purpose.
    top = {
        (normalize_name(Ecosystem.PYPI, p.name), p.version)
        for p in r.packages
        if p.path is not None and p.path.count("/") == str(site.relative_to(root)).count("/") + 2
    }
    assert top == want
    assert want <= got


@given(st.binary(max_size=1024), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, truncated: bool) -> None:
    """Invariant: any bytes as metadata give a result, never an exception."""
    _analyze(
        {f"{VENV}/x-1.0.dist-info/METADATA": data, f"{DIST}/y.egg-info": data},
        truncated=truncated,
    )


@pytest.mark.oracle
@pytest.mark.skipif(
    shutil.which("dpkg-query") is None or not Path("/usr/lib/python3/dist-packages").is_dir(),
    reason="needs a Debian machine with python3 packages",
)
def test_ownership_matches_dpkg_search_on_this_machine() -> None:
    """Invariant (differential, ``dpkg-query -S`` is the reference): every distribution in
    this machine's ``/usr/lib/python3/dist-packages`` is owned exactly when dpkg says a
    package installed its metadata, and by that package."""
    site = Path("/usr/lib/python3/dist-packages")
    a = PythonAnalyzer()
    files = {}
    for p in site.iterdir():
        for meta in (p / "METADATA", p / "PKG-INFO", p):
            if meta.is_file() and a.wants(str(meta)[1:]) is not None:
                files[str(meta)[1:]] = meta.read_bytes()
    assert files
    lists = {}
    for f in Path("/var/lib/dpkg/info").glob("*.list"):
        lists[f"var/lib/dpkg/info/{f.name}"] = LayerFile(
            path=f"var/lib/dpkg/info/{f.name}", data=f.read_bytes(), layer=LAYER
        )
    owners = DpkgAnalyzer().analyze(lists, Context()).owners
    got = {p.path: p.owner for p in _analyze(files, owners).packages}
    out = subprocess.run(
        ["dpkg-query", "-S", *("/" + p for p in got if p is not None)],
        capture_output=True,
        text=True,
        check=False,  # exit 1 when some path is not owned: exactly the case to compare
    ).stdout
    want: dict[str | None, str | None] = dict.fromkeys(got)
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        # "pkg1, pkg2: path" for a shared path; "diversion by …" lines do not name owners.
        if not line.startswith("diversion"):
            want[path.lstrip("/")] = pkgs.split(",")[0].split(":")[0].strip()
    assert got == want
    assert any(o is not None for o in got.values())
