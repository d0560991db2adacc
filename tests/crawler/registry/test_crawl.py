"""``regsweep crawl`` and ``regsweep scan HOST/REPO:TAG`` against a real ``docker-registry``.

Crawls run as subprocesses (as a user runs them) through the fault proxy, whose request log
tells exactly what was fetched: that is how "each layer once", "a re-crawl fetches no blob"
and "a resumed crawl does not fetch finished images again" are checked.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path

import aiohttp
import msgspec
import pytest
import uvloop

from regsweep.crawler.analyze import default_analyzers
from regsweep.crawler.images import Counters, Crawler, RefResult
from regsweep.crawler.oci import InvalidReference, Platform
from regsweep.crawler.outfile import partial_path
from regsweep.crawler.refs import looks_like_registry_ref, parse_registry_ref
from regsweep.crawler.registry import Registry
from regsweep.crawler.state import StateStore, StateWriter, analyzer_set_hash
from tests import paths
from tests.conftest import fill_but_one_page
from tests.crawler.registry.conftest import PASSWORD, USER, RegistryServer
from tests.crawler.registry.faults import Fault, FaultProxy
from tests.crawler.registry.images import ImageSet

REPO = paths.REPO
REGSWEEP = str(Path(sys.executable).parent / "regsweep")
_VOLATILE = ("scanned_at", "started_at", "finished_at")

Record = dict[str, object]


def run(db: Path, command: str, *args: str) -> tuple[int, list[Record], str]:
    """``regsweep COMMAND --db DB ARGS``: exit code, stdout records, stderr."""
    proc = subprocess.run(
        [REGSWEEP, command, "--db", str(db), *args], capture_output=True, text=True, timeout=60
    )
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    return proc.returncode, records, proc.stderr


def refs_of(records: list[Record], kind: str = "image") -> list[tuple[str, str | None]]:
    """``(ref, platform)`` of the records of ``kind``, sorted."""
    out = []
    for r in records:
        if r["kind"] == kind:
            image = r["image"]
            assert isinstance(image, dict)
            out.append((image["ref"], image["platform"]))
    return sorted(out)


def stable(records: list[Record]) -> list[Record]:
    """Records without their timestamps, in a canonical order."""
    clean = [{k: v for k, v in r.items() if k not in _VOLATILE} for r in records]
    return sorted(clean, key=lambda r: msgspec.json.encode(r))


def blob_gets(proxy: FaultProxy) -> list[str]:
    """Digests of the blobs fetched through ``proxy``."""
    return [s.path_qs.rsplit("/", 1)[-1] for s in proxy.seen if "/blobs/" in s.path_qs]


def host(proxy: FaultProxy) -> str:
    return proxy.url.removeprefix("http://")


@pytest.fixture(scope="module")
def first_crawl(
    db: Path, _plain_proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Record], list[str]]:
    """A full crawl of the test registry into a fresh state store: (state, records, blobs)."""
    _plain_proxy.wait_idle()
    _plain_proxy.reset()
    state = tmp_path_factory.mktemp("crawl-state") / "state.lmdb"
    out = state.parent / "out.ndjson"
    code, _, err = run(db, "crawl", _plain_proxy.url, "--state", str(state), "-o", str(out))
    assert code == 0, err
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    return state, records, blob_gets(_plain_proxy)


def test_crawl_covers_every_repository_tag_and_platform(
    first_crawl: tuple[Path, list[Record], list[str]], images: ImageSet, plain_proxy: FaultProxy
) -> None:
    """Every tag of every repository gets an image record per platform (both children of the
    OCI index and of the manifest list), the attestation manifest is never fetched nor
    reported, and the summary comes last with the counts."""
    _, records, blobs = first_crawl
    h = host(plain_proxy)
    expected = []
    for repo, tags in images.tags.items():
        for tag in tags:
            ref = f"{h}/{repo}:{tag}"
            if repo in ("test/multi", "test/list"):
                expected += [(ref, "linux/amd64"), (ref, "linux/arm64/v8")]
            else:
                expected.append((ref, "linux/amd64"))
    assert refs_of(records) == sorted(expected)
    # Only the analyzers' notes (the arm64 base holds a fake ELF file): nothing failed.
    assert {r["stage"] for r in records if r["kind"] == "error"} <= {"analyzer"}
    attestation = images.children["test/multi"][2].digest
    assert attestation not in msgspec.json.encode(records).decode()
    summary = records[-1]
    assert summary["kind"] == "summary"
    assert [r["kind"] for r in records].count("summary") == 1
    assert summary["repositories"] == len(images.tags)
    assert summary["tags"] == sum(len(t) for t in images.tags.values())
    assert summary["images"] == len(expected)
    # The Debian base layer holds a dpkg database: its package reaches the image records.
    oci = next(r for r in records if r["kind"] == "image" and "test/oci:1.0" in str(r["image"]))
    assert oci["packages"] == 1 and oci["os"]["family"] == "debian"  # type: ignore[index]
    # Each distinct blob (layer or config) was downloaded once, though tags share them.
    assert blobs and max(collections.Counter(blobs).values()) == 1
    assert summary["layers"]["fetched"] == 4  # type: ignore[index]  # base, base_arm, app, big


def test_recrawl_of_an_unchanged_registry_fetches_no_blob_and_no_manifest(
    db: Path, first_crawl: tuple[Path, list[Record], list[str]], plain_proxy: FaultProxy
) -> None:
    """A second crawl with the same state costs one HEAD per tag: no blob, no manifest GET,
    and writes the same records (timestamps aside)."""
    state, records, _ = first_crawl
    code, again, err = run(db, "crawl", plain_proxy.url, "--state", str(state))
    assert code == 0, err
    assert blob_gets(plain_proxy) == []
    assert not [s for s in plain_proxy.seen if s.method == "GET" and "/manifests/" in s.path_qs]
    heads = [s for s in plain_proxy.seen if s.method == "HEAD"]
    assert len(heads) == again[-1]["tags"]
    assert again[-1]["layers"]["fetched"] == 0  # type: ignore[index]
    assert stable(again[:-1]) == stable(records[:-1])


def test_repo_tag_and_platform_filters_narrow_the_crawl(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """--repo/--exclude-repo/--tag globs choose repositories and tags; --platform one child."""
    state = str(tmp_path / "s.lmdb")
    h = host(plain_proxy)
    code, records, err = run(
        db, "crawl", plain_proxy.url, "--state", state, "--repo", "test/*",
        "--exclude-repo", "test/list", "--tag", "1.*", "--platform", "linux/arm64",
    )  # fmt: skip
    assert code == 0, err
    # test/oci and test/docker are amd64 only: skipped by the platform filter, not errors.
    assert refs_of(records) == [(f"{h}/test/multi:1.0", "linux/arm64/v8")]
    assert records[-1]["tags"] == 4  # oci 1.0, 1.1; docker 1.0; multi 1.0
    assert not any("/page/" in s.path_qs or "/test/list/" in s.path_qs for s in plain_proxy.seen)
    # A literal --repo needs no catalog; --max-tags keeps the first N tags.
    plain_proxy.reset()
    code, records, err = run(
        db, "crawl", plain_proxy.url, "--state", state, "--repo", "test/oci", "--max-tags", "2"
    )
    assert code == 0, err
    assert refs_of(records) == [
        (f"{h}/test/oci:1.0", "linux/amd64"),
        (f"{h}/test/oci:1.1", "linux/amd64"),
    ]
    assert not any("_catalog" in s.path_qs for s in plain_proxy.seen)


def test_corrupt_blob_is_an_error_record_and_the_crawl_goes_on(
    db: Path, plain_proxy: FaultProxy, images: ImageSet, tmp_path: Path
) -> None:
    """A layer whose bytes do not match its digest gives an error record (stage blob, not
    retryable) and no image record for that image; the other images are reported, and the
    bad layer is not cached (a later crawl fetches it again)."""
    docker = msgspec.json.decode(images.tags["test/docker"]["1.0"].data)
    app = docker["layers"][1]["digest"]
    plain_proxy.reset(Fault(f"GET /v2/test/docker/blobs/{app}", "corrupt", times=-1))
    state = str(tmp_path / "s.lmdb")
    args = ("--state", state, "--repo", "test/docker", "--repo", "test/multi")
    code, records, err = run(db, "crawl", plain_proxy.url, *args)
    assert code == 0, err
    h = host(plain_proxy)
    assert refs_of(records) == [
        (f"{h}/test/multi:1.0", "linux/amd64"),
        (f"{h}/test/multi:1.0", "linux/arm64/v8"),
    ]
    errors = [r for r in records if r["kind"] == "error"]
    assert [
        (e["stage"], e["error"], e["retryable"]) for e in errors if e["stage"] != "analyzer"
    ] == [("blob", "digest_mismatch", False)]
    bad = next(e for e in errors if e["stage"] == "blob")
    assert app in str(bad["message"])
    assert bad["image"]["ref"] == f"{h}/test/docker:1.0"  # type: ignore[index]
    assert records[-1]["errors"] == len(errors)
    plain_proxy.reset()
    code, records, err = run(db, "crawl", plain_proxy.url, *args)
    assert code == 0, err
    assert blob_gets(plain_proxy) == [app]
    assert (f"{h}/test/docker:1.0", "linux/amd64") in refs_of(records)


def test_scan_reads_a_registry_reference(
    db: Path, plain_registry: RegistryServer, images: ImageSet, tmp_path: Path
) -> None:
    """``regsweep scan HOST:PORT/REPO:TAG`` (bare host with --insecure, ``http://`` and
    ``docker://`` forms, ``@digest``) scans every platform of a registry image."""
    h = plain_registry.url.removeprefix("http://")
    state = ("--state", str(tmp_path / "s.lmdb"))
    code, records, err = run(db, "scan", *state, "--insecure", f"{h}/test/multi:1.0")
    assert code == 0, err
    assert refs_of(records) == [
        (f"{h}/test/multi:1.0", "linux/amd64"),
        (f"{h}/test/multi:1.0", "linux/arm64/v8"),
    ]
    assert records[-1]["kind"] == "summary" and records[-1]["images"] == 2
    digest = images.tags["test/docker"]["1.0"].digest
    code, records, err = run(
        db, "scan", *state, f"http://{h}/test/docker@{digest}",
        "--insecure", f"docker://{h}/test/list:1.0",
    )  # fmt: skip
    assert code == 0, err
    seen = [r["image"] for r in records if r["kind"] == "image"]
    assert [(i["digest"], i["tag"]) for i in seen][0] == (digest, None)  # type: ignore[index]
    assert [i["platform"] for i in seen] == ["linux/amd64", "linux/amd64", "linux/arm64/v8"]  # type: ignore[index]
    # A missing tag is an error record, not a crash.
    code, records, _ = run(db, "scan", *state, "--insecure", f"{h}/test/docker:nope")
    assert code == 0
    assert [(r["stage"], r["error"]) for r in records if r["kind"] == "error"] == [
        ("manifest", "not_found")
    ]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _start_slow_crawl(
    db: Path, proxy: FaultProxy, state: Path, out: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """A crawl of the 12 page/ repositories, one at a time, 0.25 s per manifest."""
    proxy.reset(Fault(r"GET /v2/page/r\d+/manifests/", "slow", times=-1, delay=0.25))
    with (state.parent / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            [REGSWEEP, "crawl", "--db", str(db), proxy.url, "--state", str(state),
             "-o", str(out), "--repo", "page/*", "--concurrency", "1",
             "--checkpoint-every", "0", *extra],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip


def _wait_for_lines(proc: subprocess.Popen[bytes], out: Path, n: int) -> None:
    deadline = time.monotonic() + 20
    while len(_lines(out)) < n:
        assert proc.poll() is None, "the crawl ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _assert_summary_is_the_whole_files(records: list[dict[str, object]], runs: int) -> None:
    # A resumed crawl's summary counts every record in the file, not only its own run's.
    summary = records[-1]
    kinds = [r["kind"] for r in records[:-1]]
    assert summary["runs"] == runs
    for field, kind in (
        ("images", "image"),
        ("packages", "package"),
        ("vulnerabilities", "vulnerability"),
        ("misconfigurations", "misconfiguration"),
        ("errors", "error"),
    ):
        assert summary[field] == kinds.count(kind), (field, summary)


def test_kill_9_then_rerun_writes_every_record_exactly_once(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A crawl killed with SIGKILL mid-way, then run again with the same command, leaves an
    output with every image record once, no line twice, one summary; the rerun does not fetch
    the manifests of the tags finished before the kill (at most the one in flight)."""
    state, out = tmp_path / "s.lmdb", tmp_path / "out.ndjson"
    proc = _start_slow_crawl(db, plain_proxy, state, out)
    _wait_for_lines(proc, partial_path(out), 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not out.exists()  # only a complete crawl's output is put in place
    partial = _lines(partial_path(out))
    before = {re.search(rb"page/r\d\d", line).group().decode() for line in partial}  # type: ignore[union-attr]
    plain_proxy.wait_idle()
    plain_proxy.reset()
    code, _, err = run(
        db, "crawl", plain_proxy.url, "--state", str(state), "-o", str(out), "--repo", "page/*"
    )
    assert code == 0, err
    lines = _lines(out)
    assert len(lines) == len(set(lines))
    records = [msgspec.json.decode(line) for line in lines]
    refs = [ref for ref, _ in refs_of(records)]
    assert len(refs) == 12 and len(set(refs)) == 12
    assert [r["kind"] for r in records].count("summary") == 1 and records[-1]["kind"] == "summary"
    _assert_summary_is_the_whole_files(records, runs=2)
    assert records[-1]["images"] == 12
    refetched = {
        m.group() for s in plain_proxy.seen if (m := re.search(r"page/r\d\d", s.path_qs))
        and "/manifests/" in s.path_qs
    }  # fmt: skip
    assert len(before & refetched) <= 1, (before, refetched)


def test_sigterm_checkpoints_and_exits_143_without_a_summary(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """SIGTERM stops the crawl cleanly: exit 143, whole lines only, no summary; the rerun
    completes the output (each image once, one summary)."""
    state, out = tmp_path / "s.lmdb", tmp_path / "out.ndjson"
    proc = _start_slow_crawl(db, plain_proxy, state, out)
    _wait_for_lines(proc, partial_path(out), 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 143, (tmp_path / "stderr.txt").read_text()
    assert not out.exists()
    data = partial_path(out).read_bytes()
    assert data.endswith(b"\n")
    assert b'"kind":"summary"' not in data
    plain_proxy.wait_idle()
    plain_proxy.reset()
    code, _, err = run(
        db, "crawl", plain_proxy.url, "--state", str(state), "-o", str(out), "--repo", "page/*"
    )
    assert code == 0, err
    records = [msgspec.json.decode(line) for line in _lines(out)]
    assert len(refs_of(records)) == 12 == len(set(refs_of(records)))
    assert records[-1]["kind"] == "summary"
    _assert_summary_is_the_whole_files(records, runs=2)


def _crawl_page(db: Path, proxy: FaultProxy, state: Path, out: Path) -> tuple[int, str]:
    code, _, err = run(
        db, "crawl", proxy.url, "--state", str(state), "-o", str(out), "--repo", "page/*",
        "--checkpoint-every", "0",
    )  # fmt: skip
    return code, err


def test_a_second_crawl_into_the_same_file_is_refused(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """While a crawl writes ``-o FILE``, another into the same file (same command, or other
    filters) exits 2 at once without touching it; the first completes whole."""
    state, out = tmp_path / "s.lmdb", tmp_path / "out.ndjson"
    proc = _start_slow_crawl(db, plain_proxy, state, out)
    _wait_for_lines(proc, partial_path(out), 2)
    for extra in ((), ("--max-tags", "1")):
        code, _, err = run(
            db, "crawl", plain_proxy.url, "--state", str(state), "-o", str(out),
            "--repo", "page/*", *extra,
        )  # fmt: skip
        assert code == 2, err
        assert "being written by another run" in err and "Traceback" not in err
    assert proc.wait(30) == 0, (tmp_path / "stderr.txt").read_text()
    records = [msgspec.json.decode(line) for line in _lines(out)]
    assert len(refs_of(records)) == 12 == len(set(refs_of(records)))
    _assert_summary_is_the_whole_files(records, runs=1)


def test_a_rerun_killed_early_leaves_the_previous_complete_output(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A completed ``crawl -o FILE`` run again: the old result stays until the new one is
    complete, so a rerun killed early does not leave an empty or half file in its place."""
    state, out = tmp_path / "s.lmdb", tmp_path / "out.ndjson"
    code, err = _crawl_page(db, plain_proxy, state, out)
    assert code == 0, err
    complete = out.read_bytes()
    assert complete.endswith(b"\n") and b'"kind":"summary"' in complete
    proc = _start_slow_crawl(db, plain_proxy, state, out)
    _wait_for_lines(proc, partial_path(out), 2)
    assert out.read_bytes() == complete
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert out.read_bytes() == complete


def test_disk_full_is_a_clear_error_and_the_rerun_resumes_exactly(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path, small_disk: Path
) -> None:
    """The output's disk fills mid-crawl: exit 2 with one line naming the file and the
    reason (no traceback); with space freed, the same command resumes and the output has
    every record once, as a crawl that never failed."""
    code, err = _crawl_page(db, plain_proxy, tmp_path / "ref.lmdb", tmp_path / "ref.ndjson")
    assert code == 0, err
    reference = (tmp_path / "ref.ndjson").read_bytes()
    assert len(reference) > os.statvfs(small_disk).f_frsize
    filler = fill_but_one_page(small_disk)
    state, out = tmp_path / "s.lmdb", small_disk / "out.ndjson"
    code, err = _crawl_page(db, plain_proxy, state, out)
    assert code == 2, err
    assert "Traceback" not in err
    assert f"cannot write {partial_path(out)}: No space left on device" in err, err
    assert not out.exists() and 0 < partial_path(out).stat().st_size < len(reference)
    filler.unlink()
    code, err = _crawl_page(db, plain_proxy, state, out)
    assert code == 0, err
    records = [msgspec.json.decode(line) for line in _lines(out)]
    assert len(_lines(out)) == len(set(_lines(out)))
    reference_records = [msgspec.json.decode(line) for line in reference.splitlines()]
    assert stable(records[:-1]) == stable(reference_records[:-1])
    _assert_summary_is_the_whole_files(records, runs=2)


def test_a_crawl_into_a_fifo_writes_through_it(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """``crawl -o FIFO`` (as ``-o /dev/stdout`` or a device): written through, nothing to
    resume or replace; the FIFO stays one."""
    import stat
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, err = _crawl_page(db, plain_proxy, tmp_path / "s.lmdb", fifo)
    reader.join(30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and not partial_path(fifo).exists()
    records = [msgspec.json.decode(line) for line in got[0].splitlines()]
    assert len(refs_of(records)) == 12 and records[-1]["kind"] == "summary"


def test_a_full_disk_under_the_state_store_only_costs_the_cache(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path, small_disk: Path
) -> None:
    """The state store cannot grow (its disk is full): it is bypassed for the run with one
    warning (not moved aside: nothing in it is damaged), and the crawl still writes every
    record, as with a store."""
    code, err = _crawl_page(db, plain_proxy, tmp_path / "ref.lmdb", tmp_path / "ref.ndjson")
    assert code == 0, err
    reference = [msgspec.json.decode(line) for line in _lines(tmp_path / "ref.ndjson")]
    # Room to create the store, not to fill it.
    (small_disk / "filler").write_bytes(b"\0" * (1024 - 64) * 1024)
    out = tmp_path / "out.ndjson"
    code, err = _crawl_page(db, plain_proxy, small_disk / "s.lmdb", out)
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count('"state_store_damaged"') == 1 and "No space left on device" in err, err
    assert "moved aside" not in err and not list(small_disk.glob("s.lmdb.corrupt-*"))
    records = [msgspec.json.decode(line) for line in _lines(out)]
    assert stable(records[:-1]) == stable(reference[:-1])
    _assert_summary_is_the_whole_files(records, runs=1)


@pytest.mark.parametrize("fmt", ["cyclonedx", "sarif"])
def test_sigint_leaves_a_whole_document_that_says_it_is_incomplete(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path, fmt: str
) -> None:
    """A document crawl stopped by SIGINT: exit 130 and a valid document that says it is
    not the whole inventory (a BOM taken for whole would replace a project's components)."""
    from tests.formats import valid_cyclonedx, valid_sarif

    state, out = tmp_path / "s.lmdb", tmp_path / "out.json"
    proc = _start_slow_crawl(db, plain_proxy, state, out, "--format", fmt)
    deadline = time.monotonic() + 20
    # Mid-crawl: a few of the 12 slow manifests served (0.25 s each, one at a time).
    while sum("/manifests/" in s.path_qs for s in plain_proxy.seen) < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130, (tmp_path / "stderr.txt").read_text()
    # Beside the output, which only a complete document replaces.
    assert not out.exists()
    if fmt == "cyclonedx":
        bom = valid_cyclonedx(partial_path(out).read_bytes())
        assert bom["components"] and bom["properties"][-1]["name"] == "regsweep:incomplete"
    else:
        [run_] = valid_sarif(partial_path(out).read_bytes())["runs"]
        assert run_["invocations"][0]["executionSuccessful"] is False
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_refused_catalog_is_a_clear_usage_error(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A registry that refuses /v2/_catalog: exit 2 with a message that says to use --repo."""
    plain_proxy.reset(Fault(r"GET /v2/_catalog", "respond", status=403, times=-1))
    code, records, err = run(db, "crawl", plain_proxy.url, "--state", str(tmp_path / "s"))
    assert code == 2 and records == []
    assert "--repo" in err and "refuses" in err
    assert os.path.exists(tmp_path / "s")  # the store opened; nothing else happened


def test_scan_over_tls_with_ca_file_and_password_stdin(
    db: Path, tls_registry: RegistryServer, tmp_path: Path
) -> None:
    """A TLS registry with basic auth: --ca-file verifies it, --username/--password-stdin log
    in; without the CA file the certificate is refused (an error record, not a crash)."""
    assert tls_registry.ca_file is not None
    ref = tls_registry.url.removeprefix("https://") + "/test/docker:1.0"
    args = [REGSWEEP, "scan", "--db", str(db), "--state", str(tmp_path / "s.lmdb")]
    login = ["--username", USER, "--password-stdin"]
    proc = subprocess.run(
        [*args, "--ca-file", str(tls_registry.ca_file), *login, ref],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    assert refs_of(records) == [(ref, "linux/amd64")]
    proc = subprocess.run(
        [*args, *login, ref], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    errors = [
        (r["stage"], str(r["error"]).replace("_", "")) for r in records if r["kind"] == "error"
    ]
    assert errors == [("auth", "tlserror")]


def test_vanished_tag_is_an_error_record_and_the_crawl_goes_on(
    db: Path, plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A tag listed but gone when its manifest is fetched (404) is an error record
    (stage manifest, not_found); the repository's other tags are still reported."""
    plain_proxy.reset(Fault(r"GET /v2/test/oci/manifests/1\.1", "respond", status=404, times=-1))
    code, records, err = run(
        db, "crawl", plain_proxy.url, "--state", str(tmp_path / "s"), "--repo", "test/oci"
    )
    assert code == 0, err
    h = host(plain_proxy)
    assert refs_of(records) == [
        (f"{h}/test/oci:1.0", "linux/amd64"),
        (f"{h}/test/oci:latest", "linux/amd64"),
    ]
    errors = [r for r in records if r["kind"] == "error"]
    assert [(e["ref"], e["stage"], e["error"]) for e in errors] == [
        (f"{h}/test/oci:1.1", "manifest", "not_found")
    ]


def _in_process(
    proxy: FaultProxy,
    store: StateStore,
    refs: list[tuple[str, str]],
    platform: Platform | None = None,
) -> tuple[list[RefResult], Counters]:
    """``Crawler.scan_ref`` on each ``(repository, tag or digest)`` through ``proxy``, with
    ``store`` (what ``regsweep crawl`` does per tag, without matching and output)."""
    executor = ThreadPoolExecutor(max_workers=4)

    async def main() -> tuple[list[RefResult], Counters]:
        async with aiohttp.ClientSession() as session:
            registry = Registry(session, proxy.url, use_docker_config=False)
            with StateWriter(store) as writer:
                crawler = Crawler(
                    registry,
                    default_analyzers(),
                    store=store,
                    writer=writer,
                    platform=platform,
                    executor=executor,
                )
                results = [
                    await crawler.scan_ref(repo, ref, ref_text=f"{repo}:{ref}")
                    for repo, ref in refs
                ]
                await crawler.flush()
            return results, crawler.counters

    try:
        return uvloop.run(main())
    finally:
        executor.shutdown()


def test_warm_scan_comes_from_the_store_and_a_moved_tag_is_followed(
    plain_proxy: FaultProxy, images: ImageSet, tmp_path: Path
) -> None:
    """A warm re-scan costs one HEAD per tag (none for index children, nothing for a digest
    reference), writes nothing to the store, and gives the same results as the cold scan,
    from the walk recorded per manifest digest and platform filter.
    A tag whose stored digest is no longer what the registry says is never answered from
    the stale digest: it follows the HEAD (from the store when that image is known, else
    by fetching it) and the tag entry is updated."""
    oci_10 = images.tags["test/oci"]["1.0"].digest
    docker = images.tags["test/docker"]["1.0"].digest
    refs = [("test/oci", "1.0"), ("test/docker", "1.0"), ("test/multi", "1.0")]
    store = StateStore(tmp_path / "s.lmdb")
    h = host(plain_proxy)
    cold, counters = _in_process(plain_proxy, store, refs)
    assert counters.manifests_fetched == 5  # two images, the index and its two platforms
    assert [len(r.images) for r in cold] == [1, 1, 2] and not any(r.failures for r in cold)
    assert store.counts()["walks"] == 3  # each clean walk is recorded
    tag_entries = {t: store.get_tag(f"{h}/{r}:{t}") for r, t in refs}

    plain_proxy.reset()
    warm, counters = _in_process(plain_proxy, store, [*refs, ("test/oci", oci_10)])
    assert [(s.method, s.path_qs) for s in plain_proxy.seen] == [("GET", "/v2/")] + [
        ("HEAD", f"/v2/{r}/manifests/{t}") for r, t in refs
    ]
    assert counters.manifests_fetched == 0 and counters.manifests_cached == 6
    assert counters.images_cached == 5 and counters.images_analysed == 0
    assert msgspec.to_builtins(warm[:3]) == msgspec.to_builtins(cold)
    assert any("attestation manifest" in n for n in warm[2].notes)
    assert warm[3].digest == oci_10 and [i.image.digest for i in warm[3].images] == [oci_10]
    # Nothing rewritten: the tag entries still carry the time of the first crawl.
    assert {t: store.get_tag(f"{h}/{r}:{t}") for r, t in refs} == tag_entries

    # Another platform filter is another walk: the first time it is walked again from the
    # document cache (no GET) and recorded, then it comes from the store like the others.
    arm = Platform(os="linux", architecture="arm64", variant="v8")
    for n in (1, 2):
        plain_proxy.reset()
        (only_arm,), counters = _in_process(plain_proxy, store, [("test/multi", "1.0")], arm)
        assert [s.method for s in plain_proxy.seen] == ["GET", "HEAD"]
        assert counters.manifests_cached == 2 and counters.manifests_fetched == 0, n
        assert [i.image.platform for i in only_arm.images] == ["linux/arm64/v8"]
        assert msgspec.to_builtins(only_arm.images) == msgspec.to_builtins(cold[2].images[1:])
        assert any("is not linux/arm64/v8" in note for note in only_arm.notes)
        assert store.counts()["walks"] == 4

    # The store says test/oci:1.0 is the test/docker image (fully cached, so it would
    # resolve): the HEAD says otherwise, and the registry wins.
    with StateWriter(store) as writer:
        writer.submit(store.put_tag, f"{h}/test/oci:1.0", docker).result()
    plain_proxy.reset()
    moved, counters = _in_process(plain_proxy, store, [("test/oci", "1.0")])
    assert [s.method for s in plain_proxy.seen] == ["GET", "HEAD"]  # ping, HEAD: from store
    assert moved[0].digest == oci_10 and [i.image.digest for i in moved[0].images] == [oci_10]
    assert msgspec.to_builtins(moved) == msgspec.to_builtins(cold[:1])
    entry = store.get_tag(f"{h}/test/oci:1.0")
    assert entry is not None and entry.digest == oci_10

    # Moved to an image the store has never seen: fetched.
    fresh = StateStore(tmp_path / "fresh.lmdb")
    with StateWriter(fresh) as writer:
        writer.submit(fresh.put_tag, f"{h}/test/oci:1.0", docker).result()
    plain_proxy.reset()
    refetched, counters = _in_process(plain_proxy, fresh, [("test/oci", "1.0")])
    gets = [s.path_qs for s in plain_proxy.seen if s.method == "GET"]
    assert "/v2/test/oci/manifests/1.0" in gets and counters.manifests_fetched == 1
    assert msgspec.to_builtins(refetched) == msgspec.to_builtins(cold[:1])
    entry = fresh.get_tag(f"{h}/test/oci:1.0")
    assert entry is not None and entry.digest == oci_10

    # What answers a warm scan is the recorded walk itself (plus the images' facts): a
    # walk recorded with one more note comes back with it.
    walk = store.get_walk(oci_10, analyzer_set_hash(default_analyzers()), "")
    assert walk is not None and walk.manifests == 1 and len(walk.images) == 1
    with StateWriter(store) as writer:
        marked = msgspec.structs.replace(walk, notes=[*walk.notes, "marker"])
        writer.submit(store.put_walk, marked).result()
    plain_proxy.reset()
    (again,), counters = _in_process(plain_proxy, store, [("test/oci", "1.0")])
    assert again.notes == [*cold[0].notes, "marker"] and counters.images_cached == 1

    fresh.close()
    store.close()


class _StallingRegistry(Registry):
    """A real client whose blob stream stalls after the first chunk of one blob (so that a
    test can cancel while a scanning thread is reading that layer)."""

    stall: str = ""
    stalled: asyncio.Event

    async def get_blob(
        self, repo: str, digest: str, *, max_bytes: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        async with aclosing(super().get_blob(repo, digest, max_bytes=max_bytes)) as chunks:
            async for chunk in chunks:
                yield chunk
                if digest == self.stall:
                    self.stalled.set()
                    await asyncio.sleep(60)


def test_cancelled_crawl_leaves_no_slot_thread_or_write_behind(
    plain_proxy: FaultProxy, images: ImageSet, tmp_path: Path
) -> None:
    """Cancelling a scan while a layer is being streamed into its scanning thread frees every
    registry slot, ends the thread (the pipe is aborted), leaves nothing in flight, and
    caches neither the half-read layer nor the image."""
    oci = msgspec.json.decode(images.tags["test/oci"]["1.0"].data)
    big = oci["layers"][2]["digest"]
    store = StateStore(tmp_path / "s.lmdb")
    writer = StateWriter(store)
    executor = ThreadPoolExecutor(max_workers=4)

    async def main() -> tuple[int, int]:
        async with aiohttp.ClientSession() as session:
            registry = _StallingRegistry(session, plain_proxy.url, concurrency=2)
            registry.stall, registry.stalled = big, asyncio.Event()
            crawler = Crawler(
                registry, default_analyzers(), store=store, writer=writer, executor=executor
            )
            task = asyncio.create_task(crawler.scan_ref("test/oci", "1.0", ref_text="x"))
            await asyncio.wait_for(registry.stalled.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await crawler.flush()
            return registry._sem._value, len(crawler._layers) + len(crawler._images)

    free, in_flight = uvloop.run(main())
    # The scanning thread ends by itself: shutting the pool down does not hang.
    stopper = threading.Thread(target=executor.shutdown, kwargs={"wait": True})
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()
    writer.close()
    assert free == 2 and in_flight == 0
    # No request is left open: the registry side sees none in flight.
    plain_proxy.wait_idle(10)
    assert plain_proxy.in_flight == 0
    # No LMDB transaction is left open: no reader slot holds a snapshot, and a write
    # transaction can begin at once (one left open would block it).
    readers = store._env.readers().splitlines()[1:]
    assert [r for r in readers if r.split()[-1] != "-"] == [], readers
    began = threading.Event()

    def write_txn() -> None:
        with store._env.begin(write=True):
            began.set()

    t = threading.Thread(target=write_txn, daemon=True)
    t.start()
    assert began.wait(5), "a write transaction was left open"
    t.join()
    assert store.get_layer(big, analyzer_set_hash(default_analyzers())) is None
    assert store.counts()["images"] == 0
    store.close()


@pytest.mark.parametrize(
    ("text", "url", "repository", "reference"),
    [
        ("127.0.0.1:5000/test/oci:1.0", "127.0.0.1:5000", "test/oci", "1.0"),
        ("docker://reg.example/a/b", "reg.example", "a/b", "latest"),
        ("http://localhost:5000/a:v1", "http://localhost:5000", "a", "v1"),
        ("https://reg.example:8443/x/y:z", "https://reg.example:8443", "x/y", "z"),
        (f"localhost/a@sha256:{'a' * 64}", "localhost", "a", f"sha256:{'a' * 64}"),
    ],
)
def test_registry_references_parse(text: str, url: str, repository: str, reference: str) -> None:
    """HOST[:PORT]/REPO[:TAG|@DIGEST] with optional docker:// or http(s):// prefixes."""
    assert looks_like_registry_ref(text)
    ref = parse_registry_ref(text)
    assert (ref.url, ref.repository, ref.reference) == (url, repository, reference)


@pytest.mark.parametrize(
    "text", ["oci:/srv/img:v1", "docker-archive:/tmp/a.tar", "ftp:/x", "library/debian:12"]
)
def test_local_and_hub_style_references_are_not_registry_refs(text: str) -> None:
    """Local sources stay local; a first component without a dot, port or localhost is not a
    registry host (Docker Hub short names are not guessed)."""
    assert not looks_like_registry_ref(text)


@pytest.mark.parametrize(
    "text", ["reg.example/Upper:1", "reg.example/a@sha256:xyz", "reg.example/a:bad tag", "x.y/"]
)
def test_malformed_registry_references_are_refused(text: str) -> None:
    """Upper-case repositories, bad digests and tags, an empty path: InvalidReference."""
    with pytest.raises(InvalidReference):
        parse_registry_ref(text)


_RENDER_FAULT = """
import sys
import regsweep.matcher.judge as judge
from regsweep.cli.main import main

real = judge._judge

def broken(facts, *args, **kwargs):
    if "/test/oci:" in facts.image.ref:
        raise RuntimeError("a bug in matching or checks")
    return real(facts, *args, **kwargs)

judge._judge = broken
main(sys.argv[1:])
"""


def test_a_bug_while_rendering_one_image_is_an_error_record_and_the_crawl_goes_on(
    db: Path, plain_proxy: FaultProxy, images: ImageSet, tmp_path: Path
) -> None:
    """An exception from matching or the checks for one image (a bug) must not end the crawl:
    that tag gets an ``error`` record (stage ``match``) and every other tag its records."""
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER_FAULT, "crawl", "--db", str(db), plain_proxy.url,
         "--state", str(tmp_path / "s.lmdb")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    h = host(plain_proxy)
    errors = [r for r in records if r["kind"] == "error" and r["stage"] == "match"]
    assert {(e["ref"], e["error"]) for e in errors} == {
        (f"{h}/test/oci:{tag}", "runtime_error") for tag in images.tags["test/oci"]
    }
    crawled = {ref.rsplit(":", 1)[0] for ref, _ in refs_of(records)}
    assert crawled == {f"{h}/{repo}" for repo in images.tags if repo != "test/oci"}
    assert records[-1]["kind"] == "summary" and records[-1]["errors"] >= len(errors)


def _dsa(advisory_id: str, fixed: str) -> bytes:
    """An OSV advisory for Debian 12's base-files (12.4 in the registry's Debian images)."""
    return msgspec.json.encode(
        {
            "id": advisory_id, "modified": "2026-12-01T00:00:00Z",
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": "base-files"},
                "ranges": [{"type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }],
        }
    )  # fmt: skip


def _index(tmp_path: Path, name: str, advisories: dict[str, str]) -> Path:
    """The bundled feeds plus ``advisories`` (id → fixed version), built by ``db build``."""
    extra = tmp_path / f"extra-{name}"
    extra.mkdir()
    for advisory_id, fixed in advisories.items():
        (extra / f"{advisory_id}.json").write_bytes(_dsa(advisory_id, fixed))
    path = tmp_path / f"{name}.lmdb"
    adv = paths.DATA / "advisories"
    subprocess.run(
        [REGSWEEP, "db", "build", "--db", str(path), str(adv / "osv"), str(adv / "secdb"),
         str(extra)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def test_rematch_judges_the_stored_images_as_a_fresh_crawl_with_that_index(
    _plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """``regsweep rematch`` after a crawl: no registry traffic, and for every tag the crawl
    stored, the records a fresh crawl with the same index writes; with another index, those
    of a fresh crawl with that one. A tag the crawl could not store is an error record
    saying to crawl it again.

    ``rematch --changes`` writes what changed since the findings the crawl (then each
    rematch) stored: nothing with the crawl's index; with an index where one advisory is
    fixed in the installed version, one is gone and one is new, a ``resolved`` record
    (``fixed_in_index``, ``withdrawn``) per image for the first two and a ``vulnerability``
    record for the third, once: an image that could not be judged resolves nothing until
    it can, and a second run writes no finding."""
    _plain_proxy.wait_idle()
    _plain_proxy.reset()
    state_path = tmp_path / "s.lmdb"
    # A: two advisories for base-files 12.4. B: the first fixed in 12.4, the second
    # withdrawn, a third one new.
    index_a = _index(tmp_path, "a", {"DSA-9990-1": "12.5", "DSA-9991-1": "12.5"})
    index_b = _index(tmp_path, "b", {"DSA-9990-1": "12.4", "DSA-9999-1": "12.5"})

    def crawl(index: Path, state_at: Path) -> list[Record]:
        out = tmp_path / f"crawl-{index.name}-{state_at.name}.ndjson"
        code, _, err = run(index, "crawl", _plain_proxy.url, "--packages", "--state",
                           str(state_at), "-o", str(out))  # fmt: skip
        assert code == 0, err
        return [msgspec.json.decode(line) for line in _lines(out)]

    def rematch(index: Path, *args: str, faulty: bool = False) -> list[Record]:
        argv = ["rematch", "--db", str(index), *args, "--state", str(state_path)]
        cmd = [sys.executable, "-c", _RENDER_FAULT, *argv] if faulty else [REGSWEEP, *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [msgspec.json.decode(line) for line in proc.stdout.splitlines()]

    def by_tag(records: list[Record]) -> dict[object, list[Record]]:
        out: dict[object, list[Record]] = {}
        for r in stable([r for r in records if r["kind"] != "summary"]):
            out.setdefault((r.get("image") or {}).get("ref") or r.get("ref"), []).append(r)  # type: ignore[union-attr]
        return out

    def findings(records: list[Record], kind: str) -> set[tuple[object, ...]]:
        """``(ref, platform, advisory id, reason)`` of the records of ``kind``."""
        return {
            (r["image"]["ref"], r["image"]["platform"], r["advisory"]["id"], r.get("reason"))  # type: ignore[index]
            for r in records
            if r["kind"] == kind
        }

    first = crawl(index_a, state_path)
    crawled = by_tag(first)
    # Every Debian image (base-files 12.4) has both of A's findings.
    debian = {(ref, p) for ref, p, _, _ in findings(first, "vulnerability")}
    assert len(debian) >= 5
    assert findings(first, "vulnerability") == {
        (*i, a, None) for i in debian for a in ("DSA-9990-1", "DSA-9991-1")
    }
    _plain_proxy.reset()
    # The crawl stored what it reported: with its own index, nothing changed.
    same = rematch(index_a, "--changes")
    assert {r["kind"] for r in same} <= {"error", "summary"}
    assert same[-1]["kind"] == "summary" and same[-1]["resolved"] == 0
    again = by_tag(rematch(index_a, "--packages"))
    assert not _plain_proxy.seen  # the store alone
    stored = {t for t, recs in crawled.items() if not any(r["kind"] == "error" for r in recs)}
    assert len(stored) >= 10
    for t in sorted(stored):  # type: ignore[type-var]
        assert again[t] == crawled[t], t
    for tag in set(again) - stored:
        assert {r["error"] for r in again[tag] if r["kind"] == "error"} == {"not_stored"}

    # Index B, while the images of test/oci cannot be judged (a bug in the judge): theirs
    # are error records and keep their findings; every other image's changes are written.
    oci = {i for i in debian if "/test/oci:" in str(i[0])}
    assert oci and oci != debian
    changed = rematch(index_b, "--changes", faulty=True)
    assert {r["kind"] for r in changed} == {"vulnerability", "resolved", "error", "summary"}
    want_resolved = {(*i, "DSA-9990-1", "fixed_in_index") for i in debian - oci} | {
        (*i, "DSA-9991-1", "withdrawn") for i in debian - oci
    }
    assert findings(changed, "resolved") == want_resolved
    assert findings(changed, "vulnerability") == {(*i, "DSA-9999-1", None) for i in debian - oci}
    assert {(r["ref"], r["stage"]) for r in changed if r["kind"] == "error"} >= {
        (ref, "match") for ref, _ in oci
    }
    summary = changed[-1]
    assert summary["kind"] == "summary"
    assert (summary["vulnerabilities"], summary["resolved"]) == (
        len(debian - oci), len(want_resolved),
    )  # fmt: skip
    # Judged again: only test/oci's changes are left to write, then nothing.
    rest = rematch(index_b, "--changes")
    assert findings(rest, "resolved") == {
        (*i, a, why) for i in oci for a, why in
        (("DSA-9990-1", "fixed_in_index"), ("DSA-9991-1", "withdrawn"))
    }  # fmt: skip
    assert findings(rest, "vulnerability") == {(*i, "DSA-9999-1", None) for i in oci}
    quiet = rematch(index_b, "--changes")
    assert {r["kind"] for r in quiet} <= {"error", "summary"}
    assert quiet[-1]["vulnerabilities"] == quiet[-1]["resolved"] == 0

    # All records with index B: those of a fresh crawl with it.
    fresh = by_tag(crawl(index_b, tmp_path / "fresh.lmdb"))
    rematched = by_tag(rematch(index_b, "--packages"))
    for t in sorted(stored):  # type: ignore[type-var]
        assert rematched[t] == fresh[t], t
    new = [r for t in stored for r in rematched[t] if r["kind"] == "vulnerability"]
    assert new and {r["advisory"]["id"] for r in new} == {"DSA-9999-1"}  # type: ignore[index]
