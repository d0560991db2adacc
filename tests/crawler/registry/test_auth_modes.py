"""Each auth mode end to end against a real Distribution registry: ping, catalog, tags,
manifest (HEAD and GET), blob; plus credentials from a Docker config and credential helpers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop

from regsweep.crawler.auth import AuthScheme, Credentials
from regsweep.crawler.registry import (
    AuthError,
    NotFound,
    Registry,
    TLSError,
    Unsupported,
)
from tests.crawler.registry.conftest import PASSWORD, USER, RegistryServer
from tests.crawler.registry.faults import FaultProxy
from tests.crawler.registry.images import OCI_INDEX, ImageSet
from tests.crawler.registry.token_issuer import SERVICE, TokenIssuer
from tests.example import advisory_index

_T = TypeVar("_T")
REGSWEEP = str(Path(sys.executable).parent / "regsweep")
CREDS = Credentials(username=USER, password=PASSWORD)


def run(fn: Callable[[aiohttp.ClientSession], Awaitable[_T]]) -> _T:
    """Run ``fn(session)`` on a fresh uvloop with its own session."""

    async def main() -> _T:
        async with aiohttp.ClientSession() as session:
            return await fn(session)

    return uvloop.run(main())


async def read_blob(reg: Registry, repo: str, digest: str) -> bytes:
    """A whole blob through the streaming API."""
    out = bytearray()
    async with aclosing(reg.get_blob(repo, digest)) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


async def walk_everything(reg: Registry, images: ImageSet) -> AuthScheme | None:
    """Ping, catalog, tags, HEAD + GET of every tag and child, and one blob per repo;
    asserts everything matches what was pushed."""
    scheme = await reg.ping()
    repos = [r async for r in reg.catalog()]
    assert set(images.tags) <= set(repos)
    for repo in ("test/oci", "test/docker", "test/multi", "test/list"):
        tags = [t async for t in reg.tags(repo)]
        assert sorted(tags) == sorted(images.tags[repo])
        for tag, doc in images.tags[repo].items():
            head = await reg.head_manifest(repo, tag)
            assert head.digest == doc.digest
            got = await reg.get_manifest(repo, tag)
            assert (got.data, got.media_type, got.digest) == (doc.data, doc.media_type, doc.digest)
        for child in images.children.get(repo, []):
            got = await reg.get_manifest(repo, child.digest)
            assert got.data == child.data
        digest = images.repo_blobs[repo][-1]
        assert await read_blob(reg, repo, digest) == images.blobs[digest].data
    return scheme


def test_anonymous_registry_serves_every_pushed_document(
    plain_registry: RegistryServer, images: ImageSet
) -> None:
    """Anonymous mode: every tag, child manifest and blob reads back byte-identical."""
    scheme = run(lambda s: walk_everything(Registry(s, plain_registry.url), images))
    assert scheme is None


def test_index_and_attestation_come_back_as_an_oci_index(
    plain_registry: RegistryServer, images: ImageSet
) -> None:
    """The multi-platform index keeps its three children, the attestation among them."""

    async def body(s: aiohttp.ClientSession) -> None:
        got = await Registry(s, plain_registry.url).get_manifest("test/multi", "1.0")
        assert got.media_type == OCI_INDEX
        kinds = [
            m.get("annotations", {}).get("vnd.docker.reference.type")
            for m in json.loads(got.data)["manifests"]
        ]
        assert kinds == [None, None, "attestation-manifest"]

    run(body)


def test_missing_tag_is_not_found(plain_registry: RegistryServer) -> None:
    """A tag that does not exist is ``NotFound`` (not retryable), for HEAD and GET."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, plain_registry.url)
        with pytest.raises(NotFound) as exc:
            await reg.get_manifest("test/oci", "nope")
        assert not exc.value.retryable
        with pytest.raises(NotFound):
            await reg.head_manifest("test/oci", "nope")

    run(body)


