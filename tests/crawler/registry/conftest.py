"""Real-registry fixtures: Debian's ``docker-registry`` (Distribution 2.8) on 127.0.0.1.

Six variants share one storage root (like an HA pair on shared storage), so the images
pushed once through the plain registry can be read through every auth front-end:

- ``plain_registry``: HTTP, anonymous;
- ``basic_registry``: HTTP + htpasswd (bcrypt, made with ``htpasswd -B`` from apache2-utils);
- ``token_registry``: HTTP + bearer tokens from :class:`TokenIssuer` (RS256, x5c);
- ``tls_registry``: HTTPS with a trustme CA + htpasswd;
- ``tls_token_registry``: HTTPS (the same CA) + bearer tokens from an HTTPS realm on
  another port (``tls_realm``, a TLS proxy in front of the issuer);
- ``proxied_token_registry``: HTTP + bearer tokens through ``realm_proxy``, a fault proxy
  in front of the issuer.

Each process is session-scoped, logs to a file in its run directory, and is killed at the
end. Servers that tests talk to on their own loops (issuer, proxy, sink) run on one
background loop thread.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.crawler.registry.faults import BlobSink, FaultProxy, LoopThread
from tests.crawler.registry.images import ImageSet, build_images, push
from tests.crawler.registry.token_issuer import ISSUER, SERVICE, TokenIssuer
from tests.example import advisory_index

USER = "crawler"
PASSWORD = "s3cret-pass"


@dataclass
class RegistryServer:
    """A running registry: where it listens and how to authenticate."""

    url: str
    variant: str
    log: Path
    proc: subprocess.Popen[bytes]
    ca_file: Path | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(storage: Path, port: int, extra: str) -> str:
    return f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: regsweep-test-not-a-secret
{extra}health:
  storagedriver:
    enabled: false
"""


def _start(
    run_dir: Path, storage: Path, variant: str, extra: str = "", *, tls: bool = False
) -> RegistryServer:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    run_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = run_dir / f"{variant}.yml"
    config.write_text(_config(storage, port, extra))
    log = run_dir / f"{variant}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{variant} registry exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError as exc:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"{variant} registry did not listen: {log.read_text()[-2000:]}"
                ) from exc
            time.sleep(0.02)
    scheme = "https" if tls else "http"
    return RegistryServer(url=f"{scheme}://127.0.0.1:{port}", variant=variant, log=log, proc=proc)


def _stop(server: RegistryServer) -> None:
    # Storage is a throwaway temp dir, so no graceful drain (it takes ~2 s per process).
    server.proc.kill()
    server.proc.wait(10)


@pytest.fixture(scope="session")
def registry_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configs, logs, certificates and the shared storage root of this session's registries."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def images() -> ImageSet:
    """The test images (OCI, Docker schema 2, OCI index + attestation, manifest list, pages)."""
    return build_images()


@pytest.fixture(scope="session")
def plain_registry(registry_run_dir: Path, images: ImageSet) -> Iterator[RegistryServer]:
    """Anonymous HTTP registry, with :func:`images` pushed through its API."""
    server = _start(registry_run_dir, registry_run_dir / "storage", "plain")
    try:
        push(server.url, images)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def htpasswd_file(registry_run_dir: Path) -> Path:
    """An htpasswd file with one bcrypt entry (``htpasswd -B``, cost 5 to keep tests fast)."""
    tool = shutil.which("htpasswd")
    if tool is None:
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
    path = registry_run_dir / "htpasswd"
    subprocess.run(
        [tool, "-Bbc", "-C", "5", str(path), USER, PASSWORD], check=True, capture_output=True
    )
    return path


