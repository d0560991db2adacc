"""Registry authentication pieces: ``WWW-Authenticate`` challenges, credentials, token cache.

This module is I/O-free except for running a ``docker-credential-*`` helper: the HTTP
exchanges (ping, token requests) live in :mod:`regsweep.crawler.registry`, which turns the
``ValueError`` / :class:`CredentialsError` raised here into its typed ``AuthError``.

Credential lookup follows the Docker CLI: ``credHelpers[host]`` first, then an inline
``auths[host]`` entry (``identitytoken``, base64 ``auth`` = ``user:password``, or
``username``/``password``), then the global ``credsStore``.

An *identity token* (``auths[host].identitytoken``, or a helper answering with the username
``<token>``) is an OAuth2 refresh token: it cannot be sent to the registry itself. The
client exchanges it for a bearer token with the refresh-token grant of the distribution
token spec (``POST`` to the challenge's realm, form fields ``grant_type=refresh_token``,
``refresh_token``, ``service``, ``scope``, ``client_id``; :func:`oauth_refresh_form`), so it
works with bearer-token registries only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import msgspec

#: Docker Hub's credentials are stored under this legacy key, whatever host is used.
DOCKER_HUB_KEY: Final = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

#: A credential helper that does not answer within this many seconds is treated as broken
#: (a desktop keychain prompt waiting for a human would otherwise stall a whole crawl).
HELPER_TIMEOUT: Final = 20.0

#: The ``client_id`` sent with OAuth2 token requests (the spec wants a meaningful value so
#: that token servers can audit which client used a refresh token).
CLIENT_ID: Final = "regsweep"

#: The username a credential helper reports when its secret is an identity token.
_TOKEN_USERNAME: Final = "<token>"


class CredentialsError(Exception):
    """``~/.docker/config.json`` or a credential helper gave something unusable."""


class AuthScheme(enum.Enum):
    """The challenge schemes regsweep answers (anything else is refused with a clear error)."""

    BASIC = "basic"
    BEARER = "bearer"


class Credentials(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A username and password, or an identity token, for one registry.

    With a (non-empty) ``identity_token`` the password is unused (Docker leaves it empty): the
    token is exchanged for bearer tokens with the OAuth2 refresh-token grant, never sent as
    Basic.
    ``repr`` hides both secrets so that credentials never leak into logs or tracebacks.
    """

    username: str
    password: str
    identity_token: str | None = None

    def __repr__(self) -> str:
        token = ", identity_token=<hidden>" if self.identity_token else ""
        return f"Credentials(username={self.username!r}, password=<hidden>{token})"

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP Basic.

        Raises :class:`CredentialsError` for an identity token: it is only good at a token
        server, and sending it (or an empty password) as Basic would leak it or fail with
        a confusing 401.
        """
        if self.identity_token:
            raise CredentialsError(
                "an identity token can only be exchanged at a bearer-token server; "
                "this registry asks for HTTP Basic (log in with a password instead)"
            )
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class Challenge(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One parsed ``WWW-Authenticate`` challenge."""

    scheme: AuthScheme
    realm: str
    service: str | None = None
    #: The scope the registry asked for; Distribution names the exact one it wants.
    scope: str | None = None


# auth-param = token "=" ( token / quoted-string ), RFC 9110 §11.2; quoted-pair unescaped below.
_PARAM: Final = re.compile(
    r'\s*([A-Za-z0-9_.\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(,|$)'
)


def parse_challenge(header: str) -> Challenge:
    """Parse a ``WWW-Authenticate`` value (one challenge) into a :class:`Challenge`.

    Raises ``ValueError`` for a scheme other than Basic/Bearer, or a Bearer challenge
    without a realm (there is nowhere to ask for a token).
    """
    scheme_word, _, rest = header.strip().partition(" ")
    try:
        scheme = AuthScheme(scheme_word.lower())
    except ValueError:
        raise ValueError(f"unsupported auth scheme {scheme_word!r}") from None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise ValueError(f"malformed WWW-Authenticate parameters: {rest!r}")
        quoted, bare = m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[m.group(1).lower()] = value
        pos = m.end()
    realm = params.get("realm", "")
    if scheme is AuthScheme.BEARER and not realm.startswith(("http://", "https://")):
        raise ValueError(f"bearer challenge without an absolute realm URL: {header!r}")
    return Challenge(
        scheme=scheme, realm=realm, service=params.get("service"), scope=params.get("scope")
    )