def test_basic_auth_end_to_end(basic_registry: RegistryServer, images: ImageSet) -> None:
    """htpasswd registry: explicit credentials walk everything; the scheme is Basic."""
    scheme = run(
        lambda s: walk_everything(
            Registry(s, basic_registry.url, credentials=CREDS, use_docker_config=False), images
        )
    )
    assert scheme is AuthScheme.BASIC


@pytest.mark.parametrize(
    "creds", [None, Credentials(username=USER, password="wrong")], ids=["none", "wrong"]
)
def test_basic_auth_refused_without_good_credentials(
    basic_registry: RegistryServer, creds: Credentials | None
) -> None:
    """No or wrong credentials give ``AuthError`` (not retryable), never a silent empty result."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, basic_registry.url, credentials=creds, use_docker_config=False)
        with pytest.raises(AuthError) as exc:
            await reg.get_manifest("test/oci", "1.0")
        assert not exc.value.retryable

    run(body)


def _host(server: RegistryServer) -> str:
    return server.url.split("://", 1)[1]


def test_docker_config_inline_auth(
    basic_registry: RegistryServer, images: ImageSet, tmp_path: Path
) -> None:
    """``auths[host].auth`` (base64 user:password) in config.json is used."""
    config = tmp_path / "config.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {_host(basic_registry): {"auth": token}}}))

    async def body(s: aiohttp.ClientSession) -> bytes:
        reg = Registry(s, basic_registry.url, docker_config=config)
        return (await reg.get_manifest("test/oci", "1.0")).data

    assert run(body) == images.tags["test/oci"]["1.0"].data


def _fake_helper(
    bin_dir: Path, host: str, log: Path, username: str = USER, secret: str = PASSWORD
) -> None:
    """``docker-credential-fake``: knows ``host`` only, logs each server it was asked for."""
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-fake"
    answer = json.dumps({"ServerURL": host, "Username": username, "Secret": secret})
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read server\n"
        f'echo "$server" >> {log}\n'
        f'if [ "$server" = "{host}" ]; then echo \'{answer}\'; exit 0; fi\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credential_helper_protocol(
    basic_registry: RegistryServer,
    images: ImageSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
) -> None:
    """Credentials come from ``docker-credential-<name> get`` (per-host helper or global
    store): server on stdin, JSON on stdout; a burst of requests runs the helper once."""
    host = _host(basic_registry)
    log = tmp_path / "asked"
    _fake_helper(tmp_path / "bin", host, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"credHelpers": {host: "fake"}} if key == "credHelpers" else {"credsStore": "fake"}
        )
    )

    async def body(s: aiohttp.ClientSession) -> set[bytes]:
        reg = Registry(s, basic_registry.url, docker_config=config)
        got = await asyncio.gather(*(reg.get_manifest("test/oci", "1.0") for _ in range(5)))
        return {m.data for m in got}

    assert run(body) == {images.tags["test/oci"]["1.0"].data}
    assert log.read_text().split() == [host]  # asked once (five requests), for this host


def test_credential_helper_without_entry_means_auth_error(
    basic_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that has nothing for the host ("credentials not found") leaves the client
    anonymous, so the registry's 401 becomes ``AuthError``."""
    _fake_helper(tmp_path / "bin", "other.example:5000", tmp_path / "asked")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "fake"}))

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(AuthError, match="needs credentials"):
            await Registry(s, basic_registry.url, docker_config=config).get_manifest(
                "test/oci", "1.0"
            )

    run(body)


def test_bearer_token_end_to_end(
    token_registry: RegistryServer, issuer: TokenIssuer, images: ImageSet
) -> None:
    """Token mode: everything reads back, and tokens are fetched once per scope (cached)."""

    async def body(s: aiohttp.ClientSession) -> AuthScheme | None:
        reg = Registry(s, token_registry.url, credentials=CREDS)
        scheme = await walk_everything(reg, images)
        fetched = reg.tokens_fetched
        await reg.get_manifest("test/oci", "1.0")  # cached scope: no new token
        assert reg.tokens_fetched == fetched
        return scheme

    assert run(body) is AuthScheme.BEARER
    scopes = issuer.issued
    assert len(scopes) == len(set(scopes)), "a scope's token was fetched twice"
    assert "registry:catalog:*" in scopes
    assert "repository:test/multi:pull" in scopes


