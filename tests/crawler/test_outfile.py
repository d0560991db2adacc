"""``-o FILE``: written as ``FILE.partial`` under a lock, renamed into place when complete."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regsweep.crawler.outfile import OutputBusy, PartialFile, partial_path
from regsweep.crawler.state import ResumableOutput, StateStore


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(tmp_path / "state.lmdb")
    yield s  # type: ignore[misc]
    s.close()


def test_a_rerun_replaces_the_previous_result_only_when_complete(
    store: StateStore, tmp_path: Path
) -> None:
    """The previous complete output stays whole while the next run writes, and after a run
    that stops early; the complete rerun replaces it in one step."""
    path = tmp_path / "out.ndjson"
    first = ResumableOutput(store, "c", path)
    first.write_image("a", [b"old\n"])
    first.complete([b"summary\n"])
    assert path.read_bytes() == b"old\nsummary\n"

    again = ResumableOutput(store, "c", path)
    again.write_image("a", [b"new\n"])
    again.checkpoint()
    assert path.read_bytes() == b"old\nsummary\n"
    assert partial_path(path).read_bytes() == b"new\n"
    again.close()  # stopped (SIGTERM): the previous result is still the output
    assert path.read_bytes() == b"old\nsummary\n"

    resumed = ResumableOutput(store, "c", path)
    assert resumed.resumed and resumed.is_done("a")
    resumed.complete([b"summary 2\n"])
    assert path.read_bytes() == b"new\nsummary 2\n"
    assert not partial_path(path).exists()


def test_a_second_writer_of_the_same_output_is_refused(store: StateStore, tmp_path: Path) -> None:
    """Two crawls into one file would interleave and each checkpoint the other's bytes:
    while one holds it, the other refuses before writing or truncating anything."""
    path = tmp_path / "out.ndjson"
    first = ResumableOutput(store, "c", path)
    first.write_image("a", [b"1\n"])
    first.checkpoint()
    with pytest.raises(OutputBusy, match="being written by another run"):
        ResumableOutput(store, "c", path)
    with pytest.raises(OutputBusy):
        ResumableOutput(store, "other filters, same file", path)
    assert partial_path(path).read_bytes() == b"1\n"
    first.complete()
    ResumableOutput(store, "c", path).complete()


_HOLD = textwrap.dedent(
    """
    import sys, time
    from regsweep.crawler.outfile import PartialFile
    f = PartialFile(sys.argv[1])
    f.fh.write(b"theirs\\n")
    f.fh.flush()
    print("held", flush=True)
    sys.stdin.readline()
    f.commit()
    """
)


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    """Another process's run holds the file; once it has committed, the name is free."""
    path = tmp_path / "out.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(OutputBusy):
        PartialFile(path)
    proc.stdin.write("\n")
    proc.stdin.close()
    assert proc.wait(10) == 0
    proc.stdout.close()
    assert path.read_bytes() == b"theirs\n"
    mine = PartialFile(path)
    assert mine.fh.read() == b""  # a new partial file, not the committed one
    mine.close()


def test_removing_the_partial_file_starts_the_crawl_over(store: StateStore, tmp_path: Path) -> None:
    """The way to drop an interrupted crawl: its checkpoint goes with the file."""
    path = tmp_path / "out.ndjson"
    out = ResumableOutput(store, "c", path)
    out.write_image("a", [b"1\n"])
    out.close()
    partial_path(path).unlink()
    again = ResumableOutput(store, "c", path)
    assert not again.resumed and not again.is_done("a") and again.records == 0
    again.close()
    assert store.get_checkpoint("c") is not None  # this run's own, empty one
