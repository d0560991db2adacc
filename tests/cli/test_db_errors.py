"""``regsweep db`` on bad input and a hostile system, run as the user runs it (a real
``regsweep`` process): a URL that does not parse, a ``--db`` that cannot be created, a disk
that fills up. Each is one ``regsweep: error:`` line and a non-zero exit (2 for a usage
error), never a traceback."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

import msgspec
import pytest

from regsweep.matcher.index import store, update
from tests import paths
from tests.example import REGSWEEP
from tests.feeds import Fault, MirrorServer, write_osv_mirror

SAMPLES = paths.DATA / "advisories" / "osv"


def run(*args: str, fsize: int | None = None) -> tuple[int, str]:
    """``regsweep ARGS``: its exit status and stderr. ``fsize`` caps the size of any file
    it writes, as a full disk does (``EFBIG`` instead of ``ENOSPC``, the same failure)."""

    def limit() -> None:
        if fsize is not None:
            # Ignored, SIGXFSZ stays ignored across exec: a write past the limit fails
            # with EFBIG instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    done = subprocess.run(
        [REGSWEEP, *args], capture_output=True, text=True, check=False, preexec_fn=limit
    )
    return done.returncode, done.stderr


def last_error(stderr: str) -> str:
    """The last line of stderr, which must be the one error line; nothing of a traceback."""
    assert "Traceback" not in stderr, stderr
    line = stderr.rstrip("\n").splitlines()[-1]
    assert line.startswith("regsweep: error: "), stderr
    return line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["db", "update", "--mirror", "http://[::1/"], "a mirror must be an http:// or https://"),
        (["db", "feeds", "--mirror", "http://[::1/"], "a mirror must be an http:// or https://"),
        (["db", "update", "--from", "http://[::1/x.zip"], "Invalid IPv6 URL"),
        (["db", "update", "--from", "http://127.0.0.1:99999/x.zip"], "Port out of range"),
        (["db", "update", "--mirror", "http://127.0.0.1:http/"], "a mirror must be"),
        (["db", "update", "--from", "http:///x.zip"], "a feed must be an http:// or https://"),
    ],
)
def test_a_url_that_does_not_parse_is_a_usage_error(
    tmp_path: Path, args: list[str], says: str
) -> None:
    """Caught before any request: exit 2, the URL and the reason on one line."""
    if args[1] == "update":
        args = [*args, "--db", str(tmp_path / "adv.lmdb")]
    code, err = run(*args)
    assert code == 2, err
    assert err.count("\n") == 1 and says in last_error(err), err
    assert not (tmp_path / "adv.lmdb.feeds").exists()


def test_a_db_under_a_path_that_cannot_be_created() -> None:
    """``/proc`` takes no new directory: update and build each say which path, exit 1."""
    db = "/proc/r15/adv.lmdb"
    code, err = run("db", "update", "--db", db, "--mirror", "http://127.0.0.1:9/")
    assert code == 1 and "cannot use /proc/r15/adv.lmdb.feeds as the feed cache" in last_error(err)
    code, err = run("db", "build", "--db", db, str(SAMPLES / "debian"))
    assert code == 1 and "cannot build the index /proc/r15/adv.lmdb" in last_error(err)


def test_a_full_disk_during_a_build_keeps_the_old_index(tmp_path: Path) -> None:
    """The disk fills while the new index is written: one error line, exit 1, and the
    index that was there is still the one a reader opens."""
    db = tmp_path / "adv.lmdb"
    assert run("db", "build", "--db", str(db), str(SAMPLES / "debian"))[0] == 0
    before = db.read_bytes()
    code, err = run("db", "build", "--db", str(db), str(SAMPLES), fsize=32 * 1024)
    assert code == 1 and f"cannot build the index {db}" in last_error(err)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adv.lmdb", "adv.lmdb.build-lock"]
    with store.AdvisoryIndex(db) as index:
        assert index.lookup_alias("DSA-5044-1")


def test_a_manifest_that_cannot_be_written_after_a_build(tmp_path: Path) -> None:
    """The index is built, but the record of which feed copies it holds cannot be written
    (a path in its way; a full disk fails the same call): one error line, exit 1; the next
    update, with the way clear, rebuilds (no record describes the index) and succeeds."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian"], only=["Debian"])
    db = tmp_path / "adv.lmdb"
    blocker = update.feed_dir(db) / "index-feeds.json"
    (blocker / "in-the-way").mkdir(parents=True)
    with MirrorServer(root) as srv:
        args = ["db", "update", "--db", str(db), "--mirror", srv.base, "--ecosystem", "Debian"]
        code, err = run(*args)
        assert code == 1, err
        assert f"built {db}, but cannot record which feed copies it holds" in last_error(err)
        assert db.is_file()
        # Nor is the manifest's temporary file left behind.
        assert not list(update.feed_dir(db).glob("*.tmp-*"))
        (blocker / "in-the-way").rmdir()
        blocker.rmdir()
        code, err = run(*args)
    assert code == 0, err
    assert "Debian: not modified" in err and "index built in" in err