def test_bearer_wrong_password_is_auth_error(
    token_registry: RegistryServer, issuer: TokenIssuer
) -> None:
    """The issuer refusing the password is ``AuthError``; nothing is retried forever."""

    async def body(s: aiohttp.ClientSession) -> None:
        creds = Credentials(username=USER, password="wrong")
        with pytest.raises(AuthError, match="token request refused"):
            await Registry(s, token_registry.url, credentials=creds).get_manifest("test/oci", "1.0")

    run(body)
    assert issuer.issued == []


def test_token_renewed_when_its_lifetime_ends(
    token_registry: RegistryServer, issuer: TokenIssuer
) -> None:
    """A token past ``expires_in`` is not reused: the next request fetches a new one."""
    issuer.ttl = 1

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, token_registry.url, credentials=CREDS)
        await reg.get_manifest("test/oci", "1.0")
        await reg.get_manifest("test/oci", "1.1")
        assert reg.tokens_fetched == 1
        await asyncio.sleep(1.0)
        await reg.get_manifest("test/oci", "1.0")
        assert reg.tokens_fetched == 2

    run(body)


def test_token_renewed_after_401(token_registry: RegistryServer, issuer: TokenIssuer) -> None:
    """A token the registry rejects (expired JWT) triggers one fresh token and a retry."""
    issuer.expired_next = 1

    async def body(s: aiohttp.ClientSession) -> bytes:
        reg = Registry(s, token_registry.url, credentials=CREDS)
        return (await reg.get_manifest("test/oci", "1.0")).data

    assert run(body)
    assert issuer.issued == ["repository:test/oci:pull"] * 2


def test_persistent_401_is_auth_error(token_registry: RegistryServer, issuer: TokenIssuer) -> None:
    """When even the renewed token is rejected, the client stops with ``AuthError``."""
    issuer.expired_next = 5

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(AuthError):
            await Registry(s, token_registry.url, credentials=CREDS).get_manifest("test/oci", "1.0")

    run(body)
    assert len(issuer.issued) == 2


def test_tls_with_ca_file(tls_registry: RegistryServer, images: ImageSet) -> None:
    """HTTPS verified against the given CA file; basic auth on top."""
    assert tls_registry.ca_file is not None
    scheme = run(
        lambda s: walk_everything(
            Registry(s, tls_registry.url, credentials=CREDS, ca_file=tls_registry.ca_file),
            images,
        )
    )
    assert scheme is AuthScheme.BASIC


def test_tls_unknown_ca_fails_fast_and_insecure_skips_verification(
    tls_registry: RegistryServer,
) -> None:
    """Without the CA the handshake fails with ``TLSError`` (one attempt, no retries);
    ``insecure=True`` skips verification; a bare host means HTTPS."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, _host(tls_registry), credentials=CREDS)
        assert reg.base.scheme == "https"
        with pytest.raises(TLSError):
            await reg.ping()
        assert reg.requests_sent == 1
        insecure = Registry(s, tls_registry.url, credentials=CREDS, insecure=True)
        assert await insecure.ping() is AuthScheme.BASIC

    run(body)


@pytest.mark.parametrize("trust", ["ca_file", "insecure"])
def test_https_token_realm_on_another_origin_has_the_registrys_trust(
    tls_token_registry: RegistryServer,
    tls_realm: FaultProxy,
    issuer: TokenIssuer,
    images: ImageSet,
    trust: str,
) -> None:
    """An HTTPS registry whose bearer realm is an HTTPS server on another port, with a
    certificate from the registry's own test CA: the CA file (or ``insecure``) given for
    the registry applies to the realm too, so the token requests pass TLS and everything
    reads back (the realm's certificate was checked against the system roots, and every
    token request failed with ``TLSError``)."""
    tls_realm.reset()
    trusted: dict[str, Any] = (
        {"ca_file": tls_token_registry.ca_file} if trust == "ca_file" else {"insecure": True}
    )

    async def body(s: aiohttp.ClientSession) -> AuthScheme | None:
        reg = Registry(s, tls_token_registry.url, credentials=CREDS, **trusted)
        return await walk_everything(reg, images)

    assert run(body) is AuthScheme.BEARER
    assert [seen.path_qs.split("?")[0] for seen in tls_realm.seen][:1] == ["/token"]
    assert "repository:test/oci:pull" in issuer.issued


def test_non_sha256_digest_is_unsupported(plain_registry: RegistryServer) -> None:
    """Digest algorithms other than sha256 are refused before any request."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, plain_registry.url)
        with pytest.raises(Unsupported):
            await reg.get_manifest("test/oci", "sha512:" + "a" * 128)
        assert reg.requests_sent == 0

    run(body)


