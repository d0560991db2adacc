"""``scan dir:ROOTFS``: an unpacked root filesystem, read as a one-layer image. The rootfs is
a real minbase Debian (mmdebstrap, ``tests.realimage``) unpacked by ``tar``; dpkg itself is
the oracle for its packages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from tests.example import REGSWEEP
from tests.realimage import CannotBuild, debian_rootfs, dpkg_installed


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        tar = debian_rootfs("amd64")
    except CannotBuild as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("rootfs")
    subprocess.run(
        ["tar", "-x", "-f", str(tar), "-C", str(root), "--exclude=./dev/*", "--no-same-owner"],
        check=True,
    )
    return tar, root


def scan(db: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), *args], capture_output=True, text=True, check=False
    )
    return proc.returncode, [msgspec.json.decode(x) for x in proc.stdout.splitlines()], proc.stderr


def test_a_real_debian_rootfs_gives_dpkgs_packages(
    rootfs: tuple[Path, Path], example: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every installed package as dpkg-query lists it, the OS and its ecosystem; the
    kernel's and runtime's directories at the top are not read."""
    tar, root = rootfs
    _, db = example
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "status").write_text("Package: ghost\nStatus: install ok installed\n")
    code, records, err = scan(db, "--packages", f"dir:{root}")
    assert code == 0, err
    packages = [r["package"] for r in records if r["kind"] == "package"]
    debs = sorted(
        (
            p["name"],
            p["version"],
            p["source_name"] or p["name"],
            p["source_version"] or p["version"],
        )  # type: ignore[index]  # noqa: E501
        for p in packages
        if p["type"] == "deb"  # type: ignore[index]
    )
    assert debs == dpkg_installed(tar)
    assert {p["ecosystem"] for p in packages if p["type"] == "deb"} == {"Debian:12"}  # type: ignore[index]
    [image] = [r for r in records if r["kind"] == "image"]
    assert image["os"]["family"] == "debian" and image["os"]["version"] == "12"  # type: ignore[index]
    assert image["config"] is None and image["layers"] == 1
    # No image config: no finding about a user, ports or the environment.
    categories = {r["check"]["category"] for r in records if r["kind"] == "misconfiguration"}  # type: ignore[index]
    assert not categories & {"user", "port", "secret"}


def test_unreadable_files_are_noted_and_a_missing_directory_is_an_error(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = example
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=alpine\nVERSION_ID=3.11.6\n")
    (root / "lib" / "apk" / "db").mkdir(parents=True)
    (root / "lib" / "apk" / "db" / "installed").write_text(
        "P:busybox\nV:1.30.1-r1\nA:x86_64\no:busybox\n\n"
    )
    os.mkfifo(root / "fifo")  # never opened: a tar entry, not a file to read
    (root / "link").symlink_to("/etc/os-release")
    code, records, err = scan(db, f"dir:{root}")
    assert code == 0, err
    assert "Alpine:v3.11/busybox/CVE-2019-5747" in {
        r["advisory"]["id"]
        for r in records
        if r["kind"] == "vulnerability"  # type: ignore[index]
    }
    code, records, err = scan(db, "--fail-on", "critical", f"dir:{tmp_path / 'absent'}")
    assert code == 1, err  # an unreadable source never passes as clean
    [error] = [r for r in records if r["kind"] == "error"]
    assert error["error"] == "not_found"


def test_an_npm_projects_root_is_listed_and_never_matched(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """An app whose own name and version are a vulnerable public package's (formidable
    2.1.1): the project is a ``root`` package with no ecosystem and no finding; the same
    package as a dependency has its finding. CycloneDX says which is the root."""
    _, db = example
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    lock = {
        "name": "formidable", "version": "2.1.1", "lockfileVersion": 3,
        "packages": {
            "": {"name": "formidable", "version": "2.1.1"},
            "node_modules/formidable": {"version": "2.1.1"},
        },
    }  # fmt: skip
    (root / "app" / "package-lock.json").write_bytes(msgspec.json.encode(lock))
    code, records, err = scan(db, "--packages", f"dir:{root}")
    assert code == 0, err
    packages = [r["package"] for r in records if r["kind"] == "package"]
    assert sorted((p["root"], p["ecosystem"]) for p in packages) == [(False, "npm"), (True, None)]  # type: ignore[index]
    vulns = [r["package"] for r in records if r["kind"] == "vulnerability"]
    assert vulns and all(not p["root"] for p in vulns)  # type: ignore[index]
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--format", "cyclonedx", f"dir:{root}"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert proc.stdout.count(b'"regsweep:package:root"') == 1
