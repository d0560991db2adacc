"""``regsweep db feeds`` (the catalog) and what ``db update`` shows: progress bars on a
terminal, plain lines otherwise."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import msgspec
from click.testing import CliRunner

from regsweep.cli.main import main
from regsweep.matcher.index import catalog
from tests import paths
from tests.example import REGSWEEP
from tests.feeds import MirrorServer, write_osv_mirror

SAMPLES = paths.DATA / "advisories" / "osv"


def test_db_feeds_lists_the_catalog() -> None:
    """One line per feed db update fetches by default, name and URL; the ecosystems left
    out, and the feeds fetched only when named, are said on stderr, so that stdout stays a
    list."""
    result = CliRunner().invoke(main, ["db", "feeds"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(catalog.select())
    rocky = next(ln for ln in lines if ln.startswith("Rocky Linux "))
    assert rocky.split()[-1] == f"{catalog.OSV_EXPORTS}Rocky%20Linux/all.zip"
    nvd = next(ln for ln in lines if ln.startswith("NVD-2002 "))
    assert nvd.split()[-1] == "https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-2002.json.zip"
    assert "not in the catalog: DHI" in result.stderr
    assert "only when named: CVE-List https://github.com/CVEProject/" in result.stderr


def test_db_feeds_on_a_mirror_and_as_json() -> None:
    result = CliRunner().invoke(
        main, ["db", "feeds", "--json", "--mirror", "http://10.1.2.3/osv", "--ecosystem", "red hat"]
    )
    assert result.exit_code == 0
    assert msgspec.json.decode(result.stdout) == [
        {
            "name": "Red Hat",
            "url": "http://10.1.2.3/osv/Red%20Hat/all.zip",
            "ecosystems": ["Red Hat"],
        }
    ]
    bad = CliRunner().invoke(main, ["db", "feeds", "--ecosystem", "Arch"])
    assert bad.exit_code == 2 and "not in the feed catalog: Arch" in bad.output


def _update(base: str, db: Path, stderr_tty: bool) -> bytes:
    args = [REGSWEEP, "db", "update", "--db", str(db), "--mirror", base]
    args += ["--ecosystem", "Debian", "--ecosystem", "Go"]
    if not stderr_tty:
        done = subprocess.run(args, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(60) == 0, out.decode(errors="replace")
    finally:
        os.close(master)
    return bytes(out)


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, each feed gets a download bar (rich's bar glyphs, its
    byte counts); with stderr a pipe, only the plain per-feed lines, no control codes."""
    root = tmp_path / "mirror"
    write_osv_mirror(root, [SAMPLES], only=["Debian", "Go"])
    with MirrorServer(root) as srv:
        tty = _update(srv.base, tmp_path / "a.lmdb", stderr_tty=True).decode(errors="replace")
        plain = _update(srv.base, tmp_path / "b.lmdb", stderr_tty=False).decode()
    assert "━" in tty and "\x1b[" in tty
    assert "Debian" in tty and "Go" in tty
    assert "━" not in plain and "\x1b" not in plain and "\r" not in plain
    assert "Debian: downloaded" in plain and "Go: downloaded" in plain