def test_concurrent_requests_share_one_token_fetch(
    token_registry: RegistryServer, issuer: TokenIssuer
) -> None:
    """Twenty concurrent requests for one scope on a fresh client make one token request."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, token_registry.url, credentials=CREDS, concurrency=20)
        await asyncio.gather(*(reg.get_manifest("test/oci", "1.0") for _ in range(20)))
        assert reg.tokens_fetched == 1

    run(body)
    assert issuer.issued == ["repository:test/oci:pull"]


def test_refused_catalog_says_to_name_repositories(basic_registry: RegistryServer) -> None:
    """A catalog the registry will not list gives an ``AuthError`` that says what to do."""

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, basic_registry.url, use_docker_config=False)
        with pytest.raises(AuthError, match="name the repositories explicitly"):
            _ = [r async for r in reg.catalog()]

    run(body)


def test_insecure_bare_host_falls_back_to_plain_http(plain_registry: RegistryServer) -> None:
    """A bare ``host:port`` is HTTPS; only with ``insecure=True`` does a host that does not
    speak TLS get plain HTTP (an explicit ``http://`` URL needs no flag)."""

    async def body(s: aiohttp.ClientSession) -> None:
        strict = Registry(s, _host(plain_registry), use_docker_config=False)
        with pytest.raises(TLSError):
            await strict.ping()
        loose = Registry(s, _host(plain_registry), use_docker_config=False, insecure=True)
        assert await loose.ping() is None
        assert loose.base.scheme == "http"
        assert (await loose.get_manifest("test/oci", "1.0")).digest
        # Without an explicit ping first: the URL built for the first request still names
        # https, and must follow the fallback the ping inside it decides.
        fresh = Registry(s, _host(plain_registry), use_docker_config=False, insecure=True)
        assert (await fresh.get_manifest("test/oci", "1.0")).digest
        assert [t async for t in fresh.tags("test/oci")]

    run(body)


# -- identity tokens (OAuth2 refresh-token grant) ----------------------------------------


@pytest.fixture
def oauth_issuer(issuer: TokenIssuer) -> Iterator[TokenIssuer]:
    """The issuer with no identity tokens and no recorded grants, OAuth2 enabled."""
    issuer.reset_oauth()
    yield issuer
    issuer.reset_oauth()


def _identity_config(path: Path, host: str, token: str, user: str = USER) -> Path:
    """A config.json as ``docker login`` leaves it for a token login: ``auth`` = "user:"."""
    auth_field = base64.b64encode(f"{user}:".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth_field, "identitytoken": token}}}))
    return path