class _AuthEntry(msgspec.Struct, frozen=True, gc=False):
    auth: str | None = None
    username: str | None = None
    password: str | None = None
    identitytoken: str | None = None


class _DockerConfig(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    auths: dict[str, _AuthEntry] = {}
    cred_helpers: dict[str, str] = {}
    creds_store: str | None = None


class _HelperAnswer(msgspec.Struct, frozen=True, gc=False, rename="pascal"):
    username: str = ""
    secret: str = ""


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the Docker CLI keeps ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``)."""
    env = os.environ if env is None else env
    base = env.get("DOCKER_CONFIG")
    return Path(base if base else Path(env.get("HOME", str(Path.home()))) / ".docker") / (
        "config.json"
    )


def _keys_for(host: str) -> list[str]:
    """The ``auths`` keys the Docker CLI would accept for ``host`` (with or without scheme)."""
    if host in _DOCKER_HUB_HOSTS:
        return [DOCKER_HUB_KEY, *sorted(_DOCKER_HUB_HOSTS)]
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


async def load_docker_credentials(
    host: str, config_path: Path | None = None, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Credentials for ``host`` (``name[:port]``) from a Docker CLI config, or ``None``.

    A missing config file means "anonymous". A config that is not valid JSON, a bad base64
    ``auth`` or a failing helper raise :class:`CredentialsError`: silently falling back to
    anonymous would turn a typo into a confusing 401 much later.
    """
    path = docker_config_path(env) if config_path is None else config_path
    try:
        raw = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from exc
    try:
        config = msgspec.json.decode(raw, type=_DockerConfig)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise CredentialsError(f"{path} is not a valid Docker config: {exc}") from exc
    keys = _keys_for(host)
    for key in keys:
        if key in config.cred_helpers:
            return await run_credential_helper(config.cred_helpers[key], key, env=env)
    for key in keys:
        entry = config.auths.get(key)
        if entry is None:
            continue
        user: str | None = entry.username
        password: str | None = entry.password
        if entry.auth:
            try:
                decoded = base64.b64decode(entry.auth, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise CredentialsError(f"{path}: auths[{key!r}].auth is not base64") from exc
            user, sep, password = decoded.partition(":")
            if not sep:
                raise CredentialsError(f"{path}: auths[{key!r}].auth is not user:password")
        if entry.identitytoken:
            # Like the Docker CLI, the identity token wins over a password; `docker login`
            # stores it next to `auth` = "user:" (an empty password).
            return Credentials(username=user or "", password="", identity_token=entry.identitytoken)
        if user is not None and password is not None:
            return Credentials(username=user, password=password)
        # An empty entry ({}) is what `docker login` leaves when a credsStore holds the secret.
    if config.creds_store:
        return await run_credential_helper(config.creds_store, keys[0], env=env)
    return None


async def run_credential_helper(
    name: str, server: str, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Ask ``docker-credential-<name> get`` for ``server``'s credentials.

    Protocol (docker-credential-helpers): the server URL on stdin, a JSON object
    ``{"ServerURL", "Username", "Secret"}`` on stdout; "credentials not found" on stdout with
    a non-zero exit means none are stored, which is not an error.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise CredentialsError(f"invalid credential helper name {name!r}")
    program = f"docker-credential-{name}"
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            "get",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError as exc:
        raise CredentialsError(f"credential helper {program} is not on PATH") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(server.encode()), HELPER_TIMEOUT)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise CredentialsError(f"{program} did not answer in {HELPER_TIMEOUT:.0f} s") from exc
    if proc.returncode != 0:
        text = (out + err).decode(errors="replace").strip()
        if "credentials not found" in text.lower():
            return None
        raise CredentialsError(f"{program} get failed ({proc.returncode}): {text[:200]}")
    try:
        answer = msgspec.json.decode(out, type=_HelperAnswer)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise CredentialsError(f"{program} printed something that is not its JSON") from exc
    if answer.username == _TOKEN_USERNAME:
        # docker-credential-helpers' convention: the secret is an identity token.
        if not answer.secret:
            raise CredentialsError(f"{program} returned an empty identity token")
        return Credentials(username="", password="", identity_token=answer.secret)
    return Credentials(username=answer.username, password=answer.secret)


class Token(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A bearer token and the monotonic time after which it must not be sent."""

    value: str
    renew_at: float


class _TokenAnswer(msgspec.Struct, frozen=True, gc=False):
    token: str | None = None
    access_token: str | None = None
    expires_in: int | None = None


#: The distribution token spec's default lifetime when ``expires_in`` is absent.
DEFAULT_TOKEN_TTL: Final = 60


def parse_token_response(body: bytes, *, now: float | None = None) -> Token:
    """Decode a token endpoint answer into a :class:`Token`.

    Renewal is scheduled from *our* receipt time (monotonic), not ``issued_at``: the
    issuer's clock may be skewed, and a token renewed a little early costs one request.
    Raises ``ValueError`` for an answer without a token.
    """
    try:
        answer = msgspec.json.decode(body, type=_TokenAnswer)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"token endpoint answer is not valid JSON: {exc}") from exc
    value = answer.token or answer.access_token
    if not value:
        raise ValueError("token endpoint answer has no token")
    ttl = answer.expires_in if answer.expires_in and answer.expires_in > 0 else DEFAULT_TOKEN_TTL
    # Renew a little before expiry so that a request in flight does not carry a dead token.
    margin = min(10.0, ttl * 0.1)
    start = time.monotonic() if now is None else now
    return Token(value=value, renew_at=start + ttl - margin)


def oauth_refresh_form(
    identity_token: str, service: str | None, scope: str, *, client_id: str = CLIENT_ID
) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of an OAuth2 refresh-token grant.

    Fields per the distribution spec (``oauth.md``): ``grant_type=refresh_token``,
    ``refresh_token``, ``service`` and ``client_id`` always, ``scope`` (space-separated
    scopes, as the challenge names them) when there is one.
    """
    fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", identity_token),
        ("service", service or ""),
        ("client_id", client_id),
    ]
    if scope:
        fields.append(("scope", scope))
    return urllib.parse.urlencode(fields).encode("ascii")


class _OAuthError(msgspec.Struct, frozen=True, gc=False):
    error: str | None = None
    error_description: str | None = None


#: Error texts from a token server are quoted in messages, truncated to this length.
_MAX_ERROR_TEXT: Final = 200


def describe_oauth_error(body: bytes) -> str:
    """A short, printable reason from a token server's error answer.

    RFC 6749 §5.2 says ``{"error": "invalid_grant", "error_description": "…"}``; anything
    else (HTML, Distribution's ``{"errors": […]}``) yields an empty string, and the caller
    falls back to the status code. Control characters are dropped so that a hostile server
    cannot forge log lines.
    """
    try:
        answer = msgspec.json.decode(body, type=_OAuthError)
    # DecodeError also covers ValidationError (a JSON value of another shape).
    except (msgspec.DecodeError, RecursionError):
        return ""
    parts = [p for p in (answer.error, answer.error_description) if p]
    text = ": ".join(parts)
    return "".join(ch for ch in text if ch.isprintable())[:_MAX_ERROR_TEXT]


class TokenCache:
    """Bearer tokens per ``(realm, service, scope)``, with one fetch in flight per key.

    The per-key lock stops a stampede: a hundred tasks needing the same scope at once make
    one token request, not a hundred.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], Token] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    def get(self, key: tuple[str, str, str], *, now: float | None = None) -> Token | None:
        """The cached token for ``key`` if it is still fresh."""
        token = self._tokens.get(key)
        if token is None:
            return None
        if (time.monotonic() if now is None else now) >= token.renew_at:
            del self._tokens[key]
            return None
        return token

    def put(self, key: tuple[str, str, str], token: Token) -> None:
        """Store a freshly fetched token."""
        self._tokens[key] = token

    def invalidate(self, key: tuple[str, str, str], value: str | None = None) -> None:
        """Forget ``key``'s token (only if it is still ``value``, when given: a token that
        another task already renewed must survive a late 401 on the old one)."""
        token = self._tokens.get(key)
        if token is not None and (value is None or token.value == value):
            del self._tokens[key]

    def lock(self, key: tuple[str, str, str]) -> asyncio.Lock:
        """The lock that serialises fetches for ``key``."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
