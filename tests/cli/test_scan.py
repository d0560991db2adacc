"""``regsweep scan`` as a user runs it: records, platforms, exit codes and broken images."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tests import paths
from tests.conftest import fill_but_one_page

REPO = paths.REPO
REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def scan(db: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), *args], capture_output=True, text=True
    )
    return proc.returncode, [msgspec.json.decode(x) for x in proc.stdout.splitlines()], proc.stderr


def test_platform_filter_narrows_the_index_to_one_image(example: tuple[Path, Path]) -> None:
    """--platform linux/arm64 scans only the Alpine image of the two-platform index."""
    layout, db = example
    code, records, _ = scan(db, "--platform", "linux/arm64", f"oci:{layout}:latest")
    assert code == 0
    images = [r for r in records if r["kind"] == "image"]
    assert [i["image"]["platform"] for i in images] == ["linux/arm64"]  # type: ignore[index]
    assert images[0]["os"]["family"] == "alpine"  # type: ignore[index]


def test_packages_flag_adds_package_records_with_layer_and_path(
    example: tuple[Path, Path],
) -> None:
    """--packages writes every package, each with the layer that added it and its source file."""
    layout, db = example
    _, records, _ = scan(db, "--packages", f"oci:{layout}:latest")
    pkgs = [r["package"] for r in records if r["kind"] == "package"]
    assert {p["name"] for p in pkgs} >= {"firefox-esr", "busybox", "formidable", "PyYAML"}  # type: ignore[index]
    assert all(str(p["layer"]).startswith("sha256:") and p["path"] for p in pkgs)  # type: ignore[index]
    summary = records[-1]
    assert summary["kind"] == "summary" and summary["packages"] == len(pkgs)


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 1), ("high", 1), (None, 0)])
def test_fail_on_sets_the_exit_code(
    example: tuple[Path, Path], fail_on: str | None, code: int
) -> None:
    """Exit 1 when a finding at or above --fail-on exists (the AWS key is CRITICAL), else 0."""
    layout, db = example
    args = ["--fail-on", fail_on] if fail_on else []
    assert scan(db, *args, f"oci:{layout}:latest")[0] == code


def test_usage_errors_exit_2(example: tuple[Path, Path], tmp_path: Path) -> None:
    """A ref of no known kind, a bad platform, or no advisory index is a usage error."""
    layout, db = example
    assert scan(db, "ftp:/x")[0] == 2
    assert scan(db, "--platform", "linux", f"oci:{layout}:latest")[0] == 2
    code, _, err = scan(tmp_path / "none.lmdb", f"oci:{layout}:latest")
    assert code == 2 and "regsweep db build" in err


def test_a_corrupt_layer_is_an_error_record_and_never_a_clean_image(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """A layer blob whose bytes do not match its digest yields a layer error record and no
    image record for that platform; the other platform is still scanned."""
    layout, db = example
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(layout), str(broken)], check=True)
    _, records, _ = scan(db, "--platform", "linux/amd64", f"oci:{layout}:latest")
    amd64 = next(r for r in records if r["kind"] == "image")
    manifest_digest = str(amd64["image"]["digest"]).split(":")[1]  # type: ignore[index]
    manifest = msgspec.json.decode((broken / "blobs/sha256" / manifest_digest).read_bytes())
    layer = broken / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    # Same size, other content: it passes the size check and must fail the digest check.
    data = gzip.decompress(layer.read_bytes())
    forged = gzip.compress(data.replace(b"91.4.0esr", b"99.9.9esr"), mtime=0)[
        : layer.stat().st_size
    ]
    forged = forged.ljust(layer.stat().st_size, b"\0")
    assert hashlib.sha256(forged).hexdigest() != layer.name
    layer.write_bytes(forged)
    code, records, _ = scan(db, f"oci:{broken}:latest")
    errors = [r for r in records if r["kind"] == "error"]
    assert errors and all(e["stage"] == "layer" for e in errors)
    assert [r["image"]["platform"] for r in records if r["kind"] == "image"] == ["linux/arm64"]  # type: ignore[index]
    assert records[-1]["errors"] == len(errors)
    # --fail-on fails on it too, whatever the threshold: it was not found clean. The arm64
    # image alone (no AWS key: its findings are not CRITICAL) passes the same threshold.
    code, _, _ = scan(db, "--fail-on", "critical", f"oci:{broken}:latest")
    assert code == 1
    code, _, _ = scan(db, "--fail-on", "critical", "--platform", "linux/arm64",
                      f"oci:{broken}:latest")  # fmt: skip
    assert code == 0


def test_table_format_is_for_people_and_keeps_ndjson_off_stdout(example: tuple[Path, Path]) -> None:
    """--format table prints a table (no JSON lines) naming the findings."""
    layout, db = example
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--format", "table", f"oci:{layout}:latest"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "DSA-5044-1" in proc.stdout and "RS-IMG-002" in proc.stdout
    assert not any(line.startswith("{") for line in proc.stdout.splitlines())


def test_progress_shows_on_a_terminal_only(example: tuple[Path, Path], tmp_path: Path) -> None:
    """On a terminal (a pty from ``script``) stderr shows the live image count; through a pipe
    nothing but records and logs appear."""
    layout, db = example
    cmd = f"{REGSWEEP} scan --db {db} -o {tmp_path / 'out.ndjson'} oci:{layout}:latest"
    typescript = tmp_path / "typescript"
    subprocess.run(["script", "-qefc", cmd, str(typescript)], check=True, capture_output=True)
    assert "images scanned" in typescript.read_text(errors="replace")
    assert (tmp_path / "out.ndjson").read_bytes().count(b'"kind":"image"') == 2
    _, _, err = scan(db, f"oci:{layout}:latest")
    assert "images scanned" not in err


def test_scan_output_is_replaced_only_by_a_complete_result(
    example: tuple[Path, Path], tmp_path: Path, small_disk: Path
) -> None:
    """``scan -o FILE`` on a disk that fills: exit 2 naming the file, no traceback, and the
    previous result still whole in ``FILE``; with room, the rerun replaces it."""
    layout, db = example
    out = small_disk / "out.ndjson"
    cmd = [REGSWEEP, "scan", "--db", str(db), "--packages", "-o", str(out), f"oci:{layout}:latest"]
    subprocess.run(cmd, check=True, capture_output=True)
    previous = out.read_bytes()
    assert len(previous) > 2 * os.statvfs(small_disk).f_frsize
    filler = fill_but_one_page(small_disk)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write {out}.partial: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == previous
    filler.unlink()
    subprocess.run(cmd, check=True, capture_output=True)
    assert out.read_bytes().count(b'"kind":"image"') == 2 and not Path(f"{out}.partial").exists()


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_oci_archive_written_by_skopeo_scans_as_its_layout(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """``skopeo copy --all oci:… oci-archive:…`` (also ``podman save --format oci-archive``):
    the same records as the layout, but for the reference."""
    layout, db = example
    archive = tmp_path / "example.tar"
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--quiet", "--all", f"oci:{layout}:latest",
         f"oci-archive:{archive}:latest"],
        check=True, capture_output=True,
    )  # fmt: skip
    code, from_dir, err = scan(db, "--packages", f"oci:{layout}:latest")
    assert code == 0, err
    code, from_archive, err = scan(db, "--packages", f"oci-archive:{archive}:latest")
    assert code == 0, err

    def same(records: list[dict[str, object]], ref: str) -> list[bytes]:
        out = []
        for r in records:
            r = {k: v for k, v in r.items() if k not in ("scanned_at", "started_at", "finished_at")}
            out.append(msgspec.json.encode(r).replace(ref.encode(), b"REF"))
        return sorted(out)

    assert any(r["kind"] == "vulnerability" for r in from_archive)
    assert same(from_dir, f"oci:{layout}:latest") == same(
        from_archive, f"oci-archive:{archive}:latest"
    )


_SCAN_FAULT = """
import sys
import regsweep.matcher.judge as judge
from regsweep.cli.main import main

