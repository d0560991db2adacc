"""Auth building blocks without a registry: challenge parsing, Docker config lookup, token
answers and the token cache, error flags."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
import uvloop

from regsweep.crawler import auth
from regsweep.crawler.registry import (
    AuthError,
    DigestMismatch,
    InvalidName,
    NotFound,
    RateLimited,
    RegistryError,
    TooLarge,
    TransientError,
    Unsupported,
)


def test_bearer_challenge_with_quoted_commas_and_escapes() -> None:
    """Quoted values may hold commas, colons and escaped quotes; names are case-insensitive."""
    c = auth.parse_challenge(
        'Bearer realm="https://auth.example/token",Service="reg \\"x\\"",'
        'scope="repository:a/b:pull,push"'
    )
    assert c == auth.Challenge(
        scheme=auth.AuthScheme.BEARER,
        realm="https://auth.example/token",
        service='reg "x"',
        scope="repository:a/b:pull,push",
    )


def test_basic_challenge() -> None:
    """``Basic realm=…`` parses; the realm is informational."""
    c = auth.parse_challenge('basic realm="Registry Realm"')
    assert c.scheme is auth.AuthScheme.BASIC and c.realm == "Registry Realm"


@pytest.mark.parametrize(
    "header",
    [
        'Negotiate realm="x"',
        'Bearer service="x"',  # no realm: nowhere to get a token
        'Bearer realm="/relative"',
        'Bearer realm="https://x",,garbage',
    ],
)
def test_unusable_challenges_are_rejected(header: str) -> None:
    """Unknown schemes, realm-less or relative bearer realms and junk raise ``ValueError``."""
    with pytest.raises(ValueError):
        auth.parse_challenge(header)


def test_credentials_repr_hides_the_secret() -> None:
    """Credentials never print their password or identity token (logs, tracebacks)."""
    text = repr(auth.Credentials(username="u", password="hunter2"))
    assert "hunter2" not in text and "u" in text
    text = repr(auth.Credentials(username="u", password="", identity_token="idtok-123"))
    assert "idtok-123" not in text and "identity_token=<hidden>" in text


def test_identity_token_is_never_sent_as_basic() -> None:
    """Basic auth with identity-token credentials is refused with a reason, not attempted."""
    creds = auth.Credentials(username="u", password="", identity_token="idtok-123")
    with pytest.raises(auth.CredentialsError, match="identity token") as exc:
        creds.basic_header()
    assert "idtok-123" not in str(exc.value)
    plain = auth.Credentials(username="u", password="p")
    assert plain.basic_header() == "Basic " + base64.b64encode(b"u:p").decode()


def load(path: Path, host: str) -> auth.Credentials | None:
    """``load_docker_credentials`` on a fresh uvloop."""
    return uvloop.run(auth.load_docker_credentials(host, path))


def test_docker_config_lookup_rules(tmp_path: Path) -> None:
    """Host keys with and without scheme, username/password fields, Docker Hub's legacy key,
    and a missing file (anonymous)."""
    config = tmp_path / "config.json"
    assert load(config, "r.example") is None
    b64 = base64.b64encode(b"hub:pw").decode()
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://r.example:5000": {
                        "auth": base64.b64encode(b"u:p:with:colons").decode()
                    },
                    "other.example": {"username": "o", "password": "q"},
                    auth.DOCKER_HUB_KEY: {"auth": b64},
                    "empty.example": {},
                }
            }
        )
    )
    assert load(config, "r.example:5000") == auth.Credentials(
        username="u", password="p:with:colons"
    )
    assert load(config, "other.example") == auth.Credentials(username="o", password="q")
    assert load(config, "registry-1.docker.io") == auth.Credentials(username="hub", password="pw")
    assert load(config, "empty.example") is None
    assert load(config, "unknown.example") is None


def test_docker_config_identity_tokens(tmp_path: Path) -> None:
    """``auths[host].identitytoken`` gives identity-token credentials (and wins over the
    ``auth`` field next to it, whose empty password is what ``docker login`` stores)."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "login.example": {
                        "auth": base64.b64encode(b"alice:").decode(),
                        "identitytoken": "tok-a",
                    },
                    "https://bare.example": {"identitytoken": "tok-b"},
                    "named.example": {"username": "bob", "password": "x", "identitytoken": "c"},
                    "blank.example": {
                        "auth": base64.b64encode(b"u:p").decode(),
                        "identitytoken": "",
                    },
                }
            }
        )
    )
    assert load(config, "login.example") == auth.Credentials(
        username="alice", password="", identity_token="tok-a"
    )
    assert load(config, "bare.example") == auth.Credentials(
        username="", password="", identity_token="tok-b"
    )
    assert load(config, "named.example") == auth.Credentials(
        username="bob", password="", identity_token="c"
    )
    # An empty identitytoken is no token: the password in `auth` is used.
    assert load(config, "blank.example") == auth.Credentials(username="u", password="p")