@pytest.fixture(scope="session")
def basic_registry(
    registry_run_dir: Path, plain_registry: RegistryServer, htpasswd_file: Path
) -> Iterator[RegistryServer]:
    """HTTP registry with htpasswd basic auth over the same storage."""
    extra = f"auth:\n  htpasswd:\n    realm: regsweep-test\n    path: {htpasswd_file}\n"
    server = _start(registry_run_dir, registry_run_dir / "storage", "basic", extra)
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def tls_registry(
    registry_run_dir: Path, plain_registry: RegistryServer, htpasswd_file: Path
) -> Iterator[RegistryServer]:
    """HTTPS registry (certificate from a trustme CA, SAN 127.0.0.1) + htpasswd."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls_dir = registry_run_dir / "tls"
    tls_dir.mkdir()
    cert.private_key_pem.write_to_path(str(tls_dir / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tls_dir / "cert.pem"))
    ca.cert_pem.write_to_path(str(tls_dir / "ca.pem"))
    extra = (
        f"  tls:\n    certificate: {tls_dir / 'cert.pem'}\n    key: {tls_dir / 'key.pem'}\n"
        f"auth:\n  htpasswd:\n    realm: regsweep-test-tls\n    path: {htpasswd_file}\n"
    )
    server = _start(registry_run_dir, registry_run_dir / "storage", "tls", extra, tls=True)
    server.ca_file = tls_dir / "ca.pem"
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def tls_server_context(tls_registry: RegistryServer) -> ssl.SSLContext:
    """A server-side TLS context with the TLS registry's certificate (for TLS proxies)."""
    tls_dir = tls_registry.log.parent / "tls"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
    return context


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """The background loop that runs the issuer, proxies and sink."""
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def token_issuer(loop_thread: LoopThread) -> Iterator[TokenIssuer]:
    """The bearer-token issuer (user :data:`USER` / :data:`PASSWORD`)."""
    issuer = TokenIssuer({USER: PASSWORD})
    loop_thread.call(issuer.start())
    yield issuer
    loop_thread.call(issuer.stop())


@pytest.fixture
def issuer(token_issuer: TokenIssuer) -> Iterator[TokenIssuer]:
    """The session issuer with its knobs reset for one test."""
    token_issuer.ttl, token_issuer.expired_next, token_issuer.issued = 300, 0, []
    yield token_issuer
    token_issuer.ttl, token_issuer.expired_next = 300, 0


