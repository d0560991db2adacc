"""``regsweep bench`` as a user runs it: real commands on a real index, inventory and layer.

The figures themselves depend on the machine, so nothing here asserts a time; what is
checked is that each report carries every figure with a sane value, that the floor writes
exactly what the product writes (else the ratio compares different work), and that bad
input is a one-line usage error.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from regsweep.crawler import benchmark as layer_bench
from regsweep.matcher.records import ImageRef, Package, PackageRecord
from tests.example import advisory_index, example_image

REGSWEEP = str(Path(sys.executable).parent / "regsweep")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the bundled advisory samples, built by the command users run."""
    return advisory_index(tmp_path_factory.mktemp("bench") / "adv.lmdb")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REGSWEEP, "bench", *args], capture_output=True, text=True)


def bench_json(*args: str) -> dict[str, Any]:
    proc = bench(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = msgspec.json.decode(proc.stdout)
    return report


def assert_envelope(report: dict[str, Any], benchmark: str) -> None:
    assert report["benchmark"] == benchmark
    assert report["regsweep_version"] == version("regsweep")
    assert report["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert report["machine"]
    assert report["peak_rss_mb"] > 0


def assert_usage_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("regsweep: error: ")
    for word in words:
        assert word in lines[0]


# ----------------------------------------------------------------------------- matcher


def test_matcher_on_a_generated_inventory_reports_every_figure(db: Path) -> None:
    """A generated inventory is drawn from the index's own packages, so it has findings;
    both sides are timed, and the floor wrote the same records and bytes as the product."""
    report = bench_json("matcher", "--db", str(db), "--generate", "3000", "--repeat", "2")
    assert_envelope(report, "matcher")
    built = msgspec.json.decode(
        subprocess.run(
            [REGSWEEP, "db", "info", "--db", str(db), "--json"],
            capture_output=True,
            check=True,
        ).stdout
    )["built_at"]
    assert report["index_built_at"] == built
    r = report["result"]
    assert r["inventory"] == "generated:3000"
    assert r["packages"] == r["lines"] == 3000
    assert r["repeat"] == 2
    assert r["findings"] > 0
    for side in (r["product"], r["floor"]):
        assert side["seconds"] > 0 and side["cpu_seconds"] > 0
        assert side["packages_per_s"] == pytest.approx(3000 / side["seconds"])
    assert r["product"]["records"] == r["floor"]["records"] >= r["findings"]
    assert r["product"]["bytes"] == r["floor"]["bytes"] > 0
    assert r["ratio"] == pytest.approx(r["product"]["seconds"] / r["floor"]["seconds"])
    assert r["cpu_ratio"] == pytest.approx(r["product"]["cpu_seconds"] / r["floor"]["cpu_seconds"])


def test_matcher_reads_the_inventory_regsweep_scan_packages_writes(
    db: Path, tmp_path: Path
) -> None:
    """``-i`` takes ``scan --packages`` output as it is (image, package, vulnerability,
    misconfiguration and summary records): only the package records count as packages."""
    layout = example_image(tmp_path / "image")
    scan = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--packages", f"oci:{layout}:latest"],
        capture_output=True,
    )
    assert scan.returncode == 0, scan.stderr
    inventory = tmp_path / "scan.ndjson"
    inventory.write_bytes(scan.stdout)
    kinds = [msgspec.json.decode(line)["kind"] for line in scan.stdout.splitlines()]
    report = bench_json("matcher", "--db", str(db), "-i", str(inventory), "--repeat", "1")
    r = report["result"]
    assert r["inventory"] == str(inventory)
    assert r["packages"] == kinds.count("package") > 0
    assert r["lines"] == len(kinds)
    # What the scan found is what matching the same packages finds.
    assert r["findings"] == kinds.count("vulnerability") > 0
    assert r["product"]["records"] == r["floor"]["records"]


def test_matcher_reads_package_records_written_by_hand(db: Path, tmp_path: Path) -> None:
    """An inventory of bare package records (no image), a blank line among them, matches
    the vulnerable firefox-esr the Debian samples name, and the text report shows it."""
    enc = msgspec.json.Encoder()
    pkgs = [
        Package(
            name="firefox-esr", version="91.4.0esr-1~deb10u1", type="deb", ecosystem="Debian:10"
        ),
        Package(name="left-pad", version="1.3.0", type="npm", ecosystem="npm"),
    ]
    inventory = tmp_path / "packages.ndjson"
    inventory.write_bytes(
        b"\n".join(enc.encode(PackageRecord(package=p)) for p in pkgs)
        + b"\n\n"
        + enc.encode(PackageRecord(image=ImageRef(ref="x"), package=pkgs[0]))
        + b"\n"
    )
    r = bench_json("matcher", "--db", str(db), "-i", str(inventory), "--repeat", "1")["result"]
    assert (r["packages"], r["lines"]) == (3, 4)
    assert r["findings"] > 0 and r["findings"] % 2 == 0  # firefox-esr twice
    proc = bench("matcher", "--db", str(db), "-i", str(inventory), "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    assert "packages/s" in proc.stdout and "peak RSS" in proc.stdout


def test_a_bad_inventory_line_is_a_one_line_usage_error(db: Path, tmp_path: Path) -> None:
    """The first line that is not a record is named (file and line number), nothing is
    measured, and the exit code is 2."""
    good = msgspec.json.encode(
        PackageRecord(package=Package(name="zlib", version="1.2.11", type="deb"))
    )
    inventory = tmp_path / "bad.ndjson"
    inventory.write_bytes(good + b"\n" + b'{"kind":"package","package":{"name":\n' + good + b"\n")
    assert_usage_error(bench("matcher", "--db", str(db), "-i", str(inventory)), "line 2")


def test_an_inventory_without_packages_or_a_missing_one_is_a_usage_error(
    db: Path, tmp_path: Path
) -> None:
    """Nothing to match, or no such file: exit 2 with one line naming the file."""
    empty = tmp_path / "empty.ndjson"
    empty.write_text("\n")
    assert_usage_error(bench("matcher", "--db", str(db), "-i", str(empty)), str(empty))
    missing = tmp_path / "nope.ndjson"
    assert_usage_error(bench("matcher", "--db", str(db), "-i", str(missing)), str(missing))


def test_a_missing_index_is_a_one_line_usage_error(tmp_path: Path) -> None:
    """No index at --db: exit 2, one line saying where none was found and how to build one."""
    nope = tmp_path / "none.lmdb"
    assert_usage_error(bench("matcher", "--db", str(nope), "--generate", "10"), str(nope))
    assert_usage_error(bench("versions", "--db", str(nope)), str(nope), "--generate")


def test_inventory_and_generate_together_are_a_usage_error(db: Path, tmp_path: Path) -> None:
    """-i and --generate name two different inventories: refused rather than one ignored."""
    f = tmp_path / "x.ndjson"
    f.write_text("")
    assert_usage_error(bench("matcher", "--db", str(db), "-i", str(f), "--generate", "5"))


# ----------------------------------------------------------------------------- versions


def test_versions_on_the_index_reports_each_scheme(db: Path) -> None:
    """Each scheme asked for gets compiled and pure rates; the index's real versions are
    counted apart from the generated top-up."""
    report = bench_json(
        "versions", "--db", str(db), "--scheme", "dpkg", "--scheme", "apk", "--pairs", "2000"
    )
    assert_envelope(report, "versions")
    assert report["index_built_at"]
    results = report["result"]
    assert [r["scheme"] for r in results] == ["dpkg", "apk"]
    for r in results:
        assert r["implementation"] in ("compiled", "pure")
        assert 0 < r["real"] <= r["strings"]
        assert r["pairs"] == 2000
        for field in (
            "compare_per_s",
            "key_per_s",
            "key_compare_per_s",
            "pure_compare_per_s",
            "pure_key_per_s",
            "compare_speedup",
            "key_speedup",
        ):
            assert r[field] > 0, field


def test_versions_generated_needs_no_index(tmp_path: Path) -> None:
    """--generate N measures N generated versions per scheme, without any index."""
    report = bench_json(
        "versions",
        "--db",
        str(tmp_path / "none.lmdb"),
        "--generate",
        "300",
        "--scheme",
        "pep440",
        "--pairs",
        "500",
        "--repeat",
        "1",
    )
    assert report["index_built_at"] is None
    (r,) = report["result"]
    assert (r["scheme"], r["real"], r["strings"]) == ("pep440", 0, 300)
    assert r["compare_per_s"] > 0 and r["compare_speedup"] > 0


# ----------------------------------------------------------------------------- layers


def test_layers_on_a_generated_layer_finds_its_packages(tmp_path: Path) -> None:
    """The generated layer is read by the product's analyzers (its dpkg, Python and npm
    packages are found), and both sides report MB/s and files/s."""
    report = bench_json("layers", "--generate-mb", "3", "--repeat", "1")
    assert_envelope(report, "layers")
    (r,) = report["result"]
    assert r["layer"] == "generated:3MB"
    assert r["media_type"] == layer_bench.GZIP
    assert r["tar_bytes"] >= 3_000_000 > r["compressed_bytes"] > 0
    assert r["files"] > 50 and r["entries"] > r["files"]
    assert r["packages"] > 10
    for side in (r["product"], r["floor"]):
        assert side["mb_per_s"] > 0 and side["files_per_s"] > 0
    assert r["ratio"] > 0 and r["cpu_ratio"] > 0


def test_layers_reads_tar_and_zstd_layers_given_as_files(tmp_path: Path) -> None:
    """A plain tar and the same tar as zstd are told apart by their first bytes and agree
    on what they hold."""
    blob = io.BytesIO()
    layer_bench.generate_layer(blob, 1)
    tar = gzip.decompress(blob.getvalue())
    (tmp_path / "layer.tar").write_bytes(tar)
    (tmp_path / "layer.tar.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(tar))
    report = bench_json(
        "layers",
        str(tmp_path / "layer.tar"),
        str(tmp_path / "layer.tar.zst"),
        "--repeat",
        "1",
    )
    plain, zst = report["result"]
    assert plain["media_type"] == layer_bench.TAR
    assert zst["media_type"] == layer_bench.ZSTD
    assert plain["tar_bytes"] == zst["tar_bytes"] == len(tar)
    with tarfile.open(tmp_path / "layer.tar") as tf:
        assert plain["files"] == zst["files"] == sum(1 for m in tf if m.isfile())
    assert plain["packages"] == zst["packages"] > 0


def test_a_file_that_is_not_a_layer_is_a_one_line_usage_error(tmp_path: Path) -> None:
    """Random bytes, a truncated gzip layer and a missing file: exit 2, the file named."""
    junk = tmp_path / "junk.tar"
    junk.write_bytes(bytes(range(256)) * 8)
    assert_usage_error(bench("layers", str(junk)), str(junk), "not a tar")
    blob = io.BytesIO()
    layer_bench.generate_layer(blob, 1)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(blob.getvalue()[:50_000])
    assert_usage_error(bench("layers", str(cut)), str(cut), "truncated")
    assert_usage_error(bench("layers", str(tmp_path / "none.tar")), "none.tar")


def test_the_generated_layer_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    """Trend lines compare runs: the same size asks for the same layer, wherever it is
    written (gzip would put the file's name in its header)."""
    a, b = tmp_path / "a.tar.gz", tmp_path / "generated-layer.tar.gz"
    with a.open("wb") as fa, b.open("wb") as fb:
        assert layer_bench.generate_layer(fa, 1) == layer_bench.generate_layer(fb, 1)
    assert a.read_bytes() == b.read_bytes()


_BIG_PARENT = """
import subprocess, sys
big = bytearray(256 << 20)
big[::4096] = b"\\1" * len(big[::4096])  # touch every page: resident, not just reserved
sys.stdout.write(subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout)
"""


def test_peak_rss_is_the_commands_own_not_its_parents() -> None:
    """Started by a process with 256 MB resident (a harness holding an inventory), the
    command reports its own peak: Linux's ru_maxrss would carry the parent's over exec."""
    proc = subprocess.run(
        [sys.executable, "-c", _BIG_PARENT, REGSWEEP, "bench", "layers", "--generate-mb", "1",
         "--repeat", "1", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert 0 < msgspec.json.decode(proc.stdout)["peak_rss_mb"] < 200