def test_identity_token_from_docker_config_end_to_end(
    token_registry: RegistryServer, oauth_issuer: TokenIssuer, images: ImageSet, tmp_path: Path
) -> None:
    """``auths[host].identitytoken``: every token comes from the refresh-token grant (POST,
    the spec's form fields, no Basic header), one per scope, and everything reads back."""
    identity = oauth_issuer.new_identity_token(USER)
    config = _identity_config(tmp_path / "config.json", _host(token_registry), identity)

    async def body(s: aiohttp.ClientSession) -> AuthScheme | None:
        reg = Registry(s, token_registry.url, docker_config=config)
        scheme = await walk_everything(reg, images)
        fetched = reg.tokens_fetched
        await reg.get_manifest("test/oci", "1.0")  # cached scope: no new grant
        assert reg.tokens_fetched == fetched == len(oauth_issuer.grants)
        return scheme

    assert run(body) is AuthScheme.BEARER
    scopes = oauth_issuer.issued
    assert len(scopes) == len(set(scopes)), "a scope's token was fetched twice"
    assert {"registry:catalog:*", "repository:test/multi:pull"} <= set(scopes)
    assert [g.get("scope") for g in oauth_issuer.grants] == scopes
    for grant in oauth_issuer.grants:
        assert grant["grant_type"] == "refresh_token"
        assert grant["refresh_token"] == "<masked>"  # present (the issuer masks it)
        assert grant["service"] == SERVICE
        assert grant["client_id"] == "regsweep"
        assert grant["authorization"] == "no"


def test_identity_token_renewed_on_expiry_and_after_401(
    token_registry: RegistryServer, oauth_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Identity-token bearer tokens are renewed like password ones: after ``expires_in``,
    and once when the registry rejects a token (expired JWT)."""
    config = _identity_config(
        tmp_path / "config.json", _host(token_registry), oauth_issuer.new_identity_token(USER)
    )
    oauth_issuer.ttl = 2  # renewal at 1.8 s: room for a slow first request on a busy box
    oauth_issuer.expired_next = 1

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, token_registry.url, docker_config=config)
        await reg.get_manifest("test/oci", "1.0")  # dead token, 401, fresh grant
        assert reg.tokens_fetched == 2
        await reg.get_manifest("test/oci", "1.1")  # cached
        assert reg.tokens_fetched == 2
        await asyncio.sleep(2.0)
        await reg.get_manifest("test/oci", "1.0")  # lifetime over
        assert reg.tokens_fetched == 3

    run(body)
    assert oauth_issuer.issued == ["repository:test/oci:pull"] * 3
    assert [g["grant_type"] for g in oauth_issuer.grants] == ["refresh_token"] * 3


def test_credential_helper_identity_token(
    token_registry: RegistryServer,
    oauth_issuer: TokenIssuer,
    images: ImageSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper answering ``Username: <token>`` hands out an identity token: it is exchanged
    with the refresh-token grant; concurrent first requests make one grant."""
    host = _host(token_registry)
    identity = oauth_issuer.new_identity_token(USER)
    _fake_helper(tmp_path / "bin", host, tmp_path / "asked", username="<token>", secret=identity)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {host: "fake"}}))

    async def body(s: aiohttp.ClientSession) -> set[bytes]:
        reg = Registry(s, token_registry.url, docker_config=config, concurrency=10)
        got = await asyncio.gather(*(reg.get_manifest("test/oci", "1.0") for _ in range(10)))
        assert reg.tokens_fetched == 1
        return {m.data for m in got}

    assert run(body) == {images.tags["test/oci"]["1.0"].data}
    assert [g["grant_type"] for g in oauth_issuer.grants] == ["refresh_token"]
    assert oauth_issuer.issued == ["repository:test/oci:pull"]


