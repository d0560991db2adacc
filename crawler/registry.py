"""OCI distribution (registry API v2) client on aiohttp.

One :class:`Registry` per registry host; the caller owns the ``aiohttp.ClientSession`` and
passes it in (one session for the program's life, and tests can hand in any session).

What it guarantees:

- every manifest and blob returned was hashed and checked against the digest that named it
  (``Docker-Content-Digest`` and/or the digest reference): content addressing is what lets
  the crawler cache results by digest;
- at most ``concurrency`` requests in flight to the host, and at most ``rate`` request
  starts per second when a rate is set;
- transient failures (connection errors, timeouts, 5xx, 429) are retried with capped
  exponential backoff and full jitter; 429 waits for ``Retry-After``; a blob transfer that
  breaks off mid-body is resumed where it stopped (``Range``), so its consumer never sees
  the break;
- no server holds a request for long (see :class:`Timeouts`): a small-document exchange
  (ping, manifest, listing page, token) ends within ``total`` seconds whatever its retries,
  and a blob stream slower than a floor (``stall_bytes`` per ``stall`` seconds) is
  abandoned and resumed, within the retry budget: a slow-loris server gets a retryable
  ``TransientError``, not a worker;
- redirects (blob storage on another host) are followed by hand, and the Authorization
  header is only ever sent to the registry's own origin;
- every failure is a :class:`RegistryError` subclass with a ``retryable`` flag.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import random
import re
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final, TypeVar, assert_never
from urllib.parse import quote

import aiohttp
import msgspec
from multidict import CIMultiDictProxy
from yarl import URL

from regsweep.crawler import auth
from regsweep.crawler.oci import MAX_MANIFEST_BYTES, MediaType

# ---------------------------------------------------------------------------------------
# Errors


class RegistryError(Exception):
    """Base of every registry client error; ``retryable`` says whether trying later may help."""

    retryable_default: ClassVar[bool] = False

    def __init__(
        self, message: str, *, url: str | None = None, status: int | None = None,
        retryable: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.url = url
        self.status = status
        self.retryable = self.retryable_default if retryable is None else retryable


class AuthError(RegistryError):
    """Credentials missing or refused, a token could not be obtained, or access denied."""


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist (404)."""


class RateLimited(RegistryError):
    """429 persisted past the retry budget, or asked for a wait longer than allowed."""

    retryable_default = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class DigestMismatch(RegistryError):
    """Bytes received do not hash to the digest that names them (or that the server sent).

    Not retryable by default: a registry that stores bad bytes keeps serving them.
    """


class Unsupported(RegistryError):
    """A format regsweep does not read: schema 1 manifests, unknown media types, digests
    with an algorithm other than sha256, a non-TLS registry without ``insecure``."""


class TooLarge(RegistryError):
    """A manifest (or capped blob) above its size cap."""


class TransientError(RegistryError):
    """Connection errors, timeouts and 5xx that outlived the retry budget."""

    retryable_default = True


class InvalidName(RegistryError, ValueError):
    """A repository name or digest that is not well formed (from the user or a listing)."""


class TLSError(RegistryError):
    """The TLS handshake failed (unknown CA, wrong host name): retrying cannot help."""


class ProtocolError(RegistryError):
    """The registry broke the protocol: malformed JSON, a looping or off-host ``Link``."""


# ---------------------------------------------------------------------------------------
# Settings and results


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How hard to retry transient failures."""

    attempts: int = 5
    #: Backoff before retry ``i`` is uniform in ``[0, min(max_delay, base_delay * 2**i)]``
    #: (AWS "full jitter"): spreads a herd of crawl workers that failed together.
    base_delay: float = 0.2
    max_delay: float = 10.0
    #: A ``Retry-After`` longer than this is not waited for: ``RateLimited`` is raised.
    max_retry_after: float = 120.0


class Timeouts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How long a server may take (seconds), and the slowest blob transfer accepted."""

    connect: float = 10.0
    #: Whole-request limit for small documents (ping, manifests, lists, tokens), per try.
    request: float = 30.0
    #: The longest a small-document exchange may take, every try and backoff included (a
    #: slow-loris server answering one byte at a time keeps a worker this long at most);
    #: also the longest a blob request may take to get its answer's headers.
    total: float = 60.0
    #: Longest silence between two chunks of a blob (blobs have no total limit: size varies).
    read: float = 30.0
    #: The rate floor of a blob transfer: every ``stall_bytes`` bytes must come within
    #: ``stall`` seconds spent waiting for the network (the consumer's time does not count).
    #: A slower stream (a trickle that no read timeout catches) is abandoned and resumed,
    #: within the retry budget. The default floor is about 2 KiB/s.
    stall: float = 30.0
    stall_bytes: int = 64 * 1024


