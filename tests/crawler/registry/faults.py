"""Loopback test servers on a background event loop: a fault-injecting proxy and a blob sink.

Each test runs its client on its own uvloop (``uvloop.run``), so session-wide servers cannot
live on the test's loop: they run on one :class:`LoopThread` for the whole session.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
from aiohttp import web

_T = TypeVar("_T")

#: Headers that describe one hop, not the resource: never forwarded by the proxy.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "host",
        "upgrade",
        "proxy-authorization",
        "te",
        "trailer",
    }
)


class LoopThread:
    """An asyncio loop in a daemon thread, for servers shared by every test of a session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float = 30) -> _T:
        """Run ``coro`` on the background loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def start_site(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 with a kernel-chosen port; return the runner and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port: int = server.sockets[0].getsockname()[1]
    return runner, port


Action = Literal[
    "respond", "drop", "truncate", "corrupt", "slow", "redirect", "ignore_range", "trickle"
]


@dataclass
class Fault:
    """One rule: requests whose ``METHOD path?query`` matches ``pattern`` get ``action``
    (``times`` times; ``-1`` forever). ``delay``: how long before answering, or for
    ``trickle`` the pause between two body bytes."""

    pattern: str
    action: Action
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    used: int = 0


@dataclass
class Seen:
    """A request as the proxy (or sink) saw it."""

    method: str
    path_qs: str
    authorization: str | None
    #: The ``Range`` header (a resumed blob transfer).
    range: str | None = None


class FaultProxy:
    """A reverse proxy in front of a registry that can misbehave on demand.

    Faults: a canned answer (500, 429 + ``Retry-After``, a fake page with a ``Link``, a
    schema 1 manifest), a dropped connection, a body cut in half, a corrupted body (one byte
    flipped), a slow answer, a slow-loris answer (headers at once, then one body byte per
    ``delay`` seconds), a server that ignores ``Range`` (200 and the whole body), and a 307
    redirect of blob GETs to :class:`BlobSink` on another port (another origin).
    """

    def __init__(
        self, upstream: str, sink_url: str, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self._ssl_context = ssl_context
        self.sink_url = sink_url
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until no request is being handled (a previous test's slow answer may still
        be sleeping), so that ``max_in_flight`` measures only the current test."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset(self, *faults: Fault) -> None:
        """Forget what was seen and install ``faults`` (called from the test thread; the
        lists are replaced whole, so the proxy loop never sees a half-built one)."""
        self.faults = list(faults)
        self.seen = []
        self.max_in_flight = 0

    async def start(self) -> None:
        """Bind the proxy and open its upstream session."""
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await start_site(app, self._ssl_context)

    async def stop(self) -> None:
        """Close the upstream session and the listener."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    def _match(self, request: web.Request) -> Fault | None:
        line = f"{request.method} {request.path_qs}"
        for fault in self.faults:
            if fault.times != -1 and fault.used >= fault.times:
                continue
            if re.search(fault.pattern, line):
                fault.used += 1
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                request.headers.get("Authorization"),
                request.headers.get("Range"),
            )
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._dispatch(request)
        finally:
            self.in_flight -= 1

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        fault = self._match(request)
        if fault is None:
            status, headers, body = await self._forward(request)
            return web.Response(status=status, headers=headers, body=body)
        if fault.delay and fault.action != "trickle":
            await asyncio.sleep(fault.delay)
        match fault.action:
            case "respond":
                return web.Response(status=fault.status, headers=fault.headers, body=fault.body)
            case "drop":
                # Close the socket without an answer: the client sees a disconnect.
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            case "truncate":
                # Announce the full length, send half, then cut the connection.
                status, headers, body = await self._forward(request)
                resp = web.StreamResponse(status=status, headers=headers)
                resp.content_length = len(body)
                await resp.prepare(request)
                await resp.write(body[: len(body) // 2])
                assert request.transport is not None
                request.transport.abort()
                return resp
            case "corrupt":
                status, headers, body = await self._forward(request)
                if body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                return web.Response(status=status, headers=headers, body=body)
            case "slow":
                status, headers, body = await self._forward(request)
                return web.Response(status=status, headers=headers, body=body)
            case "ignore_range":
                status, headers, body = await self._forward(request, ranged=False)
                return web.Response(status=status, headers=headers, body=body)
            case "trickle":
                # Slow loris: the headers at once, then the body a byte at a time, slowly
                # enough that no read timeout between two bytes ever fires.
                status, headers, body = await self._forward(request)
                resp = web.StreamResponse(status=status, headers=headers)
                resp.content_length = len(body)
                await resp.prepare(request)
                try:
                    for i in range(len(body)):
                        await resp.write(body[i : i + 1])
                        await asyncio.sleep(fault.delay)
                except ConnectionResetError:
                    pass  # the client gave up, as it should
                return resp
            case "redirect":
                digest = request.path.rsplit("/", 1)[-1]
                location = f"{self.sink_url}/storage/{digest}?signature=x"
                return web.Response(status=307, headers={"Location": location})

    async def _forward(
        self, request: web.Request, *, ranged: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` upstream (without its ``Range`` unless ``ranged``); the answer."""
        assert self._client is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP and (ranged or k.lower() != "range")
        }
        async with self._client.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as up:
            body = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            return up.status, out, body


class BlobSink:
    """Stands in for blob storage on another host: serves registered blobs by digest and
    records the headers of every request (to prove no ``Authorization`` arrives)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.seen: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Bind the sink."""
        app = web.Application()
        app.router.add_get("/storage/{digest}", self._handle)
        self._runner, self.port = await start_site(app)

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            Seen(request.method, request.path_qs, request.headers.get("Authorization"))
        )
        data = self.blobs.get(request.match_info["digest"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")
