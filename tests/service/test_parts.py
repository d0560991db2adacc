"""The service's rotated NDJSON parts (``cli.service.parts``): rotation, numbering,
compression, one writer per directory, disk full, and never losing or doubling a line
when the writer is killed at any point (real files, real processes)."""

from __future__ import annotations

import calendar
import inspect
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec
import pytest
import zstandard

from regsweep.cli.service.parts import LOCK_NAME, Cursor, PartWriter
from regsweep.crawler.outfile import OutputBusy, OutputError
from regsweep.matcher.output.ndjson import encode_lines
from regsweep.matcher.records import (
    Advisory,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    Package,
    Severity,
    VulnerabilityRecord,
)
from tests import paths
from tests.conftest import fill_but_one_page

# 2024-03-01 12:00:00 UTC.
NOON = float(calendar.timegm((2024, 3, 1, 12, 0, 0)))


class Clock:
    """A settable clock, injected into the writer."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def unit(n: int, pad: int = 20) -> bytes:
    """Unit ``n``: ``n % 3 + 1`` lines, each naming its unit and line."""
    return b"".join(
        msgspec.json.encode({"unit": n, "line": j, "pad": "x" * pad}) + b"\n"
        for j in range(n % 3 + 1)
    )


def expected(units: int) -> list[tuple[int, int]]:
    return [(n, j) for n in range(units) for j in range(n % 3 + 1)]


def content(part: Path) -> bytes:
    data = part.read_bytes()
    if part.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def read_all(root: Path) -> list[tuple[int, int]]:
    """Every line of the complete parts, in order, as (unit, line); each part ends with a
    whole line, and no number is used twice."""
    out = []
    parts = PartWriter(root).parts()
    # One file per number: a part under two names (.ndjson and .ndjson.zst) is doubled.
    assert sorted(parts) == sorted(root.rglob("part-*"))
    for part in parts:
        data = content(part)
        assert data.endswith(b"\n"), part
        for line in data.splitlines():
            rec = msgspec.json.decode(line)
            out.append((rec["unit"], rec["line"]))
    return out


def commit_all(w: PartWriter, units: range, pad: int = 20) -> Cursor:
    cur = Cursor(0, "", 0)
    for n in units:
        cur = w.write(unit(n, pad))
        w.committed(cur)
    return cur


def names(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in PartWriter(root).parts()]


def test_parts_rotate_by_size_with_consecutive_numbers(tmp_path: Path) -> None:
    """A part is sealed once it reaches ``max_bytes`` and everything in it is committed;
    the next unit opens the next number; the lines come back in order, each once."""
    w = PartWriter(tmp_path, max_bytes=400, clock=Clock())
    w.open(None)
    commit_all(w, range(30))
    sealed = w.parts()
    assert len(sealed) >= 3
    assert [p.name for p in sealed] == [f"part-{i:06d}.ndjson" for i in range(1, len(sealed) + 1)]
    assert all(p.parent.name == "dt=2024-03-01" for p in sealed)
    assert all(400 <= p.stat().st_size < 400 + 3 * 60 for p in sealed)
    w.close()
    assert read_all(tmp_path) == expected(30)
    assert not list(tmp_path.rglob(".part-*"))


def test_parts_rotate_by_age_on_tick_or_next_write(tmp_path: Path) -> None:
    """A part ``max_seconds`` old is sealed by ``tick`` (a quiet service still rotates),
    or by the next write when no tick came; a younger one is not."""
    clock = Clock()
    w = PartWriter(tmp_path, max_seconds=60, clock=clock)
    w.open(None)
    commit_all(w, range(2))
    clock.now += 59
    w.tick()
    assert w.parts() == []
    clock.now += 1
    w.tick()
    assert names(tmp_path) == ["dt=2024-03-01/part-000001.ndjson"]
    commit_all(w, range(2, 4))
    clock.now += 61
    commit_all(w, range(4, 5))  # the write seals part 2 first, then opens part 3
    assert names(tmp_path)[-1] == "dt=2024-03-01/part-000002.ndjson"
    w.close()
    assert len(w.parts()) == 3
    assert read_all(tmp_path) == expected(5)


def test_parts_rotate_at_the_utc_date_change(tmp_path: Path) -> None:
    """A part opened before UTC midnight is sealed in its own ``dt=`` directory at
    midnight (well before ``max_seconds``), the next one goes in the new date's."""
    clock = Clock(float(calendar.timegm((2024, 2, 29, 23, 59, 50))))
    w = PartWriter(tmp_path, max_seconds=3600, clock=clock)
    w.open(None)
    commit_all(w, range(3))
    clock.now += 9
    w.tick()
    assert w.parts() == []
    clock.now += 1  # 2024-03-01T00:00:00Z
    w.tick()
    commit_all(w, range(3, 6))
    w.close()
    assert names(tmp_path) == [
        "dt=2024-02-29/part-000001.ndjson",
        "dt=2024-03-01/part-000002.ndjson",
    ]
    assert read_all(tmp_path) == expected(6)