class ManifestHead(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a ``HEAD`` on a manifest tells: its digest, media type and size."""

    digest: str
    media_type: str
    size: int | None


class Manifest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A manifest or index whose bytes hash to ``digest``."""

    data: bytes
    media_type: str
    digest: str


#: Document types the client accepts (schema 1 is refused: it is deprecated and unsigned
#: variants cannot be verified by digest the same way).
SUPPORTED_MEDIA_TYPES: Final = (
    MediaType.OCI_MANIFEST.value,
    MediaType.OCI_INDEX.value,
    MediaType.DOCKER_MANIFEST.value,
    MediaType.DOCKER_MANIFEST_LIST.value,
)
_SCHEMA1_TYPES: Final = frozenset(
    {MediaType.DOCKER_SCHEMA1.value, MediaType.DOCKER_SCHEMA1_SIGNED.value}
)
MANIFEST_ACCEPT: Final = ", ".join(SUPPORTED_MEDIA_TYPES)
_DIGEST: Final = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST: Final = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
#: Repository names per the distribution spec (lower-case path components).
_REPO_NAME: Final = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
#: A path part that needs no percent-encoding and is no ``.``/``..`` segment.
_PLAIN_PART: Final = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:-]*")
_LINK_NEXT: Final = re.compile(r'<([^>]*)>\s*;[^,]*rel="?next"?')
#: The first byte of a 206 answer (``Content-Range: bytes FIRST-LAST/SIZE``).
_RANGE_START: Final = re.compile(r"\s*bytes\s+(\d+)-")
_CHUNK: Final = 256 * 1024
_T = TypeVar("_T")
_MAX_TOKEN_BYTES: Final = 1024 * 1024
#: Failures worth another try: the connection broke, or nothing came back in time.
_TLS_FAILURES: Final = (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)
_TRANSIENT: Final = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
#: The time limits of the small-document exchanges running in this task (outermost first):
#: a slow server's silence counts against them, a wait the server asked for does not.
_DEADLINES: Final[ContextVar[tuple[asyncio.Timeout, ...]]] = ContextVar(
    "registry_deadlines", default=()
)


class _ServerBusy(Exception):
    """A 5xx inside a retried exchange (internal: becomes ``TransientError`` when final)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _Stalled(TimeoutError):
    """A blob stream below the rate floor (internal: resumed, or ``TransientError`` when
    the retry budget is spent)."""


class _Pace:
    """The rate floor of one blob response (``Timeouts.stall``/``stall_bytes``).

    Only time spent waiting for the network counts, not the consumer's time between two
    reads: a busy layer scanner is not a slow server. Checked with a timer on each read,
    which costs a few microseconds per chunk of up to 256 KiB.
    """

    __slots__ = ("_floor", "_left", "_need", "_window")

    def __init__(self, timeouts: Timeouts) -> None:
        self._window = timeouts.stall
        self._floor = timeouts.stall_bytes
        self._need = self._floor
        self._left = self._window

    async def read(self, content: aiohttp.StreamReader) -> bytes:
        """The next chunk (empty at the end); :class:`_Stalled` when the floor is missed."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        limit = asyncio.timeout(self._left)
        try:
            async with limit:
                chunk = await content.read(_CHUNK)
        except TimeoutError as exc:
            if not limit.expired():
                raise  # the read timeout between two chunks: silence, not a trickle
            raise _Stalled(
                f"too slow: fewer than {self._floor} bytes in {self._window:g} s"
            ) from exc
        self._need -= len(chunk)
        if self._need <= 0:  # this window's bytes arrived in time: a new window begins
            self._need, self._left = self._floor, self._window
        else:
            self._left -= loop.time() - started
        return chunk


_MAX_REDIRECTS: Final = 5


