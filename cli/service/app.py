"""The service's HTTP API (aiohttp.web, on the service's own loop).

Read endpoints need no token: ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
``GET /v1/crawls`` and ``GET /v1/images/{digest}``. Write endpoints, ``POST /v1/scan`` and
``POST /v1/notifications``, need ``Authorization: Bearer TOKEN`` (the token from the
environment variable ``[server] token_env`` names; without it they refuse every request),
take bodies up to ``[server] max_body`` and at most ``[server] write_rate`` requests a
second. A scan is only ever of a configured registry, with that registry's credentials:
a notification or request naming another host is refused, so the service cannot be made
to fetch from (or send credentials to) a host of someone else's choosing.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web
from yarl import URL

from regsweep.cli.service import config as cfg
from regsweep.cli.service.core import ScanJob, Service
from regsweep.cli.service.metrics import CONTENT_TYPE
from regsweep.crawler.oci import InvalidReference
from regsweep.crawler.refs import parse_registry_ref, refuse_credentials
from regsweep.matcher.output.ndjson import encode_lines

log = structlog.get_logger("regsweep.serve.api")

#: What Docker Distribution sends (and what a person testing with curl might).
NOTIFICATION_TYPES = ("application/vnd.docker.distribution.events.v1+json", "application/json")
#: Manifest media types whose push is an image to scan (blob pushes are not).
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


class _Target(msgspec.Struct, rename="camel"):
    media_type: str = ""
    digest: str = ""
    repository: str = ""
    url: str = ""
    tag: str | None = None


class _Request(msgspec.Struct):
    host: str = ""


class _Event(msgspec.Struct):
    action: str = ""
    target: _Target = msgspec.field(default_factory=_Target)
    request: _Request = msgspec.field(default_factory=_Request)


class _Envelope(msgspec.Struct):
    events: list[_Event] = []


class _ScanRequest(msgspec.Struct, forbid_unknown_fields=True):
    ref: str


class _Bucket:
    """A token bucket: ``rate`` requests a second, bursts of as many."""

    def __init__(self, rate: float) -> None:
        # At least one whole token: a rate below 1/s still lets one request through.
        self.rate, self.capacity = rate, max(1.0, rate)
        self.tokens, self.at = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode({"error": message}),
        content_type="application/json", headers=headers,
    )  # fmt: skip


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(obj), content_type="application/json"
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


class Api:
    """The routes, bound to one ``Service``."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.bucket = _Bucket(service.conf.server.write_rate)
        token = service.token
        self._token = None if not token else token.encode("utf-8", "surrogateescape")

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=cfg.parse_size(self.service.conf.server.max_body))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/crawls", self.crawls)
        app.router.add_get("/v1/images/{digest}", self.image)
        app.router.add_post("/v1/scan", self._write(self.scan))
        app.router.add_post("/v1/notifications", self._write(self.notifications))
        return app

    def _write(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            # Header bytes that are not UTF-8 arrive as surrogates: compared, never a 500.
            sent = given.strip().encode("utf-8", "surrogateescape")
            if (
                self._token is None
                or scheme.lower() != "bearer"
                or not hmac.compare_digest(sent, self._token)
            ):
                # Neither what was sent nor what is expected is said or logged.
                return _error(401, "a bearer token is required", **{"WWW-Authenticate": "Bearer"})
            if not self.bucket.take():
                return _error(429, "too many requests", **{"Retry-After": "1"})
            if request.content_length is not None and request.content_length > (
                request.app._client_max_size  # noqa: SLF001 - aiohttp keeps it there
            ):
                return _error(413, "request body too large")
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                return _error(413, "request body too large")

        return checked

    async def healthz(self, request: web.Request) -> web.Response:
        """Alive: the loop answers."""
        return _json({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready: the index is loaded and the state store and output are open."""
        checks = self.service.ready
        ok = all(checks.values())
        return _json({"ready": ok, "checks": checks}, 200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text format."""
        self.service.metrics.queue_depth.set(self.service.queue.qsize())
        return web.Response(
            body=self.service.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def crawls(self, request: web.Request) -> web.Response:
        """Each configured registry's crawl status."""
        return _json({"registries": [r.status for r in self.service.registries.values()]})

    async def image(self, request: web.Request) -> web.Response:
        """The records of one image (platform manifest digest) as judged now."""
        digest = request.match_info["digest"]
        if not _DIGEST.fullmatch(digest):
            return _error(400, "expected a sha256:… manifest digest")
        if self.service.matcher is None:
            return _error(503, "the advisory index is not loaded yet")
        records = await self.service.current_records(digest)
        if not records:
            return _error(404, f"{digest} is not a stored image")
        return web.Response(
            body=b"".join(encode_lines(records)), content_type="application/x-ndjson"
        )

    async def scan(self, request: web.Request) -> web.Response:
        """Queue a scan of ``{"ref": "HOST/REPO:TAG"}`` (a configured registry's image)."""
        try:
            body = msgspec.json.decode(await request.read(), type=_ScanRequest)
            refuse_credentials(body.ref)
            ref = parse_registry_ref(body.ref)
        except (msgspec.DecodeError, InvalidReference) as exc:
            return _error(400, str(exc) if isinstance(exc, InvalidReference) else
                          'expected {"ref": "HOST/REPOSITORY:TAG"}')  # fmt: skip
        conf = cfg.registry_for(self.service.conf, ref.host)
        if conf is None:
            return _error(404, f"{ref.host} is not a configured registry")
        if not self.service.wanted(conf, ref.repository, ref.tag):
            return _error(403, f"{ref.repository}:{ref.tag} is not covered by {conf.name}'s "
                          "repos, exclude and tags")  # fmt: skip
        job = ScanJob(conf.name, ref.repository, ref.digest or ref.tag or "latest")
        queued = self.service.request_scan(job)
        if queued is None:
            return _error(503, "the scan queue is full", **{"Retry-After": "30"})
        return _json({"ref": job.key, "queued": queued}, 202)

    async def notifications(self, request: web.Request) -> web.Response:
        """Docker Distribution notification envelopes: every manifest push by tag of a
        repository a configured registry's crawl covers is queued for a scan."""
        ctype = request.content_type
        if ctype not in NOTIFICATION_TYPES:
            return _error(415, f"expected {NOTIFICATION_TYPES[0]}")
        try:
            envelope = msgspec.json.decode(await request.read(), type=_Envelope)
        except msgspec.DecodeError as exc:
            self.service.metrics.notifications.labels("malformed").inc()
            return _error(400, f"not a notification envelope: {exc}")
        counted = self.service.metrics.notifications
        for event in envelope.events:
            outcome = self._event(event)
            counted.labels(outcome).inc()
        # Docker Distribution retries anything but a 2xx: what was ignored is still taken.
        return _json({"events": len(envelope.events)})

    def _event(self, event: _Event) -> str:
        t = event.target
        if event.action != "push" or t.media_type not in MANIFEST_TYPES:
            return "ignored"
        if not t.tag:
            # A crawl walks tags: an untagged manifest (an index's child) is scanned with
            # the tag that names it.
            return "untagged"
        host = _host_of(t.url) or _host_of(f"//{event.request.host}")
        conf = cfg.registry_for(self.service.conf, host)
        if conf is None:
            log.warning("notification_unknown_registry", host=host[:255])
            return "unknown_registry"
        try:
            # The registry's own grammar: nothing else is put in a URL the service fetches.
            ref = parse_registry_ref(f"{conf.name}/{t.repository}:{t.tag}")
        except InvalidReference:
            return "invalid"
        if not self.service.wanted(conf, ref.repository, ref.tag):
            return "not_crawled"
        assert ref.tag is not None
        queued = self.service.request_scan(ScanJob(conf.name, ref.repository, ref.tag, push=True))
        return "queue_full" if queued is None else "queued"


def _host_of(url: str) -> str:
    """``host[:port]`` of a URL, without any user information (never logged or matched)."""
    try:
        parsed = URL(url)
    except ValueError:
        return ""
    host = parsed.raw_host or ""
    port = parsed.explicit_port
    return f"{host}:{port}" if port is not None and host else host


async def serve(service: Service) -> Callable[[], Awaitable[None]]:
    """Start the API on ``[server] listen``; returns what stops it."""
    runner = web.AppRunner(Api(service).app(), access_log=None, handle_signals=False)
    await runner.setup()
    server = service.conf.server
    site = web.TCPSite(runner, server.host, server.port)
    await site.start()
    log.info("api_listening", listen=f"{server.host}:{_bound_port(site, server.port)}")
    return runner.cleanup


def _bound_port(site: web.TCPSite, asked: int) -> int:
    server = site._server  # noqa: SLF001 - the bound port is only known there
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else asked