SECRET = "s3cret-pw"


def test_credentials_in_a_feed_url_are_refused_and_never_stored_or_shown(tmp_path: Path) -> None:
    """``--mirror`` or ``--from`` with ``user:password@`` (or a bare token) in the URL: exit 2
    before any request, the URL shown as ``user:***@`` / ``***@``; the password is in no
    file beside the index (a state file of an earlier update included) and in no output,
    even when the URL does not parse either."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES / "debian"], only=["Debian"])
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        base = ["db", "update", "--db", str(db)]
        debian = ["--ecosystem", "Debian"]
        assert run(*base, "--mirror", srv.base, *debian)[0] == 0
        served = len(srv.requests)
        port = srv.port
        cases = [
            (
                [*base, "--mirror", f"http://alice:{SECRET}@127.0.0.1:{port}/", *debian],
                f"http://alice:***@127.0.0.1:{port}/",
            ),
            (
                [*base, "--from", f"http://alice:{SECRET}@127.0.0.1:{port}/Debian/all.zip"],
                "http://alice:***@127.0.0.1",
            ),
            (
                [*base, "--mirror", f"http://{SECRET}@127.0.0.1:{port}/", *debian],
                "http://***@127.0.0.1",
            ),
            (
                [*base, "--from", f"http://a:{SECRET}@127.0.0.1:{port}/x.zip#sha256=00"],
                "http://a:***@127.0.0.1",
            ),
            ([*base, "--mirror", f"http://alice:{SECRET}@[::1/"], "http://alice:***@[::1/"),
            (["db", "feeds", "--mirror", f"https://alice:{SECRET}@mirror.internal/osv"], "***@"),
        ]
        for args, shown in cases:
            done = subprocess.run([REGSWEEP, *args], capture_output=True, text=True, check=False)
            assert done.returncode == 2, (args, done.stderr)
            line = last_error(done.stderr)
            assert shown in line and "credentials do not belong in" in line, line
            assert SECRET not in done.stdout + done.stderr
        assert len(srv.requests) == served
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents]
    assert any(p.name.endswith(".state") for p in stored)
    assert not [p for p in stored if SECRET.encode() in p.read_bytes()]
    info = subprocess.run([REGSWEEP, "db", "info", "--db", str(db)], capture_output=True, text=True)
    assert info.returncode == 0 and SECRET not in info.stdout + info.stderr


def test_a_state_file_with_credentials_from_an_older_update_is_rewritten_without(
    tmp_path: Path,
) -> None:
    """State files written before credentials were refused may hold them: the next update
    of the feed, answered 304 or failed, records the URL it used instead."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES], only=["Debian", "PyPI"])
    db = tmp_path / "adv.lmdb"
    with MirrorServer(root) as srv:
        args = ["db", "update", "--db", str(db), "--mirror", srv.base]
        args += ["--ecosystem", "Debian", "--ecosystem", "PyPI"]
        assert run(*args)[0] == 0
        states = sorted(update.feed_dir(db).glob("*.state"))
        assert len(states) == 2
        for state in states:
            doc = msgspec.json.decode(state.read_bytes())
            doc["url"] = doc["url"].replace("http://", f"http://alice:{SECRET}@")
            state.write_bytes(msgspec.json.encode(doc))
        srv.faults["/PyPI/all.zip"] = Fault(status=500)
        code, err = run(*args)
    assert code == 1 and "Debian: not modified" in err and "PyPI: FAILED" in err
    assert [s for s in states if SECRET.encode() in s.read_bytes()] == []