class _Peek(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    schema_version: int | None = None
    media_type: str | None = None


class _Repositories(msgspec.Struct, frozen=True, gc=False):
    repositories: list[str] | None = None


class _Tags(msgspec.Struct, frozen=True, gc=False):
    tags: list[str] | None = None


def _check_digest_ref(digest: str) -> None:
    if not _DIGEST.match(digest):
        if _ANY_DIGEST.match(digest):
            raise Unsupported(f"digest algorithm not supported (sha256 only): {digest}")
        raise InvalidName(f"not a digest: {digest!r}")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RateLimiter:
    """Spaces request starts ``1/rate`` seconds apart (no burst: politeness, not throughput)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        # Reserve before sleeping, so concurrent callers queue up behind each other.
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


# ---------------------------------------------------------------------------------------
# The client


class Registry:
    """A client for one registry (``https://host[:port]``, ``http://…``, or a bare host).

    TLS is verified (system roots, plus ``ca_file`` when given). Plain HTTP is used only for
    an explicit ``http://`` URL, or with ``insecure=True`` (which also skips certificate
    checks and lets a bare host that does not speak TLS fall back to HTTP). The bearer token
    realm, wherever it is hosted, gets the same trust as the registry. Create one instance
    per host and share it: the concurrency limit, rate limit and token cache live in the
    instance.

    ``credentials`` override anything found in the Docker config; with
    ``use_docker_config`` (default) the Docker CLI config (``docker_config`` or
    ``$DOCKER_CONFIG``/``~/.docker/config.json``) is read once, on first need.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        credentials: auth.Credentials | None = None,
        use_docker_config: bool = True,
        docker_config: Path | None = None,
        ca_file: Path | None = None,
        insecure: bool = False,
        concurrency: int = 8,
        rate: float | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        #: A bare host with ``insecure`` may fall back to plain HTTP (what Docker does for
        #: an "insecure registry"); a URL with an explicit scheme never changes scheme.
        self._http_fallback = insecure and "://" not in url
        if "://" not in url:
            url = "https://" + url
        base = URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"not a registry URL: {url!r}")
        if concurrency < 1 or (rate is not None and rate <= 0):
            raise ValueError("concurrency must be >= 1 and rate > 0")
        #: The registry's origin (scheme, host, port); only the insecure fallback changes it.
        self.base = base.origin()
        #: ``host[:port]`` as the Docker config and credential helpers key it.
        self.host: Final = base.raw_authority
        self._session = session
        self._credentials = credentials
        self._config_loaded = credentials is not None or not use_docker_config
        self._docker_config = docker_config
        self._ssl: ssl.SSLContext | bool = True
        if base.scheme == "https":
            if insecure:
                self._ssl = False
            elif ca_file is not None:
                # The CA is added to the system roots (as Docker's certs.d does): it is
                # trusted for the token realm too, which may be a public server.
                self._ssl = ssl.create_default_context()
                try:
                    self._ssl.load_verify_locations(cafile=str(ca_file))
                except (OSError, ssl.SSLError) as exc:
                    raise TLSError(f"cannot load CA file {ca_file}: {exc}") from exc
        self._insecure = insecure
        self._sem = asyncio.Semaphore(concurrency)
        self._limiter = _RateLimiter(rate) if rate is not None else None
        self._retry = retry or RetryPolicy()
        self._timeouts = timeouts or Timeouts()
        self._request_limits: aiohttp.ClientTimeout | None = None
        self._stream_limits: aiohttp.ClientTimeout | None = None
        self._max_manifest = max_manifest_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._challenge: auth.Challenge | None = None
        #: The bearer token realm's origin: it gets the registry's TLS trust (CA file,
        #: ``insecure``), being the registry's own sign-in service wherever it is hosted.
        self._realm_origin: URL | None = None
        self._pinged = False
        self._ping_lock = asyncio.Lock()
        self._creds_lock = asyncio.Lock()
        self._tokens = auth.TokenCache()
        #: Requests sent (including retries and token fetches); for tests and benchmarks.
        self.requests_sent = 0
        self.tokens_fetched = 0

    # -- authentication ------------------------------------------------------------------

    async def _creds(self) -> auth.Credentials | None:
        # Under the lock: a burst of first requests must run a credential helper once.
        async with self._creds_lock:
            if not self._config_loaded:
                try:
                    self._credentials = await auth.load_docker_credentials(
                        self.host, self._docker_config
                    )
                except auth.CredentialsError as exc:
                    raise AuthError(str(exc)) from exc
                self._config_loaded = True
        return self._credentials

    async def ping(self) -> auth.AuthScheme | None:
        """``GET /v2/``: check that this is a v2 registry and learn its auth scheme.

        Returns ``None`` for an anonymous registry.
        """
        async with self._ping_lock:
            if not self._pinged:
                try:
                    await self._ping()
                except TLSError:
                    if not self._http_fallback:
                        raise
                    # The host does not speak TLS: with `insecure`, try plain HTTP once.
                    self.base = self.base.with_scheme("http")
                    await self._ping()
                self._pinged = True
        return None if self._challenge is None else self._challenge.scheme

    async def _ping(self) -> None:
        url = self.base.with_path("/v2/")

        async def once() -> None:
            resp = await self._send("GET", url, None, limits=self._request_timeout())
            async with resp:
                if resp.status == 401:
                    self._take_challenge(resp, url)
                elif resp.status >= 500:
                    raise _ServerBusy(resp.status)
                elif resp.status >= 400:
                    raise self._status_error(resp, url, "ping")

        await self._with_retries(f"GET {url}", once)

    def _take_challenge(self, resp: aiohttp.ClientResponse, url: URL) -> None:
        header = resp.headers.get("WWW-Authenticate")
        if not header:
            raise AuthError("401 without a WWW-Authenticate challenge", url=str(url), status=401)
        try:
            challenge = auth.parse_challenge(header)
        except ValueError as exc:
            raise AuthError(str(exc), url=str(url), status=401) from exc
        realm: URL | None = None
        if challenge.scheme is auth.AuthScheme.BEARER:
            try:
                realm = URL(challenge.realm).origin()
            except ValueError:
                realm = None  # no origin to trust; the token request says what is wrong
        self._challenge, self._realm_origin = challenge, realm

    async def _authorization(self, scope: str | None, *, fresh: bool = False) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        match challenge.scheme:
            case auth.AuthScheme.BASIC:
                creds = await self._creds()
                if creds is None:
                    raise AuthError(f"{self.host} needs credentials (basic auth)", status=401)
                try:
                    return creds.basic_header()
                except auth.CredentialsError as exc:  # an identity token: bearer servers only
                    raise AuthError(f"{self.host}: {exc}", status=401) from exc
            case auth.AuthScheme.BEARER:
                token = await self._bearer(challenge, scope or "", fresh=fresh)
                return f"Bearer {token}"
        assert_never(challenge.scheme)

    async def _bearer(self, challenge: auth.Challenge, scope: str, *, fresh: bool) -> str:
        key = (challenge.realm, challenge.service or "", scope)
        if fresh:
            self._tokens.invalidate(key)
        cached = self._tokens.get(key)
        if cached is not None:
            return cached.value
        async with self._tokens.lock(key):
            cached = self._tokens.get(key)  # another task may have fetched it meanwhile
            if cached is not None:
                return cached.value
            token = await self._fetch_token(challenge, scope)
            self._tokens.put(key, token)
            return token.value

    async def _fetch_token(self, challenge: auth.Challenge, scope: str) -> auth.Token:
        query = {}
        if challenge.service:
            query["service"] = challenge.service
        if scope:
            query["scope"] = scope
        url = URL(challenge.realm).update_query(query)
        creds = await self._creds()
        if URL(challenge.realm).scheme != "https" and self.base.scheme == "https" and creds:
            # Never send a password in clear text because a TLS registry pointed us there.
            raise AuthError(f"token realm {challenge.realm} is not https", url=str(url))
        if creds is not None and creds.identity_token:
            return await self._fetch_oauth_token(challenge, scope, creds.identity_token)
        headers = {"Authorization": creds.basic_header()} if creds else {}

        async def once() -> bytes:
            self.tokens_fetched += 1
            resp = await self._send("GET", url, headers, limits=self._request_timeout())
            async with resp:
                if resp.status in (401, 403):
                    raise AuthError(
                        f"token request refused ({resp.status}) for scope {scope!r}",
                        url=str(url), status=resp.status,
                    )  # fmt: skip
                if resp.status >= 500:
                    raise _ServerBusy(resp.status)
                if resp.status >= 400:
                    raise self._status_error(resp, url, "token")
                return await self._read_capped(resp, _MAX_TOKEN_BYTES, url)

        body = await self._with_retries(f"GET {url}", once)
        try:
            return auth.parse_token_response(body)
        except ValueError as exc:
            raise AuthError(str(exc), url=str(url)) from exc

    async def _fetch_oauth_token(
        self, challenge: auth.Challenge, scope: str, identity_token: str
    ) -> auth.Token:
        """Exchange an identity token for a bearer token (OAuth2 refresh-token grant)."""
        url = URL(challenge.realm)
        form = auth.oauth_refresh_form(identity_token, challenge.service, scope)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}

        async def once() -> bytes:
            self.tokens_fetched += 1
            resp = await self._send("POST", url, headers, limits=self._request_timeout(), data=form)
            async with resp:
                status = resp.status
                if status in (404, 405):
                    # GET cannot carry a refresh token, so there is nothing to fall back to.
                    raise AuthError(
                        f"token server {url} does not support the OAuth2 refresh-token grant "
                        f"(POST answered {status}): the identity token cannot be used here",
                        url=str(url), status=status,
                    )  # fmt: skip
                if status in (400, 401, 403):
                    try:
                        reason = auth.describe_oauth_error(
                            await self._read_capped(resp, _MAX_TOKEN_BYTES, url)
                        )
                    except (TooLarge, *_TRANSIENT):
                        reason = ""
                    raise AuthError(
                        f"identity token refused ({status}{': ' + reason if reason else ''}) "
                        f"for scope {scope!r}",
                        url=str(url), status=status,
                    )  # fmt: skip
                if status >= 500:
                    raise _ServerBusy(status)
                if status >= 400:
                    raise self._status_error(resp, url, "token")
                return await self._read_capped(resp, _MAX_TOKEN_BYTES, url)

        body = await self._with_retries(f"POST {url}", once)
        try:
            return auth.parse_token_response(body)
        except ValueError as exc:
            raise AuthError(str(exc), url=str(url)) from exc

    # -- the request engine --------------------------------------------------------------

    def _request_timeout(self) -> aiohttp.ClientTimeout:
        # Built once (they are immutable): this runs for every request.
        if self._request_limits is None:
            t = self._timeouts
            self._request_limits = aiohttp.ClientTimeout(total=t.request, sock_connect=t.connect)
        return self._request_limits

    def _stream_timeout(self) -> aiohttp.ClientTimeout:
        if self._stream_limits is None:
            t = self._timeouts
            self._stream_limits = aiohttp.ClientTimeout(
                total=None, sock_connect=t.connect, sock_read=t.read
            )
        return self._stream_limits

    def _ssl_for(self, url: URL) -> ssl.SSLContext | bool:
        # The registry's CA/insecure setting applies to the registry and its token realm
        # only; blob storage elsewhere is verified against the system roots (``True``, the
        # default, needs no origin check).
        if self._ssl is True:
            return True
        origin = url.origin()
        return self._ssl if origin == self.base or origin == self._realm_origin else True

    def _send(
        self, method: str, url: URL, headers: dict[str, str] | None, *,
        limits: aiohttp.ClientTimeout, data: bytes | None = None,
    ) -> Awaitable[aiohttp.ClientResponse]:  # fmt: skip
        """One raw request (no retry, no auth handling), to be awaited at once; the caller
        releases the response. Not a coroutine itself: every request of a crawl passes here,
        and aiohttp's own awaitable needs no extra frame around it."""
        if url.scheme == "http" and self.base.scheme == "https" and not self._insecure:
            raise Unsupported(f"refusing plain HTTP to {url.origin()} (TLS registry)")
        self.requests_sent += 1
        return self._session.request(
            method, url, headers=headers, allow_redirects=False, ssl=self._ssl_for(url),
            timeout=limits, data=data,
        )  # fmt: skip

    async def _bounded(self, what: str, work: Awaitable[_T], url: URL | None = None) -> _T:
        """Await ``work`` (an exchange with all its retries) for ``Timeouts.total`` seconds
        at most (or until an enclosing exchange's limit, if sooner); then
        :class:`TransientError`. A per-try timeout cannot bound this: a slow-loris server
        makes every try last its whole limit, ``attempts`` times over."""
        loop = asyncio.get_running_loop()
        limit = self._timeouts.total
        end = loop.time() + limit
        outer = _DEADLINES.get()
        if outer and (when := outer[-1].when()) is not None and when < end:
            end = when
        timer = asyncio.timeout_at(end)
        token = _DEADLINES.set((*outer, timer))
        try:
            async with timer:
                return await work
        except TimeoutError as exc:
            if not timer.expired():
                raise
            raise TransientError(
                f"{what}: no complete answer within {limit:g} s (every try included)",
                url=None if url is None else str(url),
            ) from exc
        finally:
            _DEADLINES.reset(token)

    def _fits(self, wait: float) -> bool:
        """Whether a ``Retry-After`` of ``wait`` seconds is waited for: within the policy's
        ``max_retry_after``."""
        return wait <= self._retry.max_retry_after

    async def _wait_as_asked(self, wait: float) -> None:
        """Wait the ``Retry-After`` a server asked for. It is the server's rate limit, not
        its slowness: the running exchanges' time limits move on by as much, so the wait
        does not use up the time ``Timeouts.total`` gives an exchange."""
        for timer in _DEADLINES.get():
            if (when := timer.when()) is not None:
                timer.reschedule(when + wait)
        await self._sleep(wait)

    async def _with_retries(self, what: str, fn: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``fn`` again on connection errors, timeouts and 5xx (raised as ``_ServerBusy``),
        all within ``Timeouts.total``."""
        return await self._bounded(what, self._retrying(what, fn))

    async def _retrying(self, what: str, fn: Callable[[], Awaitable[_T]]) -> _T:
        attempt = 0
        while True:
            try:
                return await fn()
            except _TLS_FAILURES as exc:
                raise TLSError(f"{what}: {exc}") from exc
            except (*_TRANSIENT, _ServerBusy) as exc:
                if attempt + 1 >= self._retry.attempts:
                    status = exc.status if isinstance(exc, _ServerBusy) else None
                    raise TransientError(
                        f"{what}: {type(exc).__name__}: {exc}", status=status
                    ) from exc
                await self._backoff(attempt)
                attempt += 1

    async def _document(
        self, url: URL, scope: str, *, accept: str | None = None
    ) -> tuple[bytes, CIMultiDictProxy[str]]:
        """GET a small document (manifest, listing) whole, retrying a body cut short."""

        async def once() -> tuple[bytes, CIMultiDictProxy[str]]:
            resp = await self._open("GET", url, scope, accept=accept)
            try:
                return await self._read_capped(resp, self._max_manifest, url), resp.headers
            finally:
                resp.release()

        async with self._sem:
            return await self._with_retries(f"GET {url}", once)

    async def _backoff(self, attempt: int) -> None:
        r = self._retry
        await self._sleep(self._rng.uniform(0.0, min(r.max_delay, r.base_delay * 2**attempt)))

    async def _open(
        self, method: str, url: URL, scope: str | None, *, accept: str | None = None,
        stream: bool = False, start: int = 0,
    ) -> aiohttp.ClientResponse:  # fmt: skip
        """Send with auth, retries and redirects; return an open 2xx response.

        ``start`` > 0 asks for the body from that byte on (``Range``); the server may still
        answer 200 with all of it. Non-2xx answers become typed errors. The caller must
        ``release()`` the response.
        """
        if not self._pinged:
            await self.ping()
        if (
            url.scheme == "https"
            and self.base.scheme == "http"
            and url.origin() == self.base.with_scheme("https")
        ):
            # Built before the first ping, which moved this insecure registry to plain HTTP.
            url = url.with_scheme("http")
        limits = self._stream_timeout() if stream else self._request_timeout()
        attempt = 0
        reauthed = False
        fresh = False
        while True:
            headers: dict[str, str] = {}
            if accept:
                headers["Accept"] = accept
            if start:
                headers["Range"] = f"bytes={start}-"
            target = url
            sent_auth = await self._authorization(scope, fresh=fresh)
            fresh = False
            if sent_auth:
                headers["Authorization"] = sent_auth
            if self._limiter is not None:
                await self._limiter.wait()
            try:
                resp = await self._follow(method, target, headers, limits)
            except _TLS_FAILURES as exc:
                raise TLSError(f"{method} {url}: {exc}", url=str(url)) from exc
            except _TRANSIENT as exc:
                if attempt + 1 >= self._retry.attempts:
                    raise TransientError(
                        f"{method} {url}: {type(exc).__name__}: {exc}", url=str(url)
                    ) from exc
                await self._backoff(attempt)
                attempt += 1
                continue
            status = resp.status
            if 200 <= status < 300:
                return resp
            try:
                if status == 401 and not reauthed:
                    # Expired or revoked token, or a registry whose challenge changed
                    # (e.g. scope-specific): take the new challenge and try once more.
                    reauthed = True
                    if "WWW-Authenticate" in resp.headers and resp.url.origin() == self.base:
                        self._take_challenge(resp, url)
                    fresh = True
                    continue
                if status == 429:
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    if wait is not None and not self._fits(wait):
                        raise RateLimited(
                            f"429: Retry-After {wait:.0f} s exceeds the time allowed",
                            url=str(url), status=429, retry_after=wait,
                        )  # fmt: skip
                    if attempt + 1 >= self._retry.attempts:
                        raise RateLimited(
                            "429 persisted", url=str(url), status=429, retry_after=wait
                        )
                    attempt += 1
                    if wait is None:
                        await self._backoff(attempt)
                    else:
                        await self._wait_as_asked(wait)
                    continue
                if status >= 500 and attempt + 1 < self._retry.attempts:
                    # A 503 may say when to come back; otherwise back off with jitter.
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    if wait is not None and self._fits(wait):
                        await self._wait_as_asked(wait)
                    else:
                        await self._backoff(attempt)
                    attempt += 1
                    continue
                raise self._status_error(resp, url, method)
            finally:
                resp.release()

    async def _follow(
        self, method: str, url: URL, headers: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """Send, following up to five redirects; Authorization only to the registry origin."""
        for _ in range(_MAX_REDIRECTS + 1):
            resp = await self._send(method, url, headers, limits=limits)
            if resp.status not in (301, 302, 303, 307, 308):
                return resp
            location = resp.headers.get("Location")
            resp.release()
            if not location:
                raise ProtocolError(f"redirect without Location from {url}", url=str(url))
            try:
                url = url.join(URL(location))
            except ValueError as exc:
                raise ProtocolError(f"bad redirect Location {location!r}", url=str(url)) from exc
            if url.origin() != self.base:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise ProtocolError(f"more than {_MAX_REDIRECTS} redirects from {url}", url=str(url))

    def _status_error(self, resp: aiohttp.ClientResponse, url: URL, what: str) -> RegistryError:
        status = resp.status
        message = f"{what} {url}: HTTP {status}"
        if status in (401, 403):
            return AuthError(message + " (access denied)", url=str(url), status=status)
        if status == 404:
            return NotFound(message, url=str(url), status=status)
        if status >= 500:
            return TransientError(message, url=str(url), status=status)
        return RegistryError(message, url=str(url), status=status)

    async def _read_capped(self, resp: aiohttp.ClientResponse, cap: int, url: URL) -> bytes:
        if resp.content_length is not None and resp.content_length > cap:
            raise TooLarge(f"{url}: {resp.content_length} bytes > cap {cap}", url=str(url))
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            buf += chunk
            if len(buf) > cap:
                raise TooLarge(f"{url}: body above cap {cap}", url=str(url))
        return bytes(buf)

    def _path(self, repo: str, *parts: str) -> URL:
        if not _REPO_NAME.fullmatch(repo):
            raise InvalidName(f"not a repository name: {repo!r}")
        if all(_PLAIN_PART.fullmatch(p) for p in parts):
            # The common case (tags, digests, "manifests"): nothing to quote and no dot
            # segment, so yarl's quoting and normalising pass (the larger part of this
            # per-request cost) is skipped.
            return self.base.with_path("/v2/" + repo + "/" + "/".join(parts), encoded=True)
        # A reference from a registry's tag list or a user can be anything. Each part is
        # one path segment, quoted here once: yarl would quote the quoting again, and read
        # "." and ".." as dot segments that climb out of the repository's path.
        for p in parts:
            if p in ("", ".", ".."):
                raise InvalidName(f"not a reference: {p!r}")
        return self.base.with_path(
            "/v2/" + repo + "/" + "/".join(quote(p, safe=":") for p in parts), encoded=True
        )

    # -- manifests -----------------------------------------------------------------------

    async def head_manifest(self, repo: str, ref: str) -> ManifestHead:
        """``HEAD`` a manifest: its digest and media type without the body.

        Raises :class:`ProtocolError` when the registry sends no ``Docker-Content-Digest``
        (then use :meth:`get_manifest`, which hashes the body).
        """
        url = self._path(repo, "manifests", ref)
        async with self._sem:
            resp = await self._bounded(
                f"HEAD {url}",
                self._open("HEAD", url, f"repository:{repo}:pull", accept=MANIFEST_ACCEPT),
                url,
            )
            try:
                digest = resp.headers.get("Docker-Content-Digest")
                media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                size = resp.content_length
            finally:
                resp.release()
        if media_type in _SCHEMA1_TYPES:
            raise Unsupported(f"{repo}:{ref} is a schema 1 manifest", url=str(url))
        if not digest:
            raise ProtocolError(f"HEAD {url}: no Docker-Content-Digest", url=str(url))
        _check_digest_ref(digest)
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(f"HEAD {url}: registry says {digest}", url=str(url))
        return ManifestHead(digest=digest, media_type=media_type, size=size)

    async def get_manifest(self, repo: str, ref: str) -> Manifest:
        """``GET`` a manifest or index by tag or digest, size-capped and digest-verified."""
        is_digest = ":" in ref
        if is_digest:
            _check_digest_ref(ref)
        url = self._path(repo, "manifests", ref)
        data, headers = await self._document(url, f"repository:{repo}:pull", accept=MANIFEST_ACCEPT)
        header_digest = headers.get("Docker-Content-Digest")
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if is_digest and digest != ref:
            raise DigestMismatch(f"{repo}@{ref}: body hashes to {digest}", url=str(url))
        if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
            raise DigestMismatch(
                f"{repo}:{ref}: body hashes to {digest}, registry says {header_digest}",
                url=str(url),
            )
        return Manifest(
            data=data, media_type=self._media_type(media_type, data, url), digest=digest
        )

    def _media_type(self, header: str, data: bytes, url: URL) -> str:
        if header in SUPPORTED_MEDIA_TYPES:
            return header
        if header in _SCHEMA1_TYPES:
            raise Unsupported(f"{url}: schema 1 manifest ({header})", url=str(url))
        # Some registries answer application/json (or nothing): trust the body's own
        # mediaType, which the OCI spec asks manifests to carry.
        try:
            peek = msgspec.json.decode(data, type=_Peek)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ProtocolError(f"{url}: manifest is not JSON ({exc})", url=str(url)) from exc
        if peek.schema_version == 1:
            raise Unsupported(f"{url}: schema 1 manifest", url=str(url))
        if peek.media_type in SUPPORTED_MEDIA_TYPES:
            return peek.media_type
        raise Unsupported(f"{url}: unsupported manifest media type {header!r}", url=str(url))

    # -- listings ------------------------------------------------------------------------

    async def catalog(self, n: int = 100) -> AsyncGenerator[str, None]:
        """Every repository name, following ``Link`` pagination (``n`` per page).

        A registry that refuses the catalog (401/403, common on hosted registries) raises
        :class:`AuthError`: list repositories explicitly instead.
        """
        url = self.base.with_path("/v2/_catalog").with_query(n=str(n))
        try:
            async for page in self._pages(url, "registry:catalog:*", _Repositories):
                for name in page.repositories or ():
                    yield name
        except (AuthError, NotFound) as exc:
            raise AuthError(
                f"{self.host} refuses to list its repositories ({exc}); "
                "name the repositories explicitly",
                url=exc.url,
                status=exc.status,
            ) from exc

    async def tags(self, repo: str, n: int | None = None) -> AsyncGenerator[str, None]:
        """Every tag of ``repo``, following ``Link`` pagination."""
        url = self._path(repo, "tags", "list")
        if n is not None:
            url = url.with_query(n=str(n))
        async for page in self._pages(url, f"repository:{repo}:pull", _Tags):
            for tag in page.tags or ():
                yield tag

    async def _pages(self, url: URL, scope: str, kind: type[_T]) -> AsyncGenerator[_T, None]:
        seen: set[URL] = set()
        next_url: URL | None = url
        while next_url is not None:
            if next_url in seen:
                raise ProtocolError(f"Link pagination loops back to {next_url}", url=str(url))
            seen.add(next_url)
            current = next_url
            body, headers = await self._document(current, scope)
            link = headers.get("Link")
            try:
                page = msgspec.json.decode(body, type=kind)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise ProtocolError(
                    f"{current}: bad listing JSON ({exc})", url=str(current)
                ) from exc
            # The page itself is good data: hand it out before judging its Link.
            yield page
            next_url = None
            if link:
                m = _LINK_NEXT.search(link)
                if m is not None:
                    next_url = self._next_page(current, m.group(1))

    def _next_page(self, current: URL, target: str) -> URL:
        """The next page a ``Link`` header names, if it stays in this registry's ``/v2/``
        API: another scheme (``file://``), host or port, or a path outside ``/v2/`` (where
        the credentials sent with every request must not go) is a ``ProtocolError``; the
        pages read so far stand."""
        try:
            nxt = current.join(URL(target))
            inside = nxt.origin() == self.base and nxt.path.startswith("/v2/")
        except ValueError:  # not an http(s) URL at all: it has no origin
            inside = False
        if not inside:
            raise ProtocolError(
                f"Link leaves the registry's /v2/ API: {target[:200]!r}", url=str(current)
            )
        return nxt

    # -- blobs ---------------------------------------------------------------------------

    async def get_blob(
        self, repo: str, digest: str, *, max_bytes: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Stream a blob's bytes; the digest is verified after the last chunk.

        A transfer that breaks off mid-body (connection reset, timeout, a stream below the
        rate floor of :class:`Timeouts`) is resumed where it stopped: the blob is asked for
        again from the first byte not yet handed out (``Range: bytes=N-``; from a server
        that answers 200 instead of 206, the first N bytes of the new body are skipped), up
        to ``RetryPolicy.attempts`` tries in all; then :class:`TransientError`. The consumer
        sees each byte once, and the digest check covers them all.

        The final check raises :class:`DigestMismatch` *after* the chunks were yielded, so
        a consumer must treat what it computed as provisional until iteration ends cleanly.
        Use ``contextlib.aclosing`` to release the connection and concurrency slot when
        stopping early.
        """
        _check_digest_ref(digest)
        url = self._path(repo, "blobs", digest)
        scope = f"repository:{repo}:pull"
        h = hashlib.sha256()
        total = 0
        attempt = 0
        async with self._sem:
            while True:
                resp = await self._bounded(
                    f"GET {url}", self._open("GET", url, scope, stream=True, start=total), url
                )
                pace = _Pace(self._timeouts)
                broke: BaseException | None = None
                try:
                    skip = self._resumed_at(resp, total, url) if total else 0
                    if (
                        max_bytes is not None
                        and not total
                        and (resp.content_length or 0) > max_bytes
                    ):
                        raise TooLarge(
                            f"blob {digest}: {resp.content_length} > {max_bytes}", url=str(url)
                        )
                    while True:
                        # Only the read is guarded: an error the consumer throws in at the
                        # ``yield`` is the consumer's, not the transfer's.
                        try:
                            chunk = await pace.read(resp.content)
                        except _TRANSIENT as exc:
                            broke = exc
                            break
                        except aiohttp.ClientError as exc:  # not a broken transfer: no resume
                            raise TransientError(f"blob {digest}: {exc}", url=str(url)) from exc
                        if not chunk:
                            break
                        if skip:
                            # A 200 to a resumed request: these bytes were handed out already.
                            cut = min(skip, len(chunk))
                            skip -= cut
                            chunk = chunk[cut:]
                            if not chunk:
                                continue
                        h.update(chunk)
                        total += len(chunk)
                        if max_bytes is not None and total > max_bytes:
                            raise TooLarge(f"blob {digest}: above {max_bytes} bytes", url=str(url))
                        yield chunk
                finally:
                    if broke is None:
                        resp.release()
                    else:
                        resp.close()  # a broken connection is not reused
                if broke is None:
                    break
                attempt += 1
                if attempt >= self._retry.attempts:
                    why = (
                        str(broke)
                        if isinstance(broke, _Stalled)
                        else f"{type(broke).__name__}: {broke}"
                    )
                    raise TransientError(
                        f"blob {digest}: transfer broke off at byte {total}, {attempt} tries: "
                        + why,
                        url=str(url),
                    ) from broke
                await self._backoff(attempt - 1)
        got = "sha256:" + h.hexdigest()
        if got != digest:
            raise DigestMismatch(f"blob {digest}: {total} bytes hash to {got}", url=str(url))

    @staticmethod
    def _resumed_at(resp: aiohttp.ClientResponse, start: int, url: URL) -> int:
        """How many leading bytes of ``resp``, the answer to a request for a blob from byte
        ``start`` on, were handed out already: none for a 206 that starts there, all of
        ``start`` for a 200 (a server that ignores ``Range``)."""
        if resp.status != 206:
            return start
        m = _RANGE_START.match(resp.headers.get("Content-Range", ""))
        first = int(m.group(1)) if m else -1
        if not 0 <= first <= start:
            raise ProtocolError(
                f"{url}: asked for bytes from {start}, got Content-Range "
                f"{resp.headers.get('Content-Range')!r}",
                url=str(url),
            )
        return start - first
