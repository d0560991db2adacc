"""Composer ``installed.json`` → Packagist packages, from a real ``composer install``.

Composer (Debian package ``composer``) installs three local packages offline through a
``path`` repository with packagist.org disabled; the ``vendor/composer/installed.json`` it
writes is the Composer 2 fixture. Composer 1 wrote the same package objects as a bare JSON
array; that form is the Composer 2 file's ``packages`` list written as an array.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile
from regsweep.crawler.analyzers.php import SIZE_CAP, ComposerAnalyzer

LAYER = "sha256:" + "34" * 32
PATH = "var/www/html/vendor/composer/installed.json"
EXPECTED = {("Acme/Bar", "2.0.0-beta1"), ("acme/foo", "v1.2.3"), ("acme/devtool", "0.3.0")}


@pytest.fixture(scope="module")
def installed_json(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """installed.json written by ``composer install`` for three local packages."""
    composer = shutil.which("composer")
    if composer is None:
        pytest.skip("composer not installed")
    root = tmp_path_factory.mktemp("composer")
    for d, name, version in (
        ("foo", "acme/foo", "v1.2.3"),
        ("bar", "Acme/Bar", "2.0.0-beta1"),
        ("devtool", "acme/devtool", "0.3.0"),
    ):
        (root / "pkgs" / d).mkdir(parents=True)
        (root / "pkgs" / d / "composer.json").write_text(
            json.dumps({"name": name, "version": version, "type": "library"})
        )
    app = root / "app"
    app.mkdir()
    (app / "composer.json").write_text(
        json.dumps(
            {
                "name": "acme/app",
                "require": {"acme/foo": "*", "acme/bar": "*@beta"},
                "require-dev": {"acme/devtool": "*"},
                "repositories": [
                    {"packagist.org": False},
                    {"type": "path", "url": "../pkgs/*", "options": {"symlink": False}},
                ],
            }
        )
    )
    env = {
        **os.environ,
        "COMPOSER_HOME": str(root / "home"),
        "COMPOSER_DISABLE_NETWORK": "1",
        "COMPOSER_ALLOW_SUPERUSER": "1",
    }
    subprocess.run(
        [composer, "install", "--no-interaction", "--no-progress", "--quiet"],
        cwd=app,
        env=env,
        check=True,
    )
    return (app / "vendor" / "composer" / "installed.json").read_bytes()


def _analyze(files: dict[str, bytes], ctx: Context | None = None) -> AnalyzerResult:
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return ComposerAnalyzer().analyze(lf, ctx or Context())


def test_composer2_file_lists_every_installed_package(installed_json: bytes) -> None:
    """Composer 2's object form: every package (dev ones too), name and version as written
    (``v`` prefix, pre-release, mixed case kept); type composer, ecosystem Packagist, purl."""
    doc = json.loads(installed_json)
    assert isinstance(doc, dict) and doc["dev-package-names"] == ["acme/devtool"]
    res = _analyze({PATH: installed_json}, Context(owners={PATH: "php-app"}))
    assert res.notes == []
    assert {(p.name, p.version) for p in res.packages} == EXPECTED
    foo = next(p for p in res.packages if p.name == "acme/foo")
    assert (foo.type, foo.ecosystem, foo.purl) == (
        "composer",
        "Packagist",
        "pkg:composer/acme/foo@v1.2.3",
    )
    assert (foo.layer, foo.path, foo.owner) == (LAYER, PATH, "php-app")


def test_composer1_list_form(installed_json: bytes) -> None:
    """Composer 1's bare-array form gives the same packages."""
    packages = json.loads(installed_json)["packages"]
    res = _analyze({PATH: json.dumps(packages, indent=4).encode()})
    assert {(p.name, p.version) for p in res.packages} == EXPECTED


def test_bad_files_are_notes() -> None:
    """Garbage, a JSON object of the wrong shape, entries without a version and a truncated
    (oversized) file give notes, never exceptions."""
    lf = {
        "a/vendor/composer/installed.json": b"\x89PNG\r\n\x1a\n garbage",
        "b/vendor/composer/installed.json": b'{"packages": {"not": "a list"}}',
        "c/vendor/composer/installed.json": b'[{"name": "x/y"}, {"name": "a/b", "version": "1.0"}]',
        "d/vendor/composer/installed.json": b"",
    }
    files = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in lf.items()}
    files["e/vendor/composer/installed.json"] = LayerFile(
        path="e/vendor/composer/installed.json", data=b"[", layer=LAYER, truncated=True
    )
    res = ComposerAnalyzer().analyze(files, Context())
    assert [(p.name, p.version) for p in res.packages] == [("a/b", "1.0")]
    assert sorted(n[0] for n in res.notes) == ["a", "b", "c", "d", "e"]


def test_wants_installed_json_at_any_depth() -> None:
    """Only ``vendor/composer/installed.json``."""
    az = ComposerAnalyzer()
    assert az.wants(PATH) == SIZE_CAP
    assert az.wants("vendor/composer/installed.json") == SIZE_CAP
    assert az.wants("app/composer.lock") is None
    assert az.wants("x/myvendor/composer/installed.json") is None