real = judge._judge

def broken(facts, *args, **kwargs):
    if facts.image.platform == "linux/arm64":
        raise RuntimeError("a bug in matching or checks")
    return real(facts, *args, **kwargs)

judge._judge = broken
main(sys.argv[1:])
"""


def test_a_bug_while_matching_one_image_is_an_error_record_and_the_scan_goes_on(
    example: tuple[Path, Path],
) -> None:
    """An exception from matching or the checks for one image (a bug) becomes one ``error``
    record for it, none of its other records, and the other image is reported whole."""
    layout, db = example
    proc = subprocess.run(
        [sys.executable, "-c", _SCAN_FAULT, "scan", "--db", str(db), f"oci:{layout}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    per_platform: dict[str, set[str]] = {}
    for r in records:
        if isinstance(r.get("image"), dict):
            per_platform.setdefault(r["image"]["platform"], set()).add(r["kind"])
    assert per_platform["linux/arm64"] == {"error"}
    assert {"image", "vulnerability", "misconfiguration"} <= per_platform["linux/amd64"]
    [error] = [r for r in records if r["kind"] == "error"]
    assert (error["stage"], error["error"]) == ("match", "runtime_error")
    assert records[-1]["kind"] == "summary" and records[-1]["images"] == 1


def test_a_fifo_or_a_symlink_given_to_o_is_written_through_not_replaced(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    """``-o`` names a FIFO (as ``/dev/stdout`` or a device can): it is written, never
    replaced by a regular file (its reader would hang); a symlink stays a link and the
    file it points at gets the new result."""
    import stat
    import threading

    layout, db = example
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, _, err = scan(db, "-o", str(fifo), f"oci:{layout}:latest")
    reader.join(30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and not Path(f"{fifo}.partial").exists()
    assert got and got[0].count(b'"kind":"image"') == 2
    real, link = tmp_path / "real.ndjson", tmp_path / "link.ndjson"
    real.write_bytes(b"old\n")
    real.chmod(0o640)
    link.symlink_to(real)
    code, _, err = scan(db, "-o", str(link), f"oci:{layout}:latest")
    assert code == 0, err
    assert link.is_symlink() and real.read_bytes().count(b'"kind":"image"') == 2
    assert real.stat().st_mode & 0o777 == 0o640  # the new result keeps the old one's mode


def test_standard_output_on_a_full_disk_is_one_line(example: tuple[Path, Path]) -> None:
    """``scan > /dev/full``: exit 2 and one line saying stdout could not be written."""
    layout, db = example
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [REGSWEEP, "scan", "--db", str(db), f"oci:{layout}:latest"],
            stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "cannot write stdout: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
