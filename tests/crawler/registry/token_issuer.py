"""A bearer-token issuer for Distribution's ``auth: token`` mode, for tests (aiohttp).

Tokens are RS256 JWTs whose header carries ``x5c`` = the issuer's self-signed certificate;
the same certificate is the registry's ``rootcertbundle``, so Distribution's chain check
passes. Claims follow the distribution token spec: ``iss``, ``sub``, ``aud`` (the service),
``exp``, ``nbf``, ``iat``, ``jti`` and ``access`` (one entry per requested scope, every
requested action granted to an authenticated user).

Two ways to get a token, as on Docker Hub's issuer:

- ``GET /token?service=…&scope=…`` with HTTP Basic user credentials (``token.md``);
- ``POST /token`` with the OAuth2 refresh-token grant (``oauth.md``): form fields
  ``grant_type=refresh_token``, ``refresh_token`` (an identity token from
  :meth:`TokenIssuer.new_identity_token`), ``service``, ``client_id`` and optional ``scope``.
  An unknown token is ``400 {"error": "invalid_grant", …}`` (RFC 6749 §5.2), a missing field
  ``400 invalid_request``, another grant type ``400 unsupported_grant_type``.

Test knobs: ``ttl`` (the ``expires_in`` announced), ``expired_next`` (issue that many tokens
whose ``exp`` is an hour in the past: the registry then answers 401, as after a real expiry),
``issued`` (the scope of every token issued, in order), ``oauth`` (``False``: answer every
POST with 404, like a token server without OAuth2), ``grants`` (for every POST, its form
fields with the refresh token masked, plus whether an ``Authorization`` header came along).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
import uuid
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.crawler.registry.faults import start_site

ISSUER = "regsweep-test-issuer"
SERVICE = "regsweep-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Serves ``GET /token`` (HTTP Basic user checks) and ``POST /token`` (OAuth2
    refresh-token grant with identity tokens)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.ttl = 300
        self.expired_next = 0
        self.issued: list[str] = []
        self.oauth = True
        self.grants: list[dict[str, str]] = []
        #: Identity token → the user it stands for (what a password grant with
        #: ``access_type=offline`` would have handed out at ``docker login``).
        self.identity_tokens: dict[str, str] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]

    @property
    def realm(self) -> str:
        """The token endpoint URL (the registry config's ``realm``)."""
        return f"http://127.0.0.1:{self.port}/token"

    def write_cert(self, path: Path) -> Path:
        """Write the certificate (the registry's ``rootcertbundle``) as PEM."""
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def new_identity_token(self, user: str) -> str:
        """Mint an identity token for ``user`` (valid until :meth:`reset_oauth`)."""
        token = secrets.token_urlsafe(32)
        self.identity_tokens[token] = user
        return token

    def reset_oauth(self) -> None:
        """Forget identity tokens and recorded grants; accept OAuth2 again."""
        self.oauth = True
        self.grants = []
        self.identity_tokens = {}

    async def start(self) -> None:
        """Bind on 127.0.0.1 with a free port."""
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_post("/token", self._oauth_token)
        self._runner, self.port = await start_site(app)

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _user(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None

    def jwt(self, claims: dict[str, object]) -> str:
        """Sign ``claims`` as an RS256 JWT carrying the issuer certificate in ``x5c``."""
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    async def _token(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED"}]},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="token"'},
            )
        token = self._issue(
            user, request.query.get("service", ""), request.query.getall("scope", [])
        )
        return web.json_response(
            {"token": token, "access_token": token, "expires_in": self.ttl, "issued_at": ""}
        )

    async def _oauth_token(self, request: web.Request) -> web.Response:
        if not self.oauth:
            return web.json_response({"errors": [{"code": "NOT_FOUND"}]}, status=404)
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "expected a form body")
        form = {k: str(v) for k, v in (await request.post()).items()}
        seen = {k: ("<masked>" if k == "refresh_token" else v) for k, v in form.items()}
        seen["authorization"] = "yes" if "Authorization" in request.headers else "no"
        self.grants.append(seen)
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("unsupported_grant_type", "only refresh_token is offered here")
        missing = [f for f in ("refresh_token", "service", "client_id") if not form.get(f)]
        if missing:
            return _oauth_error("invalid_request", "missing " + ", ".join(missing))
        user = self.identity_tokens.get(form["refresh_token"])
        if user is None:
            return _oauth_error("invalid_grant", "unknown or revoked refresh token")
        scopes = form.get("scope", "").split()
        token = self._issue(user, form["service"], scopes)
        # oauth.md: the same refresh token comes back with a refresh-token grant.
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": form["refresh_token"],
                "expires_in": self.ttl,
                "scope": " ".join(scopes),
            }
        )

    def _issue(self, user: str, service: str, scopes: list[str]) -> str:
        """A signed token granting ``user`` every action of ``scopes`` for ``service``."""
        access = []
        for scope in scopes:
            # "repository:name/with:colons:pull,push": the name may hold a port's colon.
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        # An already-expired token: Distribution allows 60 s of clock leeway, so go far past it.
        exp = now - 3600 if self.expired_next > 0 else now + self.ttl
        self.expired_next = max(0, self.expired_next - 1)
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": user,
            "aud": service,
            "exp": exp,
            "nbf": now - 7200,
            "iat": now - 7200,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        self.issued.append(" ".join(scopes))
        return self.jwt(claims)


def _oauth_error(error: str, description: str) -> web.Response:
    """An RFC 6749 §5.2 error answer (400, JSON ``error`` + ``error_description``)."""
    return web.json_response({"error": error, "error_description": description}, status=400)
