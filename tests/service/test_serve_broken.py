"""``regsweep serve`` whose state store fails (its disk is full): it stops producing output
and exits 1 rather than seal lines whose findings were not stored (which a restart would
write again)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

from tests.crawler.registry.conftest import _start, _stop
from tests.crawler.registry.images import build_images, push
from tests.example import REGSWEEP, advisory_index
from tests.service.common import free_port


def test_a_failing_state_store_stops_the_service_before_any_part_is_sealed(
    tmp_path: Path, small_disk: Path
) -> None:
    registry = _start(tmp_path / "run", tmp_path / "storage", "broken")
    try:
        push(registry.url, build_images(page_repos=0))
        db = advisory_index(tmp_path / "db.lmdb")
        # Room to create the store, not to fill it.
        (small_disk / "filler").write_bytes(b"\0" * (1024 - 64) * 1024)
        config = tmp_path / "serve.toml"
        config.write_text(f"""
[server]
listen = "127.0.0.1:{free_port()}"
[paths]
db = "{db}"
state = "{small_disk / "state.lmdb"}"
output = "{tmp_path / "out"}"
[output]
max_age = "1s"
[[registry]]
url = "{registry.url}"
credentials = "none"
""")
        proc = subprocess.run(
            [REGSWEEP, "serve", "--config", str(config)], capture_output=True, timeout=60
        )
    finally:
        _stop(registry)
    events = [msgspec.json.decode(line) for line in proc.stderr.splitlines() if line[:1] == b"{"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    broken = [e for e in events if e["event"] == "service_broken"]
    assert len(broken) == 1 and "state store" in broken[0]["error"]
    assert b"Traceback" not in proc.stderr, [e for e in events if "exception" in e]
    # Nothing was stored, so nothing may be final: the lines written are left in the
    # temporary part, which the next start cuts back to the stored position.
    assert not list((tmp_path / "out").rglob("part-*.ndjson"))