def test_a_part_is_never_sealed_with_uncommitted_bytes(tmp_path: Path) -> None:
    """Due by size and by age, a part whose last write is not committed stays temporary
    (a sealed part is final: sealing an uncommitted line could double it after a crash);
    ``close`` leaves it for recovery, which keeps only the committed lines."""
    clock = Clock()
    w = PartWriter(tmp_path, max_bytes=10, max_seconds=1, clock=clock)
    w.open(None)
    first = w.write(unit(0))
    w.committed(first)  # due by size: sealed
    second = w.write(unit(1))
    third = w.write(unit(2))
    w.committed(second)
    clock.now += 5
    w.tick()
    assert len(w.parts()) == 1
    w.close()
    assert len(w.parts()) == 1 and len(list(tmp_path.rglob(".part-*.tmp"))) == 1
    w = PartWriter(tmp_path, clock=clock)
    w.open(second)
    w.close()
    assert read_all(tmp_path) == expected(2)
    assert third.offset > second.offset


def test_numbering_continues_after_reopen_across_dates(tmp_path: Path) -> None:
    """A restart continues the sequence after the highest part in any ``dt=`` directory,
    and an empty unit has a cursor too (the position), committing nothing new."""
    clock = Clock()
    w = PartWriter(tmp_path, max_bytes=100, clock=clock)
    w.open(None)
    assert w.write(b"") == Cursor(0, "", 0)
    cur = commit_all(w, range(10))
    w.close()
    count = len(w.parts())
    assert count >= 2
    clock.now += 2 * 86_400
    w = PartWriter(tmp_path, max_bytes=100, clock=clock)
    w.open(cur)
    assert w.write(b"") == cur
    commit_all(w, range(10, 12))
    w.close()
    first_new = w.parts()[count]
    assert str(first_new.relative_to(tmp_path)) == f"dt=2024-03-03/part-{count + 1:06d}.ndjson"
    assert read_all(tmp_path) == expected(12)


def test_compressed_parts_decompress_to_exactly_the_lines(tmp_path: Path) -> None:
    """With ``compress``, each sealed part is a ``.ndjson.zst`` (an ordinary zstd frame)
    holding exactly the bytes written, and no plain or temporary file is left beside it."""
    w = PartWriter(tmp_path, max_bytes=2000, compress=True, clock=Clock())
    w.open(None)
    commit_all(w, range(40))
    w.close()
    parts = w.parts()
    assert len(parts) >= 2 and all(p.name.endswith(".ndjson.zst") for p in parts)
    assert b"".join(zstandard.decompress(p.read_bytes()) for p in parts) == b"".join(
        unit(n) for n in range(40)
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [LOCK_NAME, *(p.name for p in parts)]
    )