@pytest.fixture(scope="session")
def token_registry(
    registry_run_dir: Path, plain_registry: RegistryServer, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    """HTTP registry with bearer-token auth against :func:`token_issuer`."""
    bundle = token_issuer.write_cert(registry_run_dir / "issuer.pem")
    extra = (
        f"auth:\n  token:\n    realm: {token_issuer.realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
    )
    server = _start(registry_run_dir, registry_run_dir / "storage", "token", extra)
    yield server
    _stop(server)


def _realm(
    loop_thread: LoopThread,
    issuer: TokenIssuer,
    sink: BlobSink,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(f"http://127.0.0.1:{issuer.port}", sink.url, ssl_context)
    loop_thread.call(proxy.start())
    yield proxy
    loop_thread.call(proxy.stop())


def _token_auth(realm: str, bundle: Path) -> str:
    """The ``auth: token`` config section for a realm of :func:`token_issuer`."""
    return (
        f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
    )


@pytest.fixture(scope="session")
def tls_realm(
    loop_thread: LoopThread,
    token_issuer: TokenIssuer,
    blob_sink: BlobSink,
    tls_server_context: ssl.SSLContext,
) -> Iterator[FaultProxy]:
    """The token issuer behind HTTPS on a port of its own: a token realm on another origin
    than the registry, with a certificate from the TLS registry's test CA."""
    yield from _realm(loop_thread, token_issuer, blob_sink, tls_server_context)


@pytest.fixture(scope="session")
def realm_proxy(
    loop_thread: LoopThread, token_issuer: TokenIssuer, blob_sink: BlobSink
) -> Iterator[FaultProxy]:
    """A fault proxy in front of the token issuer (plain HTTP): a token realm that can
    misbehave."""
    yield from _realm(loop_thread, token_issuer, blob_sink)


@pytest.fixture(scope="session")
def proxied_token_registry(
    registry_run_dir: Path,
    plain_registry: RegistryServer,
    token_issuer: TokenIssuer,
    realm_proxy: FaultProxy,
) -> Iterator[RegistryServer]:
    """HTTP registry with bearer tokens from :func:`realm_proxy`."""
    bundle = token_issuer.write_cert(registry_run_dir / "issuer.pem")
    extra = _token_auth(f"{realm_proxy.url}/token", bundle)
    server = _start(registry_run_dir, registry_run_dir / "storage", "proxied-token", extra)
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def tls_token_registry(
    registry_run_dir: Path,
    plain_registry: RegistryServer,
    tls_registry: RegistryServer,
    token_issuer: TokenIssuer,
    tls_realm: FaultProxy,
) -> Iterator[RegistryServer]:
    """HTTPS registry (the TLS registry's certificate) with bearer tokens from
    :func:`tls_realm`, an HTTPS realm on another port."""
    tls_dir = registry_run_dir / "tls"
    bundle = token_issuer.write_cert(registry_run_dir / "issuer.pem")
    extra = (
        f"  tls:\n    certificate: {tls_dir / 'cert.pem'}\n    key: {tls_dir / 'key.pem'}\n"
    ) + _token_auth(f"{tls_realm.url}/token", bundle)
    server = _start(registry_run_dir, registry_run_dir / "storage", "tls-token", extra, tls=True)
    server.ca_file = tls_registry.ca_file
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def blob_sink(loop_thread: LoopThread, images: ImageSet) -> Iterator[BlobSink]:
    """Blob storage "on another host" (another port) serving every test blob."""
    sink = BlobSink()
    sink.blobs = {digest: blob.data for digest, blob in images.blobs.items()}
    loop_thread.call(sink.start())
    yield sink
    loop_thread.call(sink.stop())


def _proxy(
    loop_thread: LoopThread,
    upstream: RegistryServer,
    sink: BlobSink,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream.url, sink.url, ssl_context)
    loop_thread.call(proxy.start())
    yield proxy
    loop_thread.call(proxy.stop())


@pytest.fixture(scope="session")
def _plain_proxy(
    loop_thread: LoopThread, plain_registry: RegistryServer, blob_sink: BlobSink
) -> Iterator[FaultProxy]:
    yield from _proxy(loop_thread, plain_registry, blob_sink)


@pytest.fixture(scope="session")
def _basic_proxy(
    loop_thread: LoopThread, basic_registry: RegistryServer, blob_sink: BlobSink
) -> Iterator[FaultProxy]:
    yield from _proxy(loop_thread, basic_registry, blob_sink)


@pytest.fixture(scope="session")
def _tls_token_proxy(
    loop_thread: LoopThread,
    token_registry: RegistryServer,
    blob_sink: BlobSink,
    tls_server_context: ssl.SSLContext,
) -> Iterator[FaultProxy]:
    yield from _proxy(loop_thread, token_registry, blob_sink, tls_server_context)


@pytest.fixture(scope="session")
def _tls_plain_proxy(
    loop_thread: LoopThread,
    plain_registry: RegistryServer,
    blob_sink: BlobSink,
    tls_server_context: ssl.SSLContext,
) -> Iterator[FaultProxy]:
    yield from _proxy(loop_thread, plain_registry, blob_sink, tls_server_context)


@pytest.fixture
def tls_plain_proxy(_tls_plain_proxy: FaultProxy, blob_sink: BlobSink) -> FaultProxy:
    """HTTPS fault proxy (trustme certificate) in front of the anonymous registry."""
    _tls_plain_proxy.wait_idle()
    _tls_plain_proxy.reset()
    blob_sink.seen = []
    return _tls_plain_proxy


@pytest.fixture
def tls_token_proxy(_tls_token_proxy: FaultProxy, blob_sink: BlobSink) -> FaultProxy:
    """HTTPS fault proxy (trustme certificate) in front of the token registry, whose
    challenges name a plain-HTTP token realm."""
    _tls_token_proxy.wait_idle()
    _tls_token_proxy.reset()
    blob_sink.seen = []
    return _tls_token_proxy


@pytest.fixture
def plain_proxy(_plain_proxy: FaultProxy, blob_sink: BlobSink) -> FaultProxy:
    """Fault proxy in front of the plain registry, reset for this test."""
    _plain_proxy.wait_idle()
    _plain_proxy.reset()
    blob_sink.seen = []
    return _plain_proxy


@pytest.fixture
def basic_proxy(_basic_proxy: FaultProxy, blob_sink: BlobSink) -> FaultProxy:
    """Fault proxy in front of the basic-auth registry, reset for this test."""
    _basic_proxy.wait_idle()
    _basic_proxy.reset()
    blob_sink.seen = []
    return _basic_proxy


@pytest.fixture(scope="session")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An advisory index of the bundled samples."""
    return advisory_index(tmp_path_factory.mktemp("crawl-db") / "adv.lmdb")
