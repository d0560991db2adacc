"""npm lockfiles: pinned packages that the image does not have installed are still reported."""

from __future__ import annotations

import msgspec

from regsweep.crawler.analyzers.interface import Context, LayerFile
from regsweep.crawler.analyzers.npm import NpmAnalyzer

LAYER = "sha256:" + "a" * 64

# The shape npm 7+ writes (lockfileVersion 3): "" is the project, keys are install locations.
LOCK_V3 = {
    "name": "web",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "web", "version": "1.0.0", "dependencies": {"formidable": "^2.1.0"}},
        "node_modules/formidable": {
            "version": "2.1.1",
            "resolved": "https://registry.npmjs.org/formidable/-/formidable-2.1.1.tgz",
            "integrity": "sha512-x",
        },
        "node_modules/@babel/core": {"version": "7.22.5", "dev": True},
        "node_modules/formidable/node_modules/qs": {"version": "6.11.0"},
        "node_modules/local-lib": {"resolved": "../lib", "link": True},
        "node_modules/aliased": {"name": "real-name", "version": "1.2.3"},
    },
}

# npm 5/6 (lockfileVersion 1): nested "dependencies" by install location.
LOCK_V1 = {
    "name": "old",
    "version": "1.0.0",
    "lockfileVersion": 1,
    "requires": True,
    "dependencies": {
        "lodash": {
            "version": "4.17.15",
            "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.15.tgz",
        },
        "mine": {"version": "file:../mine"},
        "express": {
            "version": "4.17.1",
            "dependencies": {"qs": {"version": "6.7.0"}},
        },
    },
}


def run(files: dict[str, bytes]) -> list[tuple[str, str, str]]:
    an = NpmAnalyzer()
    wanted = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items() if an.wants(p)}
    result = an.analyze(wanted, Context())
    return sorted((p.name, p.version, p.path or "") for p in result.packages)


def test_lockfile_v3_reports_pinned_packages_not_installed() -> None:
    """Every registry pin of a v3 lock, nested and scoped ones included; links skipped; an
    aliased install reports its real name."""
    got = run({"app/package-lock.json": msgspec.json.encode(LOCK_V3)})
    lock = "app/package-lock.json"
    assert got == [
        ("@babel/core", "7.22.5", lock),
        ("formidable", "2.1.1", lock),
        ("qs", "6.11.0", lock),
        ("real-name", "1.2.3", lock),
        ("web", "1.0.0", lock),  # the project itself (see the root test)
    ]


def test_installed_manifests_win_over_the_lock() -> None:
    """A pin whose node_modules manifest is in the image is reported once, from the manifest."""
    manifest = msgspec.json.encode({"name": "formidable", "version": "2.1.1"})
    got = run(
        {
            "app/package-lock.json": msgspec.json.encode(LOCK_V3),
            "app/node_modules/formidable/package.json": manifest,
        }
    )
    assert ("formidable", "2.1.1", "app/node_modules/formidable/package.json") in got
    assert ("formidable", "2.1.1", "app/package-lock.json") not in got


def test_lockfile_v1_nested_dependencies_and_non_registry_pins() -> None:
    """v1 nesting is walked; a file: pin is not a registry version and is skipped."""
    got = run({"package-lock.json": msgspec.json.encode(LOCK_V1)})
    assert got == [
        ("express", "4.17.1", "package-lock.json"),
        ("lodash", "4.17.15", "package-lock.json"),
        ("old", "1.0.0", "package-lock.json"),  # the project itself (v1's top level)
        ("qs", "6.7.0", "package-lock.json"),
    ]


def test_hidden_lockfile_and_garbage() -> None:
    """node_modules/.package-lock.json is not asked for; a broken lock is a note, not a crash."""
    an = NpmAnalyzer()
    assert an.wants("app/node_modules/.package-lock.json") is None
    assert an.wants("app/node_modules/x/package-lock.json") is None
    bad = {"package-lock.json": LayerFile(path="package-lock.json", data=b"\xff{", layer=LAYER)}
    result = an.analyze(bad, Context())
    assert result.packages == [] and result.notes


def test_the_project_is_a_root_component_never_matched() -> None:
    """The lock's own project (``packages[""]``; v1's top level) is a package with ``root``
    set and no ecosystem: a component of the image, not a dependency, and never matched
    (an app may share its name with a public package). Its dependencies are not roots."""
    an = NpmAnalyzer()
    for data, name in ((LOCK_V3, "web"), (LOCK_V1, "old")):
        files = {"package-lock.json": msgspec.json.encode(data)}
        wanted = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
        packages = an.analyze(wanted, Context()).packages
        [root] = [p for p in packages if p.root]
        assert (root.name, root.version, root.ecosystem) == (name, "1.0.0", None)
        assert all(p.ecosystem == "npm" for p in packages if not p.root)