def test_oauth_refresh_form_fields() -> None:
    """The refresh-token grant form: the spec's fields, url-encoded; scope only when given."""
    form = urllib.parse.parse_qs(
        auth.oauth_refresh_form("a+b/c=", "reg svc", "repository:x/y:pull").decode(),
        strict_parsing=True,
    )
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["a+b/c="],
        "service": ["reg svc"],
        "client_id": [auth.CLIENT_ID],
        "scope": ["repository:x/y:pull"],
    }
    form = urllib.parse.parse_qs(auth.oauth_refresh_form("t", "s", "").decode())
    assert "scope" not in form and form["client_id"] == ["regsweep"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": "invalid_grant", "error_description": "revoked"}', "invalid_grant: revoked"),
        (b'{"error": "invalid_request"}', "invalid_request"),
        (rb'{"error": "x\u001b[31m\nforged"}', "x[31mforged"),
        (b'{"errors": [{"code": "UNAUTHORIZED"}]}', ""),
        (b"<html>nope</html>", ""),
        (b"[1]", ""),
        (b'{"error": "' + b"e" * 500 + b'"}', "e" * 200),
    ],
)
def test_oauth_error_descriptions(body: bytes, expected: str) -> None:
    """RFC 6749 error answers become short printable reasons; anything else gives ``""``."""
    assert auth.describe_oauth_error(body) == expected


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a valid Docker config"),
        ('{"auths": {"h": {"auth": "!!!"}}}', "not base64"),
        ('{"auths": {"h": {"auth": "' + base64.b64encode(b"nocolon").decode() + '"}}}', "user:"),
        ('{"credHelpers": {"h": "no-such-helper-xyz"}}', "not on PATH"),
        ('{"credHelpers": {"h": "../evil"}}', "invalid credential helper"),
    ],
)
def test_broken_docker_config_is_a_clear_error(tmp_path: Path, content: str, match: str) -> None:
    """A broken config or helper raises ``CredentialsError`` instead of going anonymous."""
    config = tmp_path / "config.json"
    config.write_text(content)
    with pytest.raises(auth.CredentialsError, match=match):
        load(config, "h")


def test_docker_config_env_var(tmp_path: Path) -> None:
    """``$DOCKER_CONFIG`` names the directory holding config.json."""
    assert auth.docker_config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert auth.docker_config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")


def test_token_answer_parsing() -> None:
    """``token`` or ``access_token``; ``expires_in`` defaults to 60 s; renewal before expiry."""
    t = auth.parse_token_response(b'{"access_token": "abc", "expires_in": 300}', now=1000.0)
    assert t.value == "abc" and 1000 + 280 <= t.renew_at < 1000 + 300
    t = auth.parse_token_response(b'{"token": "x"}', now=0.0)
    assert 50 <= t.renew_at < 60
    for bad in (b"{}", b"[", b'{"token": ""}'):
        with pytest.raises(ValueError):
            auth.parse_token_response(bad)


def test_token_cache_expiry_and_guarded_invalidation() -> None:
    """Expired tokens are not served; invalidating an old value keeps a renewed one."""
    cache = auth.TokenCache()
    key = ("realm", "svc", "repository:a:pull")
    cache.put(key, auth.Token(value="t1", renew_at=10.0))
    assert cache.get(key, now=5.0) == auth.Token(value="t1", renew_at=10.0)
    assert cache.get(key, now=10.0) is None
    cache.put(key, auth.Token(value="t2", renew_at=100.0))
    cache.invalidate(key, "t1")  # a late 401 on the old token
    assert cache.get(key, now=0.0) is not None
    cache.invalidate(key, "t2")
    assert cache.get(key, now=0.0) is None


def test_error_hierarchy_and_retryable_flags() -> None:
    """Every client error is a ``RegistryError``; only transient ones say retryable."""
    expected = {
        AuthError: False,
        NotFound: False,
        DigestMismatch: False,
        Unsupported: False,
        TooLarge: False,
        InvalidName: False,
        RateLimited: True,
        TransientError: True,
    }
    for cls, retryable in expected.items():
        err = cls("x")
        assert isinstance(err, RegistryError) and err.retryable is retryable
    assert AuthError("x", retryable=True).retryable
