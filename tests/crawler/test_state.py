"""The crawl state store: round-trips, invalidation, resumable output, LMDB's rules."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
import structlog

from regsweep.crawler import state
from regsweep.crawler.analyzers.interface import FileFacts, Found
from regsweep.crawler.layers import HardLink, LayerFacts
from regsweep.crawler.outfile import partial_path
from regsweep.crawler.state import (
    Checkpoint,
    Document,
    OutputMismatch,
    ResumableOutput,
    StackFacts,
    StateError,
    StateStore,
    StateWriter,
    StoredImage,
    analyzer_set_hash,
    stack_key,
)
from regsweep.matcher.changes import Finding, ImageFindings, image_key
from regsweep.matcher.checks.scrub import SCRUB
from regsweep.matcher.facts import Problem
from regsweep.matcher.records import Advisory, ImageRef, OsInfo, Package
from tests import paths

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LAYER = "sha256:" + "a" * 64


class _Dpkg:
    NAME: ClassVar[str] = "dpkg"
    VERSION: ClassVar[int] = 1


class _Apk:
    NAME: ClassVar[str] = "apk"
    VERSION: ClassVar[int] = 3


class _DpkgBumped:
    NAME: ClassVar[str] = "dpkg"
    VERSION: ClassVar[int] = 2


def _digest(i: int) -> str:
    return f"sha256:{i:064x}"


def _image(i: int, analyzers: str = "h", packages: int = 2) -> StoredImage:
    return StoredImage(
        image=ImageRef(
            ref=f"127.0.0.1:5000/app{i}:v1",
            registry="127.0.0.1:5000",
            repository=f"app{i}",
            tag="v1",
            digest=_digest(i),
            platform="linux/amd64",
        ),
        layers=[LAYER, _digest(10_000 + i)],
        stack=stack_key(analyzers, [LAYER, _digest(10_000 + i)]),
        size=1234,
        notes=[
            Problem(stage="layer", error="note", message=f"image note {j}") for j in range(packages)
        ],
        scanned_at=T0,
        analyzers=analyzers,
    )


def _stack(key: str, packages: int = 2) -> StackFacts:
    return StackFacts(
        key=key,
        os=OsInfo(family="debian", name="Debian GNU/Linux", version="12"),
        ecosystem="Debian:12",
        packages=[
            Package(name=f"pkg{j}", version=f"1.{j}", type="deb", ecosystem="Debian:12")
            for j in range(packages)
        ],
        notes=[
            Problem(
                stage="analyzer",
                error="dpkg_note",
                message="var/lib/dpkg/status: 1 stanza without Version skipped",
            )
        ],
        analyzers="h",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.lmdb")
    yield s
    s.close()


# -- round-trips -------------------------------------------------------------------------


def _filled(digest: str, byte: int, size: int = 3000) -> LayerFacts:
    """Layer facts of about ``size`` bytes, all of ``byte``."""
    return LayerFacts(digest=digest, analyzers="h", present=[chr(0x41 + byte % 26) * size])


def test_layer_facts_round_trip_every_field_across_reopen(tmp_path: Path) -> None:
    """A layer's facts (found files with packages and owners, present files, links,
    whiteouts, opaque dirs, notes) come back as stored, after the store is closed and opened
    again (``sync=True`` mode here, the default elsewhere)."""
    h = analyzer_set_hash([_Dpkg(), _Apk()])
    pkg = Package(name="a", version="1", type="deb", source_name="a", source_version="1")
    facts = LayerFacts(
        digest=LAYER,
        analyzers=h,
        size=4096,
        uncompressed_size=10240,
        found=[
            Found(
                analyzer="dpkg",
                path="var/lib/dpkg/status",
                layer=LAYER,
                size=11,
                facts=FileFacts(packages=(pkg,), hints=("amd64",), notes=("one skipped",)),
            ),
            Found(
                analyzer="dpkg",
                path="var/lib/dpkg/info/a.list",
                layer=LAYER,
                size=20,
                facts=FileFacts(owners={"usr/bin/a": "a"}),
            ),
            Found(
                analyzer="os",
                path="etc/os-release",
                layer=LAYER,
                size=10,
                facts=FileFacts(text="ID=debian\n"),
            ),
        ],  # fmt: skip
        present=["etc/os-release", "usr/bin/a", "var/lib/dpkg/info/a.list", "var/lib/dpkg/status"],
        symlinks={"etc/os-release2": "../usr/lib/os"},
        hardlinks=[HardLink(path="usr/bin/b", target="usr/bin/a", analyzers=("gobinary",))],
        whiteouts=["lib/apk/db/installed"],
        opaque_dirs=["opt/app"],
        notes=["skipped tar entry '../x': path leaves the image root"],
    )
    with StateStore(tmp_path / "s.lmdb", sync=True) as s:
        s.put_layer(facts)
    with StateStore(tmp_path / "s.lmdb") as s:
        got = s.get_layer(LAYER, h)
    assert got is not None and got.stored_at is not None
    assert msgspec.structs.replace(got, stored_at=None) == facts


def test_stack_facts_round_trip_and_one_entry_serves_every_image_on_it(
    store: StateStore,
) -> None:
    """What a stack of layers holds is stored once under its key (the analyzer set and the
    layer digests, in order) and comes back whole; images on the same layers name the same
    stack, other layers or another order or analyzer set another."""
    key = stack_key("h", [LAYER, _digest(7)])
    store.put_stack(_stack(key, packages=3))
    assert store.get_stack(key) == _stack(key, packages=3)
    assert store.get_stack(stack_key("h", [_digest(7), LAYER])) is None
    assert len({key, stack_key("h", [_digest(7), LAYER]), stack_key("g", [LAYER, _digest(7)])}) == 3
    assert store.counts()["stacks"] == 1


def test_image_facts_and_tag_round_trip(store: StateStore) -> None:
    """Image facts come back whole by manifest digest; ``put_image(tag=…)`` points the tag
    at the digest in the same transaction."""
    facts = _image(1)
    store.put_image(facts, tag="127.0.0.1:5000/app1:v1")
    assert store.get_image(_digest(1)) == facts
    tag = store.get_tag("127.0.0.1:5000/app1:v1")
    assert tag is not None and tag.digest == _digest(1) and tag.seen_at == T0
    store.put_tag("127.0.0.1:5000/app1:v1", _digest(2), T0)
    assert store.get_tag("127.0.0.1:5000/app1:v1") == state.TagEntry(digest=_digest(2), seen_at=T0)
    assert store.get_image(_digest(3)) is None
    assert store.get_tag("127.0.0.1:5000/nope:v1") is None


def test_keys_longer_than_lmdb_allows_are_hashed_not_rejected(store: StateStore) -> None:
    """Keys over LMDB's 511 bytes (a long repository path) still store and read back, and
    two long keys that share their first 511 bytes stay apart."""
    base = "registry.example/" + "deep/" * 120
    a, b = base + "app:v1", base + "app:v2"
    assert len(a.encode()) > 511
    store.put_tag(a, _digest(1), T0)
    store.put_tag(b, _digest(2), T0)
    ta, tb = store.get_tag(a), store.get_tag(b)
    assert ta is not None and ta.digest == _digest(1)
    assert tb is not None and tb.digest == _digest(2)
    long_image = "img:" + "x" * 600
    cp = Checkpoint(crawl_id="c" * 600, output="/o", started_at=T0, updated_at=T0)
    store.commit_checkpoint(cp, [long_image, "short"])
    assert store.get_checkpoint("c" * 600) == cp
    assert store.done_images("c" * 600) == {state.done_key(long_image), "short"}


def test_documents_are_cached_by_digest_and_rehashed_when_read(store: StateStore) -> None:
    """A manifest comes back with its media type; an entry whose bytes no longer hash to
    its key (a damaged store) is a miss, fetched again and overwritten by the crawler."""
    data = b'{"schemaVersion":2}'
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    media = "application/vnd.oci.image.manifest.v1+json"
    store.put_doc(digest, Document(media_type=media, data=data))
    assert store.get_doc(digest) == Document(media_type=media, data=data)
    store.put_doc(digest, Document(media_type=media, data=data + b" "))
    assert store.get_doc(digest) is None
    assert store.get_doc("sha256:" + "0" * 64) is None


# -- analyzer versions -----------------------------------------------------------------


def test_bumping_one_analyzer_version_misses_its_cached_layers(store: StateStore) -> None:
    """Layer facts are keyed by the analyzer set's versions: after one analyzer's VERSION
    changes, the cached layer is a miss; the old set still hits."""
    old = analyzer_set_hash([_Dpkg(), _Apk()])
    new = analyzer_set_hash([_DpkgBumped(), _Apk()])
    assert old != new
    store.put_layer(LayerFacts(digest=LAYER, analyzers=old))
    assert store.get_layer(LAYER, old) is not None
    assert store.get_layer(LAYER, new) is None


def test_image_facts_from_another_analyzer_set_are_a_miss(store: StateStore) -> None:
    """An image analysed by an older analyzer set is not served to the newer one."""
    old = analyzer_set_hash([_Dpkg(), _Apk()])
    new = analyzer_set_hash([_DpkgBumped(), _Apk()])
    store.put_image(_image(1, analyzers=old))
    assert store.get_image(_digest(1), old) is not None
    assert store.get_image(_digest(1), new) is None
    assert store.get_image(_digest(1)) is not None  # rematch by digest alone still works


def test_analyzer_set_hash_is_order_independent_and_refuses_duplicate_names() -> None:
    """Registration order does not change the key; two analyzers sharing a name would make
    the hash ambiguous and are refused."""
    assert analyzer_set_hash([_Dpkg(), _Apk()]) == analyzer_set_hash([("apk", 3), ("dpkg", 1)])
    with pytest.raises(ValueError, match="repeat"):
        analyzer_set_hash([_Dpkg(), _DpkgBumped()])


# -- corrupt values ----------------------------------------------------------------------

_FOREIGN_WRITER = textwrap.dedent(
    """
    import sys, lmdb, msgspec
    env = lmdb.open(sys.argv[1], subdir=False, max_dbs=6)
    with env.begin(write=True) as txn:
        for db, key, value in msgspec.msgpack.decode(bytes.fromhex(sys.argv[2])):
            txn.put(key, value, db=env.open_db(db.encode(), txn=txn))
    env.close()
    """
)


def _foreign_put(path: Path, rows: list[tuple[str, bytes, bytes]]) -> None:
    """Write raw values from another process, as a damaged file or a foreign tool would."""
    subprocess.run(
        [sys.executable, "-c", _FOREIGN_WRITER, str(path), msgspec.msgpack.encode(rows).hex()],
        check=True,
    )


def test_corrupt_values_are_reported_and_read_as_missing(store: StateStore) -> None:
    """Undecodable or mistyped stored values give a ``state_entry_corrupt`` log event, a
    count, and a miss, never an exception; the next write replaces them."""
    h = "h"
    store.put_image(_image(1))
    store.put_tag("r/a:v1", _digest(1), T0)
    _foreign_put(
        store.path,
        [
            ("layers", state.layer_key(LAYER, h), b"\xc1garbage"),  # 0xc1: never valid msgpack
            ("images", _digest(1).encode(), msgspec.msgpack.encode({"image": 5})),
            ("tags", b"r/a:v1", b""),
            ("crawls", b"cid", msgspec.msgpack.encode([1, 2, 3])),
        ],
    )
    with structlog.testing.capture_logs() as logs:
        assert store.get_layer(LAYER, h) is None
        assert store.get_image(_digest(1)) is None
        assert store.get_tag("r/a:v1") is None
        assert store.get_checkpoint("cid") is None
    events = [e for e in logs if e["event"] == "state_entry_corrupt"]
    assert sorted(e["db"] for e in events) == ["crawls", "images", "layers", "tags"]
    assert all(e["error"] for e in events)
    assert store.corrupt == {"layers": 1, "images": 1, "tags": 1, "crawls": 1}
    store.put_image(_image(1))
    assert store.get_image(_digest(1)) == _image(1)


def test_store_of_another_schema_version_is_reset(tmp_path: Path) -> None:
    """A store written under another schema version is emptied on open (it is a cache),
    with a log event, rather than misread."""
    path = tmp_path / "s.lmdb"
    with StateStore(path) as s:
        s.put_image(_image(1))
    _foreign_put(path, [("meta", b"meta", msgspec.msgpack.encode({"schema_version": 99}))])
    with structlog.testing.capture_logs() as logs, StateStore(path) as s:
        assert s.get_image(_digest(1)) is None
        assert s.counts()["images"] == 0
    assert [e["found"] for e in logs if e["event"] == "state_schema_reset"] == [99]


# -- checkpoints and resumable output ----------------------------------------------------

_CRAWL = textwrap.dedent(
    """
    import os, sys, time, msgspec
    from regsweep.crawler.state import ResumableOutput, StateStore

    store_path, out_path = sys.argv[1], sys.argv[2]
    n_images, stall_at = int(sys.argv[3]), int(sys.argv[4])
    store = StateStore(store_path)
    out = ResumableOutput(store, "crawl-1", out_path)
    print("resumed" if out.resumed else "fresh", out.images, flush=True)
    enc = msgspec.json.Encoder()
    for i in range(n_images):
        key = f"reg/app{i}@sha256:{i:064x}"
        if out.is_done(key):
            continue
        lines = [
            enc.encode({"kind": "vulnerability", "image": i, "n": j}) + b"\\n" for j in range(3)
        ]
        out.write_image(key, lines)
        if i % 7 == 6:
            out.checkpoint()
        if i == stall_at:
            # Half a record of the next image on disk, uncheckpointed images before it:
            # the worst moment to die.
            out._fh.write(b'{"kind": "vulnerability", "ima')
            out._fh.flush()
            print("stalled", flush=True)
            time.sleep(60)
    out.complete([enc.encode({"kind": "summary", "images": out.images}) + b"\\n"])
    print("complete", flush=True)
    """
)


def _run_crawl(store: Path, out: Path, n: int, stall_at: int = -1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CRAWL, str(store), str(out), str(n), str(stall_at)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _check_output(out: Path, n: int) -> None:
    lines = out.read_bytes().splitlines()
    records = [msgspec.json.decode(line) for line in lines]  # every line whole
    body = [(r["image"], r["n"]) for r in records if r["kind"] == "vulnerability"]
    assert sorted(body) == [(i, j) for i in range(n) for j in range(3)]  # none lost, none twice
    assert len(body) == len(set(body))
    assert [r["kind"] for r in records].count("summary") == 1
    assert records[-1] == {"kind": "summary", "images": n}


def test_sigkill_mid_write_then_resume_writes_every_record_exactly_once(tmp_path: Path) -> None:
    """After ``kill -9`` with uncheckpointed images and half a line in the file, the same
    command truncates to the checkpoint, skips finished images and ends with every record
    once, the summary last; a completed crawl then starts afresh."""
    store, out, n = tmp_path / "state.lmdb", tmp_path / "out.ndjson", 60
    proc = _run_crawl(store, out, n, stall_at=31)
    assert proc.stdout is not None
    assert proc.stdout.readline().split()[0] == "fresh"
    assert proc.stdout.readline().strip() == "stalled"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    # Images 0..27 were checkpointed (checkpoint after 27), 28..31 written but not: in the
    # partial file, the output itself not there until the crawl is complete.
    assert partial_path(out).read_bytes().endswith(b'"ima')
    assert not out.exists()
    with StateStore(store) as s:
        cp = s.get_checkpoint("crawl-1")
        assert cp is not None and cp.images == 28 and cp.records == 28 * 3
        assert len(s.done_images("crawl-1")) == 28
    proc = _run_crawl(store, out, n)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert stdout.split() == ["resumed", "28", "complete"]
    _check_output(out, n)
    with StateStore(store) as s:
        assert s.get_checkpoint("crawl-1") is None
        assert s.done_images("crawl-1") == set()
    proc = _run_crawl(store, out, 5)
    stdout, _ = proc.communicate(timeout=30)
    assert stdout.split() == ["fresh", "0", "complete"]
    _check_output(out, 5)


def test_sigkill_at_an_arbitrary_moment_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Killed at whatever point the timer lands on (between checkpoints, inside a fsync or
    a commit), the resumed crawl still yields every record exactly once."""
    store, out, n = tmp_path / "state.lmdb", tmp_path / "out.ndjson", 400
    killed = 0
    for delay in (0.0, 0.05, 0.15):
        proc = _run_crawl(store, out, n)
        assert proc.stdout is not None
        proc.stdout.readline()  # started: the store is open
        threading.Event().wait(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        # A crawl the kill missed finished cleanly; the next run then starts afresh.
        killed += proc.returncode == -signal.SIGKILL
    # Not a bet on timing: right after "started" ~57 checkpoints are still to come, so
    # at least one kill hits mid-crawl on any machine.
    assert killed >= 1
    proc = _run_crawl(store, out, n)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    _check_output(out, n)


def test_output_shorter_than_checkpoint_is_refused(store: StateStore, tmp_path: Path) -> None:
    """If the output file lost bytes the checkpoint vouches for, resuming would silently
    drop records: it is refused with a clear error instead."""
    path = tmp_path / "out.ndjson"
    out = ResumableOutput(store, "c", path)
    out.write_image("img", [b'{"a": 1}\n'])
    out.close()
    partial_path(path).write_bytes(b"{")
    with pytest.raises(OutputMismatch, match="changed outside the crawl"):
        ResumableOutput(store, "c", path)


def test_output_rewritten_since_the_checkpoint_is_refused(
    store: StateStore, tmp_path: Path
) -> None:
    """A file as long as the checkpoint but with other bytes (a SARIF document written to
    the same ``-o`` since, another program): resuming would append NDJSON to it."""
    path = tmp_path / "out.ndjson"
    out = ResumableOutput(store, "c", path)
    out.write_image("img", [b'{"a": 1}\n'])
    out.close()
    partial_path(path).write_bytes(b'{"version":"2.1.0","runs":[]}\n' * 4)
    with pytest.raises(OutputMismatch, match="changed outside the crawl"):
        ResumableOutput(store, "c", path)
    partial_path(path).write_bytes(b'{"a": 1}\n')
    resumed = ResumableOutput(store, "c", path)
    assert resumed.resumed and resumed.is_done("img")
    resumed.close()


def test_close_checkpoints_so_a_rerun_skips_finished_images(
    store: StateStore, tmp_path: Path
) -> None:
    """A clean stop (SIGINT/SIGTERM path) keeps what was written and marks it done."""
    path = tmp_path / "out.ndjson"
    out = ResumableOutput(store, "c", path)
    assert out.write_image("a", [b"1\n", b"2\n"])
    out.close()
    again = ResumableOutput(store, "c", path)
    assert again.resumed and again.is_done("a") and again.records == 2
    assert not again.write_image("a", [b"1\n"])
    again.complete()
    assert path.read_bytes() == b"1\n2\n"


# -- threads, fork and map size ----------------------------------------------------------


def test_readers_see_whole_commits_while_the_writer_thread_commits(store: StateStore) -> None:
    """Reader threads running beside the StateWriter see each image either absent or whole,
    never half, and once seen it stays visible."""
    n = 300
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        seen: set[int] = set()
        try:
            while not stop.is_set():
                for i in range(0, n, 7):
                    got = store.get_image(_digest(i))
                    if got is None:
                        assert i not in seen
                        continue
                    assert got == _image(i, packages=i % 5)
                    seen.add(i)
        except BaseException as err:
            errors.append(err)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    with StateWriter(store) as writer:
        futures = [writer.submit(store.put_image, _image(i, packages=i % 5)) for i in range(n)]
        for f in futures:
            f.result()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert store.counts()["images"] == n


def test_writes_from_a_second_thread_are_refused(store: StateStore) -> None:
    """While a StateWriter's thread holds the writer role, a write from any other thread
    raises instead of opening a second write transaction elsewhere; closing the writer
    hands the role back."""

    async def main() -> None:
        with StateWriter(store) as writer:
            await asyncio.gather(
                *(writer.call(store.put_tag, f"r/a:{i}", _digest(i), T0) for i in range(50))
            )

    async def other_thread_writes() -> None:
        await asyncio.to_thread(store.put_tag, "r/a:main", _digest(1), T0)

    with StateWriter(store) as writer:
        asyncio.run(
            asyncio.wait_for(writer.call(store.put_tag, "r/a:0", _digest(0), T0), timeout=5)
        )
        with pytest.raises(StateError, match="second thread"):
            asyncio.run(other_thread_writes())
        with pytest.raises(StateError, match="second thread"):
            store.put_tag("r/a:main", _digest(1), T0)
    asyncio.run(main())
    assert store.get_tag("r/a:49") is not None
    # Each closed writer handed the role back, so the next owner may take it.
    store.put_tag("r/a:main", _digest(1), T0)
    assert store.get_tag("r/a:main") is not None


_FORK = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from regsweep.crawler.state import StateForked, StateStore

    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    store = StateStore(sys.argv[1])
    store.put_tag("r/a:parent", "sha256:1", t0)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                store.get_tag("r/a:parent")
            except StateForked:
                store.close()  # the child's copies only; then the path may be opened again
                child = StateStore(sys.argv[1])
                assert child.get_tag("r/a:parent") is not None
                child.put_tag("r/a:child", "sha256:2", t0)
                child.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "child failed"
    got = store.get_tag("r/a:child")
    assert got is not None and got.digest == "sha256:2"
    store.put_tag("r/a:after", "sha256:3", t0)
    assert store.get_tag("r/a:after") is not None
    print("ok")
    """
)


def test_store_refuses_use_in_a_forked_child_which_opens_its_own(tmp_path: Path) -> None:
    """After fork, the parent's store raises StateForked in the child; the child closes it
    and opens its own, and the parent's store keeps working and sees the child's write.

    Run in a fresh interpreter: forking the test runner, with whatever threads other tests
    left, could deadlock the child.
    """
    done = subprocess.run(
        [sys.executable, "-c", _FORK, str(tmp_path / "s.lmdb")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok"]


def test_full_map_grows_and_the_write_is_retried(tmp_path: Path) -> None:
    """Starting from a tiny map, writes that overflow it double the map and succeed, with
    nothing lost, while readers keep reading."""
    with StateStore(tmp_path / "s.lmdb", map_size=64 << 10) as s:
        first = s.map_size()
        stop = threading.Event()
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while not stop.is_set():
                    got = s.get_layer(_digest(0), "h")
                    assert got is None or msgspec.structs.replace(got, stored_at=None) == _filled(
                        _digest(0), 0
                    )
            except BaseException as err:
                errors.append(err)

        t = threading.Thread(target=reader)
        t.start()
        try:
            for i in range(200):
                s.put_layer(_filled(_digest(i), i))
        finally:
            stop.set()
            t.join()
        assert errors == []
        assert s.map_size() > first
        assert s.counts()["layers"] == 200
        last = s.get_layer(_digest(199), "h")
        assert last is not None
        assert msgspec.structs.replace(last, stored_at=None) == _filled(_digest(199), 199)


def test_cancelled_awaiter_never_leaves_half_a_write(store: StateStore) -> None:
    """Cancelling a task awaiting the writer lets a started write finish whole and drops a
    queued one; the writer thread then carries on and no transaction stays open."""
    started, release = threading.Event(), threading.Event()

    def slow_put() -> None:
        started.set()
        release.wait(5)
        store.put_tag("r/a:slow", _digest(1), T0)

    async def main(writer: StateWriter) -> None:
        running = asyncio.ensure_future(writer.call(slow_put))
        queued = asyncio.ensure_future(writer.call(store.put_tag, "r/a:queued", _digest(2), T0))
        await asyncio.to_thread(started.wait, 5)
        running.cancel()
        queued.cancel()
        for task in (running, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        # Only now let the started write go on: the queued call's cancellation has reached
        # the writer's queue by the time the awaiters finished.
        release.set()
        await writer.call(store.put_tag, "r/a:after", _digest(3), T0)

    with StateWriter(store) as writer:
        asyncio.run(main(writer))
    assert store.get_tag("r/a:slow") is not None
    assert store.get_tag("r/a:queued") is None
    assert store.get_tag("r/a:after") is not None


def test_one_read_transaction_answers_like_the_store_and_sees_one_snapshot(
    store: StateStore,
) -> None:
    """``reading()`` gives the store's answers (hits, misses, another analyzer set), from
    one snapshot: a commit made while it is open is not seen inside it, and is seen by the
    next one."""
    store.put_image(_image(1, analyzers="h"), tag="127.0.0.1:5000/app1:v1")
    store.put_layer(LayerFacts(digest=LAYER, analyzers="h"))
    with store.reading() as r:
        assert r.get_image(_digest(1), "h") == store.get_image(_digest(1), "h") == _image(1)
        assert r.get_image(_digest(1), "other") is None
        assert r.get_image(_digest(2)) is None
        assert r.get_tag("127.0.0.1:5000/app1:v1") == store.get_tag("127.0.0.1:5000/app1:v1")
        assert r.get_layer(LAYER, "h") == store.get_layer(LAYER, "h")
        assert r.get_layer(LAYER, "other") is None
        store.put_tag("127.0.0.1:5000/app2:v1", _digest(2), T0)
        assert r.get_tag("127.0.0.1:5000/app2:v1") is None
    with store.reading() as r:
        assert r.get_tag("127.0.0.1:5000/app2:v1") == state.TagEntry(digest=_digest(2), seen_at=T0)


def test_a_read_transaction_left_by_an_exception_lets_the_map_grow(tmp_path: Path) -> None:
    """An error inside ``reading()`` still ends its transaction and counts it out: a write
    that must grow the map afterwards (which waits for no read in flight) goes through."""
    with StateStore(tmp_path / "s.lmdb", map_size=64 << 10) as s:
        first = s.map_size()
        with pytest.raises(KeyError), s.reading() as r:
            assert r.get_tag("r/a:v1") is None
            raise KeyError("boom")
        done = threading.Event()

        def fill() -> None:
            for i in range(100):
                s.put_layer(_filled(_digest(i), 0))
            done.set()

        t = threading.Thread(target=fill, daemon=True)
        t.start()
        t.join(10)
        assert done.is_set(), "the map resize waited for a read that had ended"
        assert s.map_size() > first


def test_walks_round_trip_keyed_by_analyzer_set_and_platform_filter(store: StateStore) -> None:
    """A recorded walk comes back whole for its digest, analyzer set and platform filter,
    and is a miss for any other; with a tag, the tag is pointed at it."""
    walk = state.Walk(
        digest=_digest(1),
        analyzers="h",
        platform="",
        manifests=3,
        images=[
            state.WalkImage(
                digest=_digest(2),
                index_digest=_digest(1),
                platform="linux/arm64/v8",
                config=b'{"os":"linux"}',
                layers=2,
                size=1234,
            )
        ],
        notes=["skipped sha256:…: attestation manifest"],
    )
    store.put_walk(walk)
    assert store.get_walk(_digest(1), "h", "") == walk
    assert store.get_tag("r/a:v1") is None
    store.put_walk(walk, "r/a:v1")  # and the tag, in the same transaction
    tag = store.get_tag("r/a:v1")
    assert tag is not None and tag.digest == _digest(1)
    with store.reading() as r:
        assert r.get_walk(_digest(1), "h", "") == walk
    assert store.get_walk(_digest(1), "other", "") is None
    assert store.get_walk(_digest(1), "h", "linux/amd64") is None
    assert store.get_walk(_digest(2), "h", "") is None


def test_tallies_carry_over_to_a_resumed_run_as_of_the_checkpoint(
    store: StateStore, tmp_path: Path
) -> None:
    """A resumed crawl counts on from its earlier runs: the blocks checkpointed (not those
    written after the last checkpoint, which the rerun truncates), the work done up to the
    checkpoint, and the worst severity as a maximum."""
    path = tmp_path / "out.ndjson"
    out = ResumableOutput(store, "c", path)
    assert out.runs == 1
    out.write_image("a", [b"{}\n"], {"images": 1, "vulnerabilities": 3, "max_severity": 4})
    out.checkpoint({"layers_fetched": 2, "bytes": 100})
    out.write_image("b", [b"{}\n"], {"images": 1, "vulnerabilities": 5, "max_severity": 5})
    started = out.started_at
    out._fh.close()  # killed: "b" was written, never checkpointed

    again = ResumableOutput(store, "c", path)
    assert again.runs == 2 and again.started_at == started
    assert again.tally() == {
        "images": 1, "vulnerabilities": 3, "max_severity": 4, "layers_fetched": 2, "bytes": 100
    }  # fmt: skip
    assert again.write_image("b", [b"{}\n"], {"images": 1, "vulnerabilities": 5, "max_severity": 2})
    assert again.tally({"layers_fetched": 1, "bytes": 10}) == {
        "images": 2, "vulnerabilities": 8, "max_severity": 4, "layers_fetched": 3, "bytes": 110
    }  # fmt: skip
    again.complete()


def test_the_store_is_created_for_its_owner_only(tmp_path: Path) -> None:
    """It keeps image configs (their Env can hold secrets): 0600, lock file too."""
    path = tmp_path / "state.lmdb"
    with StateStore(path):
        pass
    for f in (path, path.with_name(path.name + "-lock")):
        assert f.stat().st_mode & 0o777 == 0o600, f


# -- damaged files -------------------------------------------------------------------------

_USE_STORE = textwrap.dedent(
    """
    import sys, msgspec, structlog
    from regsweep.crawler.state import StateStore

    path, digests = sys.argv[1], sys.argv[2:]
    with structlog.testing.capture_logs() as logs:
        with StateStore(path) as s:
            found = {d: s.get_image(d) for d in digests}
            s.put_tag("r/new:v1", digests[0])
            tag = s.get_tag("r/new:v1")
            s.put_tag("r/new:v2", digests[0])
    print(msgspec.json.encode({
        "events": [e["event"] for e in logs if e["log_level"] == "warning"],
        "found": {d: None if v is None else msgspec.msgpack.encode(v).hex()
                  for d, v in found.items()},
        "wrote": tag is not None and tag.digest == digests[0],
    }).decode())
    """
)


def _filled_store(path: Path, n: int = 300) -> list[str]:
    """A store of ``n`` images (about 20 pages), closed; returns their digests."""
    with StateStore(path) as s:
        for i in range(n):
            s.put_image(_image(i, packages=3), tag=f"r/app{i}:v1")
    return [_digest(i) for i in range(n)]


def _use_store(path: Path, digests: list[str]) -> tuple[int, dict[str, Any], str]:
    """Open, read, write and close the store at ``path`` in a child process: its exit
    status (a SIGBUS is -7), what it saw, and its stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", _USE_STORE, str(path), *digests],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    seen = msgspec.json.decode(proc.stdout) if proc.returncode == 0 else {}
    return proc.returncode, seen, proc.stderr


def test_a_truncated_store_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    """A store cut short anywhere is moved aside at open (not mapped: a page past the end
    would be a SIGBUS) and a new, empty store started in its place, with one warning."""
    whole = tmp_path / "whole.lmdb"
    digests = _filled_store(whole)
    data = whole.read_bytes()
    page = 4096
    assert len(data) > 10 * page
    sizes = (1, page, 2 * page, 3 * page, len(data) // 2, len(data) - page, len(data) - 1)
    outcomes = {}
    for size in sizes:
        run = tmp_path / f"cut-{size}"
        run.mkdir()
        path = run / "state.lmdb"
        path.write_bytes(data[:size])
        code, seen, err = _use_store(path, digests[:3])
        aside = [p for p in run.iterdir() if p.name.startswith("state.lmdb.corrupt-")]
        outcomes[size] = (
            code,
            seen.get("events"),
            seen.get("found") == dict.fromkeys(digests[:3]),  # a new store: all misses
            seen.get("wrote"),
            [p.read_bytes() == data[:size] for p in aside],  # the damaged file, kept
            "Traceback" in err,
        )
    # (-7 would be a SIGBUS.)
    expected = (0, ["state_store_damaged"], True, True, [True], False)
    assert outcomes == dict.fromkeys(sizes, expected)


def _leaf_flag_offsets(data: bytes, page: int) -> list[int]:
    """The flags byte of every page after the two metas (LMDB's page header: pgno, pad,
    then the u16 flags at offset 10)."""
    return [n * page + 10 for n in range(2, len(data) // page)]


def test_flipped_page_headers_are_misses_with_one_warning_never_an_exception(
    tmp_path: Path,
) -> None:
    """A byte flipped in any page's header makes LMDB fail reads or writes in the middle
    of a run (``MDB_CORRUPTED`` …): each read is then a miss, the store is bypassed for
    the rest of the run with one warning, and it is moved aside when closed. What is read
    is right or missing: never a wrong value, never an exception."""
    whole = tmp_path / "whole.lmdb"
    digests = _filled_store(whole, 25)
    data = whole.read_bytes()
    offsets = _leaf_flag_offsets(data, 4096)
    assert len(offsets) >= 8
    expected = {
        d: msgspec.msgpack.encode(_image(i, packages=3)).hex() for i, d in enumerate(digests)
    }
    outcomes = {}
    for offset in offsets:
        run = tmp_path / f"flip-{offset}"
        run.mkdir()
        path = run / "state.lmdb"
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(damaged)
        code, seen, err = _use_store(path, digests)
        found = seen.get("found", {})
        wrong = [d for d, v in found.items() if v is not None and v != expected[d]]
        warnings = len(seen.get("events", [None, None]))
        outcomes[offset] = (code, warnings <= 1, wrong, "Traceback" in err)
    assert outcomes == dict.fromkeys(offsets, (0, True, [], False))


# -- image configs and their secrets -------------------------------------------------------

_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
_CONFIG = msgspec.json.encode(
    {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [f"AWS_SECRET_ACCESS_KEY={_SECRET}"], "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "c" * 64]},
        "history": [{"created_by": f"/bin/sh -c login --password={_SECRET[:16]}"}],
    }
)
_CONFIG_DIGEST = "sha256:" + hashlib.sha256(_CONFIG).hexdigest()
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _walk(config: bytes, scrub: str = "") -> state.Walk:
    return state.Walk(
        digest=_digest(1),
        analyzers="h",
        platform="",
        manifests=1,
        images=[state.WalkImage(digest=_digest(2), config=config, layers=1, size=3, scrub=scrub)],
    )


def test_a_store_with_a_scrubber_keeps_configs_only_scrubbed(tmp_path: Path) -> None:
    """Configs, as documents and in walks, are stored in the scrubber's form (checked on
    read against what was stored); manifests as fetched; the file holds no secret."""
    path = tmp_path / "s.lmdb"
    manifest = b'{"schemaVersion": 2, "note": "' + _SECRET.encode() + b'"}'
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    with StateStore(path, scrub=SCRUB) as s:
        assert s.scrub_version == SCRUB.version
        s.put_doc(_CONFIG_DIGEST, Document(media_type=_OCI_CONFIG, data=_CONFIG))
        s.put_doc(manifest_digest, Document(media_type="application/json", data=manifest))
        s.put_walk(_walk(_CONFIG))
        doc = s.get_doc(_CONFIG_DIGEST)
        walk = s.get_walk(_digest(1), "h", "")
        assert s.get_doc(manifest_digest) == Document(media_type="application/json", data=manifest)
    assert doc is not None and walk is not None
    assert doc.data == SCRUB(_CONFIG) and doc.scrub == SCRUB.version
    assert walk.images[0].config == SCRUB(_CONFIG) and walk.images[0].scrub == SCRUB.version
    data = path.read_bytes()
    assert _SECRET[:16].encode() not in data.replace(manifest, b"")


def test_configs_stored_raw_or_in_another_form_are_misses(tmp_path: Path) -> None:
    """A config kept raw (before the store had a scrubber) or by another scrubber version
    is a miss, so it is fetched again and stored in the current form; so is a scrubbed
    document that no longer hashes to what was stored."""
    path = tmp_path / "s.lmdb"
    with StateStore(path) as s:  # no scrubber: kept as fetched
        s.put_doc(_CONFIG_DIGEST, Document(media_type=_OCI_CONFIG, data=_CONFIG))
        s.put_walk(_walk(_CONFIG))
        assert s.get_doc(_CONFIG_DIGEST) is not None
    with StateStore(path, scrub=SCRUB) as s:
        assert s.get_doc(_CONFIG_DIGEST) is None
        assert s.get_walk(_digest(1), "h", "") is None
        s.put_doc(_CONFIG_DIGEST, Document(media_type=_OCI_CONFIG, data=_CONFIG))
        assert s.get_doc(_CONFIG_DIGEST) is not None
    _foreign_put(
        path,
        [
            (
                "docs",
                _CONFIG_DIGEST.encode(),
                msgspec.msgpack.encode(
                    Document(media_type=_OCI_CONFIG, data=b"{}", scrub=SCRUB.version,
                             stored_sha256="0" * 64)
                ),
            )
        ],
    )  # fmt: skip
    with StateStore(path, scrub=SCRUB) as s:
        assert s.get_doc(_CONFIG_DIGEST) is None
        s.put_walk(_walk(_CONFIG))
        assert s.get_walk(_digest(1), "h", "") is not None
    with StateStore(path) as s:  # a scrubbed form without the scrubber: a miss too
        assert s.get_walk(_digest(1), "h", "") is None


def test_a_store_of_an_older_schema_is_replaced_by_a_new_file(tmp_path: Path) -> None:
    """Schema 3 kept configs raw. Emptied in place, LMDB would leave their bytes in free
    pages until reused: the store is replaced by a new file instead."""
    path = tmp_path / "s.lmdb"
    with StateStore(path) as s:
        s.put_doc(_CONFIG_DIGEST, Document(media_type=_OCI_CONFIG, data=_CONFIG))
    _foreign_put(path, [("meta", b"meta", msgspec.msgpack.encode({"schema_version": 3}))])
    assert _SECRET.encode() in path.read_bytes()
    with structlog.testing.capture_logs() as logs, StateStore(path, scrub=SCRUB) as s:
        assert s.get_doc(_CONFIG_DIGEST) is None
    assert [e["found"] for e in logs if e["event"] == "state_schema_reset"] == [3]
    assert _SECRET.encode() not in path.read_bytes()


# -- findings --------------------------------------------------------------------------


def _findings(i: int, n: int = 2) -> ImageFindings:
    image = ImageRef(ref=f"reg.example/r/a:{i}", digest=_digest(i), platform="linux/amd64")
    pkg = Package(name="zlib1g", version=f"1.{i}", type="deb", ecosystem="Debian:12")
    return ImageFindings(
        fingerprint=f"fp-{i}-{n}",
        image=image,
        packages=(pkg,),
        findings=tuple(Finding(0, Advisory(id=f"DSA-{i}-{j}", fixed=("9",))) for j in range(n)),
    )


def test_findings_round_trip_with_the_output_cursor(store: StateStore) -> None:
    """``put_findings`` stores every update by its image key and the cursor with them;
    ``findings()`` walks them all in key order across its read batches; a key that does not
    name its findings' image is refused before anything is written."""
    assert store.get_findings(image_key(_findings(0).image)) is None
    assert store.output_cursor() is None
    many = {image_key(f.image): f for f in map(_findings, range(1500))}
    store.put_findings(many, cursor=b"part-7:120")
    assert store.output_cursor() == b"part-7:120"
    assert store.get_findings(image_key(_findings(3).image)) == _findings(3)
    with store.reading() as r:  # the fingerprint alone, for a warm crawl
        assert r.findings_fingerprint(image_key(_findings(3).image)) == "fp-3-2"
    walked = list(store.findings())
    assert [k for k, _ in walked] == sorted(many) and dict(walked) == many
    store.put_findings({image_key(_findings(3).image): _findings(3, n=0)})
    assert store.get_findings(image_key(_findings(3).image)) == _findings(3, n=0)
    assert store.output_cursor() == b"part-7:120"  # kept when no cursor is given
    with pytest.raises(ValueError, match="given as"):
        store.put_findings({"other": _findings(4)}, cursor=b"x")
    assert store.output_cursor() == b"part-7:120"


def test_none_deletes_a_key_s_findings_with_the_cursor(store: StateStore) -> None:
    """An image gone: ``None`` deletes its findings in the same transaction as the others
    and the cursor (a key never stored is no error)."""
    a, b = image_key(_findings(1).image), image_key(_findings(2).image)
    store.put_findings({a: _findings(1), b: _findings(2)}, cursor=b"c1")
    store.put_findings({a: None, b: _findings(2, n=1), "never\0stored": None}, cursor=b"c2")
    assert store.get_findings(a) is None
    assert store.get_findings(b) == _findings(2, n=1)
    assert [k for k, _ in store.findings()] == [b]
    assert store.output_cursor() == b"c2"


def test_corrupt_findings_are_a_miss(store: StateStore) -> None:
    """An undecodable findings value reads as none (every finding then new once)."""
    key = image_key(_findings(1).image)
    store.put_findings({key: _findings(1)})
    _foreign_put(store.path, [("findings", key.encode(), b"\xc1")])
    assert store.get_findings(key) is None and list(store.findings()) == []
    assert store.corrupt == {"findings": 2}  # each read counts it


def test_a_checkpoint_stores_the_findings_of_the_images_it_makes_final(
    store: StateStore, tmp_path: Path
) -> None:
    """``ResumableOutput``: findings handed over with an image are stored by the checkpoint
    that records its lines (one transaction), not before; ``complete`` stores the rest."""
    out = ResumableOutput(store, "c", tmp_path / "out.ndjson")
    k1, k2 = image_key(_findings(1).image), image_key(_findings(2).image)
    out.write_image("a", [b"1\n"], findings={k1: _findings(1)})
    assert store.get_findings(k1) is None
    out.checkpoint()
    assert store.get_findings(k1) == _findings(1)
    out.write_image("b", [b"2\n"], findings={k2: _findings(2)})
    out.complete()
    assert store.get_findings(k2) == _findings(2)


_FINDINGS_WRITER = textwrap.dedent(
    """
    import sys
    from regsweep.crawler.state import StateStore
    from tests.crawler.test_state import _findings
    from regsweep.matcher.changes import image_key

    store = StateStore(sys.argv[1])
    print("started", flush=True)
    for i in range(100000):
        # Each commit: the findings of image i and the cursor saying i is written.
        store.put_findings({image_key(_findings(i).image): _findings(i)}, cursor=b"%d" % i)
    """
)


def test_findings_and_cursor_survive_kill_9_together(tmp_path: Path) -> None:
    """Killed while committing findings with a cursor: the stored cursor names exactly the
    last findings stored (all before it there, none after), the service's guarantee."""
    path = tmp_path / "state.lmdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", _FINDINGS_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=paths.REPO,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    threading.Event().wait(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with StateStore(path) as s:
        raw = s.output_cursor()
        assert raw is not None
        last = int(raw)
        assert last > 0
        stored = {f.image.digest for _, f in s.findings()}
        assert stored == {_digest(i) for i in range(last + 1)}