def test_a_second_writer_on_the_same_root_is_refused(tmp_path: Path) -> None:
    """Two writers on one directory would interleave and reuse numbers: the second (in
    this process or another) gets ``OutputBusy`` naming the directory, until the first
    closes."""
    w = PartWriter(tmp_path)
    w.open(None)
    with pytest.raises(OutputBusy, match=f"{tmp_path} is being written by another regsweep"):
        PartWriter(tmp_path).open(None)
    other = subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path\n"
         "from regsweep.cli.service.parts import PartWriter\n"
         "PartWriter(Path(sys.argv[1])).open(None)", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other.returncode == 1
    assert f"OutputBusy: {tmp_path} is being written by another regsweep" in other.stderr
    w.close()
    again = PartWriter(tmp_path)
    again.open(None)
    again.close()


def _contract_records() -> list[bytes]:
    image = ImageRef(
        ref="registry.example/team/app:1.4",
        registry="registry.example",
        repository="team/app",
        tag="1.4",
        digest="sha256:" + "a" * 64,
        platform="linux/amd64",
    )
    out = []
    for i in range(60):
        recs = [
            ImageRecord(image=image, packages=i, scanned_at=datetime(2024, 3, 1, tzinfo=UTC)),
            VulnerabilityRecord(
                image=image,
                package=Package(name=f"pkg{i}", version="1.0", type="deb"),
                advisory=Advisory(id=f"CVE-2024-{i:04d}", severity=Severity.HIGH),
            ),
            ErrorRecord(
                ref=f"registry.example/team/app:{i}", stage="manifest", error="e", message="m"
            ),
        ]
        out.append(b"".join(encode_lines(recs)))
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_duckdb_reads_the_complete_parts_and_never_the_temporary_one(
    tmp_path: Path, compress: bool
) -> None:
    """Records of the real contract, in several parts plus one being written: DuckDB's
    ``read_json(ROOT/**/*.ndjson[.zst], format='newline_delimited')`` reads every sealed
    record and none of the temporary part."""
    units = _contract_records()
    w = PartWriter(tmp_path, max_bytes=3000, compress=compress, clock=Clock())
    w.open(None)
    for data in units[:-1]:
        w.committed(w.write(data))
    w.write(units[-1])  # written, not committed: stays in the temporary part
    assert len(w.parts()) >= 3 and list(tmp_path.rglob(".part-*.tmp"))
    glob = f"{tmp_path}/**/*.ndjson" + (".zst" if compress else "")
    rel = f"read_json('{glob}', format='newline_delimited', union_by_name=true)"
    con = duckdb.connect()
    kinds = dict(con.execute(f"select kind, count(*) from {rel} group by kind").fetchall())
    sealed = sum(content(p).count(b"\n") for p in w.parts())
    assert kinds == {"image": sealed // 3, "vulnerability": sealed // 3, "error": sealed // 3}
    ids = [
        r[0]
        for r in con.execute(
            f"select advisory.id from {rel} where kind = 'vulnerability'"
        ).fetchall()
    ]
    assert ids == [f"CVE-2024-{i:04d}" for i in range(len(ids))]
    assert "CVE-2024-0059" not in ids
    w.close()


def test_disk_full_while_writing_is_one_clear_error_and_loses_nothing(small_disk: Path) -> None:
    """A unit that does not fit: ``OutputError`` "cannot write …: No space left on device",
    nothing of it counted or left in the part; with room again, writing goes on and the
    parts hold exactly the units that were written."""
    w = PartWriter(small_disk / "out", max_bytes=1 << 30)
    w.open(None)
    before = commit_all(w, range(3))
    filler = fill_but_one_page(small_disk)
    big = b"".join(
        msgspec.json.encode({"unit": 3, "line": j, "pad": "y" * 900}) + b"\n" for j in range(20)
    )
    with pytest.raises(
        OutputError, match=r"cannot write .*\.part-000001\.ndjson\.tmp: No space left on device"
    ):
        w.write(big)
    assert w.write(b"") == before
    filler.unlink()
    commit_all(w, range(3, 5))
    w.close()
    assert read_all(small_disk / "out") == expected(5)


def test_disk_full_while_sealing_a_compressed_part_is_one_clear_error(small_disk: Path) -> None:
    """No room for the compressed part: ``OutputError`` naming the temporary ``.zst``,
    which is removed; the plain part stays temporary and whole, and is sealed by a later
    tick once there is room (after the retry delay)."""
    clock = Clock()
    w = PartWriter(small_disk / "out", max_seconds=60, compress=True, clock=clock)
    w.open(None)
    # Random bytes do not compress: the .zst needs as much room as the part.
    noise = os.urandom(200_000).hex().encode()[:300_000]
    data = b"".join(
        b'{"unit":0,"line":%d,"pad":"%s"}\n' % (j, noise[j * 1000 : (j + 1) * 1000])
        for j in range(300)
    )
    cur = w.write(data)
    w.committed(cur)
    filler = fill_but_one_page(small_disk)
    clock.now += 60
    with pytest.raises(
        OutputError,
        match=r"cannot write .*\.part-000001\.ndjson\.zst\.tmp: No space left on device",
    ):
        w.tick()
    assert [p.name for p in (small_disk / "out").rglob(".part-*")] == [".part-000001.ndjson.tmp"]
    assert w.parts() == []
    filler.unlink()
    w.tick()  # within the retry delay: not yet
    assert w.parts() == []
    clock.now += 10
    w.tick()
    assert [zstandard.decompress(p.read_bytes()) for p in w.parts()] == [data]
    w.close()


# -- kill -9 ----------------------------------------------------------------------------

# The writer's client, run as its own process: units written in a loop, each cursor
# committed to a state file (temp + rename: the stand-in for the state store) before
# ``committed``. DIE="point:n" kills the process (SIGKILL, no clean-up) the n-th time it
# reaches ``point``; without it the parent kills it at a random moment.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import msgspec
    import regsweep.cli.service.parts as parts_mod
    from regsweep.cli.service.parts import Cursor, PartWriter

    root, state, compress, max_bytes, pad, stop = sys.argv[1:]
    point, _, nth = os.environ.get("DIE", "").partition(":")
    seen = {}

    def die(where):
        if where == point:
            seen[where] = seen.get(where, 0) + 1
            if seen[where] == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    real_rename, real_pwrite, real_fsync = os.rename, os.pwrite, os.fsync

    def rename(src, dst):
        die("before-rename")
        real_rename(src, dst)
        die("after-rename")

    def pwrite(fd, data, offset):
        if point == "mid-write" and seen.get("mid-write", 0) + 1 == int(nth):
            real_pwrite(fd, data[: len(data) // 2], offset)
        die("mid-write")
        return real_pwrite(fd, data, offset)

    def fsync(fd):
        die("fsync")
        real_fsync(fd)

    os.rename, os.pwrite, os.fsync = rename, pwrite, fsync

    real_zstd = parts_mod.zstandard

    class Half:
        def __init__(self, level):
            self.c = real_zstd.ZstdCompressor(level=level)

        def copy_stream(self, src, dst, size):
            if point == "mid-compress" and seen.get(point, 0) + 1 == int(nth):
                dst.write(self.c.compress(src.read(size // 2))[:100])
                dst.flush()
            die("mid-compress")
            return self.c.copy_stream(src, dst, size=size)

    class Zstd:
        ZstdCompressor = Half

    parts_mod.zstandard = Zstd

    st = msgspec.json.decode(Path(state).read_bytes()) if Path(state).exists() else None
    w = PartWriter(Path(root), max_bytes=int(max_bytes), compress=compress == "1")
    w.open(Cursor.decode(st["cursor"].encode()) if st else None)
    print("ready", flush=True)
    n = st["unit"] + 1 if st else 0
    while n < int(stop):
        cur = w.write(unit(n, int(pad)))
        die("before-commit")
        tmp = Path(state + ".tmp")
        tmp.write_bytes(msgspec.json.encode({"cursor": cur.encode().decode(), "unit": n}))
        os.replace(tmp, state)
        die("after-commit")
        w.committed(cur)
        n += 1
    w.close()
    """
)


def _child(
    root: Path, compress: bool, *, max_bytes: int = 4000, pad: int = 200, stop: int = 10**9,
    die: str = "",
) -> subprocess.Popen[str]:  # fmt: skip
    script = root.parent / "child.py"
    # ``unit`` itself, so that the child writes what the checks expect.
    script.write_text(inspect.getsource(unit) + CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(root.parent / "state.json"),
         "1" if compress else "0", str(max_bytes), str(pad), str(stop)],
        stdout=subprocess.PIPE, text=True, cwd=paths.REPO,
        env={**os.environ, "DIE": die, "PYTHONPATH": str(paths.REPO)},
    )  # fmt: skip


def _committed_units(root: Path) -> int:
    state = root.parent / "state.json"
    return int(msgspec.json.decode(state.read_bytes())["unit"]) + 1 if state.exists() else 0


def _check_complete_parts_are_a_committed_prefix(root: Path) -> None:
    """What readers can see now (before any recovery): whole lines, each once, in order,
    all committed."""
    seen = read_all(root)
    assert seen == expected(len({u for u, _ in seen}))
    assert len({u for u, _ in seen}) <= _committed_units(root)


def _recover_and_check(root: Path, compress: bool) -> None:
    """Reopen with the last committed cursor and close: exactly the committed units, each
    once, nothing temporary left."""
    state = root.parent / "state.json"
    st = msgspec.json.decode(state.read_bytes())
    w = PartWriter(root, compress=compress)
    w.open(Cursor.decode(st["cursor"].encode()))
    w.close()
    assert read_all(root) == expected(st["unit"] + 1)
    assert not list(root.rglob(".part-*"))


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "out"
    root.mkdir()
    yield root


@pytest.mark.parametrize("compress", [False, True])
def test_kill_9_at_random_moments_loses_and_doubles_nothing(out: Path, compress: bool) -> None:
    """The writer's process SIGKILLed at random moments, restarted each time from its last
    committed cursor: complete parts only ever hold committed lines, and in the end every
    committed unit is there exactly once, in order, with no partial line."""
    rng = random.Random(17)
    for _ in range(12):
        proc = _child(out, compress, max_bytes=rng.choice([3000, 20_000]))
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        proc.stdout.close()
        _check_complete_parts_are_a_committed_prefix(out)
    assert _committed_units(out) > 50
    assert len(PartWriter(out).parts()) > 5
    _recover_and_check(out, compress)


POINTS = [
    ("before-commit", 7),  # written, not committed: cut at recovery
    ("after-commit", 7),  # committed, ``committed`` not called: sealed at recovery if due
    ("mid-write", 9),  # half a unit in the file
    ("fsync", 3),  # sealing: before the rename (plain) / the .zst's fsync (compressed)
    ("before-rename", 2),
    ("after-rename", 2),  # renamed, directory not synced / plain source not removed
    ("mid-compress", 2),  # a half-written .zst temporary
]


@pytest.mark.parametrize(
    ("point", "nth", "compress"),
    [
        (point, nth, compress)
        for point, nth in POINTS
        for compress in (False, True)
        # Only a compressed part is compressed.
        if compress or point != "mid-compress"
    ],
)
def test_kill_9_at_each_step_of_writing_and_sealing(
    out: Path, compress: bool, point: str, nth: int
) -> None:
    """The process killed at each step (the n-th time it gets there), twice in a row, then
    run to the end: exactly the committed units, each once."""
    for _ in range(2):
        proc = _child(out, compress, die=f"{point}:{nth}")
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"never reached {point}"
        _check_complete_parts_are_a_committed_prefix(out)
    done = _child(out, compress, stop=_committed_units(out) + 5)
    done.communicate()
    assert done.returncode == 0
    assert read_all(out) == expected(_committed_units(out))
    assert not list(out.rglob(".part-*"))


def test_a_part_renamed_but_not_cleaned_up_is_not_sealed_twice(out: Path) -> None:
    """Killed after a ``.zst`` was renamed into place but before its plain source was
    removed, then restarted without compression: the leftover is dropped, not sealed again
    as a ``.ndjson`` beside the ``.ndjson.zst`` (which would double every line in it)."""
    proc = _child(out, True, die="after-rename:2")
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert len(list(out.rglob(".part-*.ndjson.tmp"))) == 1
    _recover_and_check(out, compress=False)
