"""The npm analyzer on real package.json files, and against ``npm ls`` on this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.npm import NpmAnalyzer
from tests import paths

NPM = paths.DATA / "crawler" / "npm"
ABBREV = (NPM / "abbrev-package.json").read_bytes()
NPMCLI_FS = (NPM / "npmcli-fs-package.json").read_bytes()
ESM_STUB = (NPM / "glob-dist-esm-package.json").read_bytes()
LAYER = "sha256:" + "f" * 64


def _analyze(paths: dict[str, bytes], owners: dict[str, str] | None = None) -> AnalyzerResult:
    files = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in paths.items()}
    return NpmAnalyzer().analyze(files, Context(owners=owners or {}))


def test_plain_scoped_and_nested_packages() -> None:
    """Invariant: packages directly in node_modules, in a scope, and in nested
    node_modules are found, with name and version from the manifest."""
    r = _analyze(
        {
            "app/node_modules/abbrev/package.json": ABBREV,
            "app/node_modules/@npmcli/fs/package.json": NPMCLI_FS,
            "app/node_modules/x/node_modules/abbrev/package.json": ABBREV,
        }
    )
    assert r.notes == []
    got = {(p.name, p.version, p.path) for p in r.packages}
    assert got == {
        ("abbrev", "4.0.0", "app/node_modules/abbrev/package.json"),
        ("@npmcli/fs", "5.0.0", "app/node_modules/@npmcli/fs/package.json"),
        ("abbrev", "4.0.0", "app/node_modules/x/node_modules/abbrev/package.json"),
    }
    for p in r.packages:
        assert (p.type, p.ecosystem, p.layer, p.owner) == ("npm", "npm", LAYER, None)


def test_purl_encodes_the_scope() -> None:
    """Invariant: the scope is the purl namespace with ``@`` percent-encoded."""
    r = _analyze({"node_modules/@npmcli/fs/package.json": NPMCLI_FS})
    assert [p.purl for p in r.packages] == ["pkg:npm/%40npmcli/fs@5.0.0"]


def test_non_package_manifests_are_not_wanted_nor_reported() -> None:
    """Invariant: a project's root package.json and the ``{"type": "module"}`` stubs inside
    packages are not installed packages: never asked for, and skipped if handed over."""
    a = NpmAnalyzer()
    assert a.wants("app/package.json") is None
    assert a.wants("app/node_modules/glob/dist/esm/package.json") is None
    assert a.wants("app/node_modules/.bin/package.json") is None
    assert a.wants("app/node_modules/glob/package.json") == 1024 * 1024
    assert a.wants("node_modules/@scope/x/package.json") == 1024 * 1024
    r = _analyze(
        {
            "app/package.json": ABBREV,
            "app/node_modules/glob/dist/esm/package.json": ESM_STUB,
            "app/node_modules/stub/package.json": ESM_STUB,
        }
    )
    assert r.packages == [] and r.notes == []


def test_aliased_install_reports_the_real_package() -> None:
    """Invariant: ``npm i foo@npm:abbrev`` installs abbrev under node_modules/foo; the
    package is abbrev (advisories name it), found at foo's path."""
    r = _analyze({"node_modules/foo/package.json": ABBREV})
    assert [(p.name, p.path) for p in r.packages] == [("abbrev", "node_modules/foo/package.json")]


def test_owner_from_os_file_lists() -> None:
    """Invariant: a package whose manifest (or directory) an OS package lists is owned."""
    path = "usr/lib/node_modules/npm/node_modules/abbrev/package.json"
    assert _analyze({path: ABBREV}, {path: "npm"}).packages[0].owner == "npm"
    owners = {"usr/lib/node_modules/npm/node_modules/abbrev": "npm"}
    assert _analyze({path: ABBREV}, owners).packages[0].owner == "npm"


@pytest.mark.parametrize(
    ("data", "noted"),
    [
        (b"{not json", True),
        (b"\x00\x01", True),
        (b"[1, 2]", True),
        (b'{"name": "x"}', False),
        (b'{"name": 1, "version": "1.0.0"}', False),
        (b'{"name": "has space", "version": "1.0.0"}', True),
    ],
)
def test_broken_manifests(data: bytes, noted: bool) -> None:
    """Invariant: a manifest that is not JSON is noted; one without string name/version is
    skipped silently (placeholders); neither raises nor yields a package."""
    r = _analyze({"node_modules/x/package.json": data})
    assert r.packages == []
    assert bool(r.notes) is noted


@given(st.binary(max_size=1024))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    """Invariant: any bytes as a manifest give a result, never an exception."""
    _analyze({"node_modules/x/package.json": data})


@pytest.mark.oracle
@pytest.mark.skipif(
    shutil.which("npm") is None or not Path("/usr/lib/node_modules/npm").is_dir(),
    reason="needs npm installed globally under /usr/lib/node_modules",
)
def test_matches_npm_ls_on_this_machine() -> None:
    """Invariant (differential, ``npm ls`` is the reference): on this machine's global
    node_modules tree, the packages found at each path are exactly the ones npm lists."""
    out = subprocess.run(
        ["npm", "ls", "-g", "--all", "--parseable", "--long", "--offline"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # npm exits 1 on "extraneous"/"invalid" trees but still lists them
    ).stdout
    want = set()
    for line in out.splitlines():
        directory, _, spec = line.rpartition(":")
        name, _, version = spec.rpartition("@")
        if "/node_modules/" in directory + "/":
            want.add((directory.lstrip("/") + "/package.json", name, version))
    a = NpmAnalyzer()
    files = {}
    for p in Path("/usr/lib/node_modules").rglob("package.json"):
        rel = str(p)[1:]
        if a.wants(rel) is not None:
            files[rel] = p.read_bytes()
    got = {(p.path, p.name, p.version) for p in _analyze(files).packages}
    assert want and got == want
