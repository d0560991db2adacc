"""``regsweep serve`` with ``[feeds] update_interval``: with no index yet, the service is
not ready, runs ``regsweep db update`` from the configured feeds (an osv.dev-style mirror on
loopback), and becomes ready with the index it built."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import msgspec

from tests import paths
from tests.example import REGSWEEP
from tests.feeds import MirrorServer, write_osv_mirror
from tests.service.common import call, free_port


def test_a_service_without_an_index_updates_its_feeds_and_becomes_ready(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    write_osv_mirror(mirror, [paths.DATA / "advisories" / "osv"], only=["Debian", "PyPI"])
    port = free_port()
    db = tmp_path / "db" / "advisories.lmdb"
    log = tmp_path / "serve.log"
    with MirrorServer(mirror) as srv:
        config = tmp_path / "serve.toml"
        config.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
[paths]
db = "{db}"
state = "{tmp_path / "state.lmdb"}"
output = "{tmp_path / "out"}"
[feeds]
update_interval = "6h"
urls = ["{srv.url("/Debian/all.zip")}", "{srv.url("/PyPI/all.zip")}"]
""")
        db.parent.mkdir()
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [REGSWEEP, "serve", "--config", str(config)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            api = f"http://127.0.0.1:{port}"
            statuses = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                code, body = call(f"{api}/readyz")
                statuses.append(code)
                if code == 200:
                    break
                time.sleep(0.05)
            assert statuses[-1] == 200, log.read_text()[-3000:]
            # Not ready before the index was there (the first answers), ready after.
            assert 503 in statuses
            assert msgspec.json.decode(body)["checks"]["index"] is True
            served = {r.path for r in srv.requests}
            assert {"/Debian/all.zip", "/PyPI/all.zip"} <= served
            events = [
                msgspec.json.decode(line).get("event") for line in log.read_bytes().splitlines()
            ]
            assert "feed_update_done" in events and "index_loaded" in events
            info = subprocess.run([REGSWEEP, "db", "info", "--db", str(db), "--json"],
                                  capture_output=True, check=True)  # fmt: skip
            assert msgspec.json.decode(info.stdout)["advisories"] > 0
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
