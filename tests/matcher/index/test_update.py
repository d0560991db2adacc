"""``regsweep db update`` against a real HTTP server on 127.0.0.1 (aiohttp), ETag and all."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from click.testing import CliRunner

from regsweep.cli.main import main
from regsweep.matcher.index import store


def osv_zip(*records: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rec in records:
            zf.writestr(f"{rec['id']}.json", msgspec.json.encode(rec))
    return buf.getvalue()


def dsa(adv_id: str, package: str, fixed: str) -> dict[str, object]:
    return {
        "id": adv_id,
        "modified": "2023-04-01T00:00:00Z",
        "related": ["CVE-2023-0286"],
        "affected": [
            {
                "package": {"ecosystem": "Debian:11", "name": package},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


class FeedServer:
    """A feed host: serves ``files`` with strong ETags and answers 304 to a matching
    If-None-Match; records every request's method, path and validator."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = self.files.get(request.path)
        inm = request.headers.get("If-None-Match")
        if body is None:
            status = 404
            resp: web.StreamResponse = web.Response(status=404)
        else:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if inm == etag:
                status, resp = 304, web.Response(status=304, headers={"ETag": etag})
            else:
                status, resp = 200, web.Response(body=body, headers={"ETag": etag})
        self.requests.append((request.path, inm, status))
        return resp

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{name:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> FeedServer:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def update(db: Path, *urls: str) -> tuple[int, str]:
    args = ["db", "update", "--db", str(db)]
    for u in urls:
        args += ["--from", u]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_update_downloads_builds_and_then_revalidates_with_etag(
    server: FeedServer, tmp_path: Path
) -> None:
    """First update downloads and builds; the second sends If-None-Match, gets 304 and keeps
    the index; a changed feed is downloaded again and the index rebuilt."""
    server.files["/debian/all.zip"] = osv_zip(dsa("DSA-1", "openssl", "1.1.1n-0+deb11u4"))
    db = tmp_path / "adv.lmdb"
    code, out = update(db, server.url("/debian/all.zip"))
    assert code == 0, out
    with store.AdvisoryIndex(db) as index:
        assert index.meta.advisories == 1
        built = index.meta.built_at
    assert server.requests[-1] == ("/debian/all.zip", None, 200)

    code, out = update(db, server.url("/debian/all.zip"))
    assert code == 0 and "up to date" in out
    path, inm, status = server.requests[-1]
    assert inm is not None and status == 304
    with store.AdvisoryIndex(db) as index:
        assert index.meta.built_at == built

    server.files["/debian/all.zip"] = osv_zip(
        dsa("DSA-1", "openssl", "1.1.1n-0+deb11u4"), dsa("DSA-2", "zlib", "1:1.2.13.dfsg-1")
    )
    code, out = update(db, server.url("/debian/all.zip"))
    assert code == 0, out
    assert server.requests[-1][2] == 200
    with store.AdvisoryIndex(db) as index:
        assert index.meta.advisories == 2


def test_sha256_pin_rejects_a_tampered_feed_and_keeps_the_old_index(
    server: FeedServer, tmp_path: Path
) -> None:
    """A download that does not hash to its pin fails the update; nothing is replaced."""
    good = osv_zip(dsa("DSA-1", "openssl", "1.1.1n-0+deb11u4"))
    server.files["/f.zip"] = good
    db = tmp_path / "adv.lmdb"
    pin = hashlib.sha256(good).hexdigest()
    assert update(db, server.url("/f.zip") + f"#sha256={pin}")[0] == 0
    server.files["/f.zip"] = osv_zip(dsa("DSA-EVIL", "openssl", "9"))
    code, out = update(db, server.url("/f.zip") + f"#sha256={pin}")
    assert code == 1 and "does not match the pinned" in out
    with store.AdvisoryIndex(db) as index:
        assert [a.id for a in index.lookup_alias("DSA-1")] == ["DSA-1"]
        assert index.lookup_alias("DSA-EVIL") == []


def test_http_errors_and_bad_urls_are_clear_failures(server: FeedServer, tmp_path: Path) -> None:
    """A 404 is exit 1 naming the URL; a non-HTTP URL or a malformed pin is a usage error."""
    db = tmp_path / "adv.lmdb"
    code, out = update(db, server.url("/missing.zip"))
    assert code == 1 and "HTTP 404" in out and not db.exists()
    assert update(db, "ftp://127.0.0.1/x.zip")[0] == 2
    assert update(db, server.url("/x.zip") + "#sha256=abc")[0] == 2