def test_bad_identity_token_is_a_clear_auth_error(
    token_registry: RegistryServer, oauth_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """An identity token the issuer does not know: ``AuthError`` (not retryable) quoting the
    OAuth2 error, one grant attempt, and the token itself never in the message."""
    oauth_issuer.new_identity_token(USER)  # a valid one exists, but not this one
    bad = "not-a-known-identity-token-4711"
    config = _identity_config(tmp_path / "config.json", _host(token_registry), bad)

    async def body(s: aiohttp.ClientSession) -> AuthError:
        reg = Registry(s, token_registry.url, docker_config=config)
        with pytest.raises(AuthError) as exc:
            await reg.get_manifest("test/oci", "1.0")
        return exc.value

    err = run(body)
    assert "identity token refused (400: invalid_grant" in str(err)
    assert err.status == 400 and not err.retryable
    assert bad not in str(err)
    assert len(oauth_issuer.grants) == 1 and oauth_issuer.issued == []


def test_identity_token_without_oauth_support_is_a_clear_auth_error(
    token_registry: RegistryServer, oauth_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """A token server that answers the POST with 404 (no OAuth2, per oauth.md): an
    ``AuthError`` saying the identity token cannot be used, no fallback to GET."""
    oauth_issuer.oauth = False
    config = _identity_config(
        tmp_path / "config.json", _host(token_registry), oauth_issuer.new_identity_token(USER)
    )

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, token_registry.url, docker_config=config)
        with pytest.raises(AuthError, match="does not support the OAuth2 refresh-token grant"):
            await reg.get_manifest("test/oci", "1.0")

    run(body)
    assert oauth_issuer.issued == []


def test_identity_token_against_basic_only_registry(
    basic_registry: RegistryServer, tmp_path: Path
) -> None:
    """A basic-auth registry cannot take an identity token: a clear ``AuthError`` before any
    request carries credentials (only the ping was sent)."""
    token = "idtok-for-a-basic-registry"
    config = _identity_config(tmp_path / "config.json", _host(basic_registry), token)

    async def body(s: aiohttp.ClientSession) -> None:
        reg = Registry(s, basic_registry.url, docker_config=config)
        with pytest.raises(AuthError, match="identity token.*HTTP Basic") as exc:
            await reg.get_manifest("test/oci", "1.0")
        assert token not in str(exc.value) and not exc.value.retryable
        assert reg.requests_sent == 1

    run(body)


@pytest.fixture(scope="module")
def advisory_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An advisory index of the bundled samples (what ``regsweep scan`` needs)."""
    return advisory_index(tmp_path_factory.mktemp("auth-db") / "adv.lmdb")


def test_scan_with_identity_token_from_docker_config(
    token_registry: RegistryServer, oauth_issuer: TokenIssuer, advisory_db: Path, tmp_path: Path
) -> None:
    """``regsweep scan`` with ``$DOCKER_CONFIG`` holding an identity token scans the image;
    with an unknown token the result is an auth error record quoting the OAuth2 error (and
    never the token), not a crash."""
    ref = _host(token_registry) + "/test/docker:1.0"

    def scan(token: str, name: str) -> tuple[int, list[dict[str, object]], str]:
        conf_dir = tmp_path / name
        conf_dir.mkdir()
        _identity_config(conf_dir / "config.json", _host(token_registry), token)
        proc = subprocess.run(
            [REGSWEEP, "scan", "--db", str(advisory_db), "--state", str(conf_dir / "s.lmdb"),
             "--insecure", ref],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "DOCKER_CONFIG": str(conf_dir)},
        )  # fmt: skip
        return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr

    code, records, err = scan(oauth_issuer.new_identity_token(USER), "good")
    assert code == 0, err
    images = [r["image"] for r in records if r["kind"] == "image"]
    assert [i["ref"] for i in images if isinstance(i, dict)] == [ref]
    assert not [r for r in records if r["kind"] == "error"]
    assert {g["grant_type"] for g in oauth_issuer.grants} == {"refresh_token"}

    bad = "unknown-identity-token-0815"
    code, records, err = scan(bad, "bad")
    errors = [r for r in records if r["kind"] == "error"]
    assert [(e["error"], e["ref"]) for e in errors] == [("auth_error", ref)], (records, err)
    assert "invalid_grant" in str(errors[0]["message"])
    assert bad not in json.dumps(records) + err
