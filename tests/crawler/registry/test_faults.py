"""Faulty registries (through the fault proxy in front of a real registry): retries, 429,
dropped connections, corrupted bytes, redirects to another host, lying ``Link`` headers,
size caps, schema 1, concurrency and rate limits, cancellation."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop

from regsweep.crawler.analyze import default_analyzers
from regsweep.crawler.auth import Credentials
from regsweep.crawler.images import Crawler, RefResult
from regsweep.crawler.registry import (
    AuthError,
    DigestMismatch,
    ProtocolError,
    RateLimited,
    Registry,
    RetryPolicy,
    Timeouts,
    TooLarge,
    TransientError,
    Unsupported,
    parse_retry_after,
)
from tests.crawler.registry.conftest import PASSWORD, USER, RegistryServer
from tests.crawler.registry.faults import BlobSink, Fault, FaultProxy
from tests.crawler.registry.images import ImageSet

_T = TypeVar("_T")
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
OCI = "test/oci"


def run(fn: Callable[[aiohttp.ClientSession], Awaitable[_T]]) -> _T:
    """Run ``fn(session)`` on a fresh uvloop with its own session."""

    async def main() -> _T:
        async with aiohttp.ClientSession() as session:
            return await fn(session)

    return uvloop.run(main())


def client(s: aiohttp.ClientSession, proxy: FaultProxy, **kw: Any) -> Registry:
    """A client for the proxy with fast retries."""
    kw.setdefault("retry", FAST)
    kw.setdefault("use_docker_config", False)
    return Registry(s, proxy.url, **kw)


async def read_blob(reg: Registry, repo: str, digest: str) -> bytes:
    """A whole blob through the streaming API."""
    out = bytearray()
    async with aclosing(reg.get_blob(repo, digest)) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


def layer_of(images: ImageSet) -> str:
    """The last layer of test/oci: 2 MiB of incompressible bytes, the biggest test blob."""
    return images.repo_blobs[OCI][-1]


def manifest_gets(proxy: FaultProxy) -> int:
    """How many manifest GETs reached the proxy."""
    return sum(1 for s in proxy.seen if s.method == "GET" and "/manifests/" in s.path_qs)


def test_5xx_retried_until_success(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """Two 500s then a good answer: the manifest arrives, after exactly three GETs."""
    plain_proxy.reset(Fault(r"GET /v2/test/oci/manifests/1.0", "respond", times=2, status=500))
    got = run(lambda s: client(s, plain_proxy).get_manifest(OCI, "1.0"))
    assert got.digest == images.tags[OCI]["1.0"].digest
    assert manifest_gets(plain_proxy) == 3


def test_503_retry_after_is_honoured(plain_proxy: FaultProxy) -> None:
    """A 503 with ``Retry-After`` waits that long instead of the jittered backoff."""
    plain_proxy.reset(Fault(r"/manifests/", "respond", status=503, headers={"Retry-After": "4"}))
    waits, sleep = _sleeps()
    run(lambda s: client(s, plain_proxy, sleep=sleep).get_manifest(OCI, "1.0"))
    assert waits == [4.0]


def test_5xx_forever_is_retryable_transient_error(plain_proxy: FaultProxy) -> None:
    """A registry that keeps failing: ``TransientError`` (retryable) after the budget."""
    plain_proxy.reset(Fault(r"/manifests/", "respond", times=-1, status=503))

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(TransientError) as exc:
            await client(s, plain_proxy).get_manifest(OCI, "1.0")
        assert exc.value.retryable and exc.value.status == 503

    run(body)
    assert manifest_gets(plain_proxy) == FAST.attempts


def _sleeps() -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    return waits, sleep


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_waits_for_retry_after(plain_proxy: FaultProxy, form: str) -> None:
    """429 + ``Retry-After`` (delta seconds or HTTP date) is waited out, then retried."""
    when = datetime.now(UTC) + timedelta(seconds=30)
    value = "7" if form == "seconds" else email.utils.format_datetime(when, usegmt=True)
    plain_proxy.reset(Fault(r"/manifests/", "respond", status=429, headers={"Retry-After": value}))
    waits, sleep = _sleeps()
    run(lambda s: client(s, plain_proxy, sleep=sleep).get_manifest(OCI, "1.0"))
    assert len(waits) == 1
    assert (waits[0] == 7) if form == "seconds" else (25 < waits[0] <= 30)


def test_429_with_too_long_retry_after_is_rate_limited(plain_proxy: FaultProxy) -> None:
    """A ``Retry-After`` above the policy's limit is not slept: ``RateLimited`` carries it."""
    plain_proxy.reset(Fault(r"/manifests/", "respond", status=429, headers={"Retry-After": "3600"}))

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(RateLimited) as exc:
            await client(s, plain_proxy).get_manifest(OCI, "1.0")
        assert exc.value.retryable and exc.value.retry_after == 3600

    run(body)


def test_retry_after_parsing() -> None:
    """Delta seconds, HTTP dates (past ones clamp to 0) and garbage (ignored)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("12", now=now) == 12
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_dropped_connection_retried(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """A connection closed without an answer is retried (manifest and blob)."""
    digest = layer_of(images)
    plain_proxy.reset(
        Fault(r"GET /v2/test/oci/manifests/", "drop"), Fault(r"GET .*/blobs/", "drop")
    )

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, plain_proxy)
        assert (await reg.get_manifest(OCI, "1.0")).digest == images.tags[OCI]["1.0"].digest
        assert await read_blob(reg, OCI, digest) == images.blobs[digest].data

    run(body)
    assert manifest_gets(plain_proxy) == 2
    assert sum(1 for s in plain_proxy.seen if "/blobs/" in s.path_qs) == 2


def test_slow_answer_times_out_and_is_retried(plain_proxy: FaultProxy) -> None:
    """An answer slower than the request timeout is abandoned and retried."""
    plain_proxy.reset(Fault(r"/manifests/", "slow", delay=1.0))
    started = time.monotonic()
    run(lambda s: client(s, plain_proxy, timeouts=Timeouts(request=0.3)).get_manifest(OCI, "1.0"))
    assert time.monotonic() - started < 0.95
    assert manifest_gets(plain_proxy) == 2


def test_corrupted_blob_is_digest_mismatch(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """One flipped byte in a blob: ``DigestMismatch`` at the end of the stream."""
    digest = layer_of(images)
    plain_proxy.reset(Fault(r"/blobs/", "corrupt"))

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(DigestMismatch) as exc:
            await read_blob(client(s, plain_proxy), OCI, digest)
        assert not exc.value.retryable

    run(body)


@pytest.mark.parametrize("ref", ["1.0", "digest"])
def test_corrupted_manifest_is_digest_mismatch(
    plain_proxy: FaultProxy, images: ImageSet, ref: str
) -> None:
    """A manifest whose bytes do not hash to ``Docker-Content-Digest`` (tag ref) or to the
    digest asked for: ``DigestMismatch``."""
    doc = images.tags[OCI]["1.0"]
    plain_proxy.reset(Fault(r"/manifests/", "corrupt"))

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(DigestMismatch):
            await client(s, plain_proxy).get_manifest(OCI, doc.digest if ref == "digest" else ref)

    run(body)


def test_blob_redirect_to_other_host_drops_authorization(
    basic_proxy: FaultProxy, blob_sink: BlobSink, images: ImageSet
) -> None:
    """A 307 to blob storage on another origin is followed without the Authorization
    header, which the registry itself did receive."""
    digest = layer_of(images)
    basic_proxy.reset(Fault(r"GET .*/blobs/", "redirect"))
    creds = Credentials(username=USER, password=PASSWORD)
    data = run(lambda s: read_blob(client(s, basic_proxy, credentials=creds), OCI, digest))
    assert data == images.blobs[digest].data
    blob_requests = [s for s in basic_proxy.seen if "/blobs/" in s.path_qs]
    assert blob_requests and all(s.authorization for s in blob_requests)
    assert [s.authorization for s in blob_sink.seen] == [None]


def _tags_page(tags: list[str], link: str | None) -> Fault:
    headers = {"Content-Type": "application/json"}
    if link:
        headers["Link"] = f'<{link}>; rel="next"'
    return Fault(
        "",
        "respond",
        status=200,
        headers=headers,
        body=json.dumps({"name": OCI, "tags": tags}).encode(),
    )


def _paged(proxy: FaultProxy, pages: list[tuple[str, list[str], str | None]]) -> None:
    faults = []
    for pattern, tags, link in pages:
        fault = _tags_page(tags, link)
        fault.pattern = pattern
        faults.append(fault)
    proxy.reset(*faults)


def test_tags_follow_relative_and_absolute_links(plain_proxy: FaultProxy) -> None:
    """``Link`` pagination: a relative link, then an absolute one, then the last page."""
    _paged(
        plain_proxy,
        [
            (r"tags/list\?n=2$", ["a", "b"], "/v2/test/oci/tags/list?last=b&n=2"),
            (r"last=b", ["c", "d"], f"{plain_proxy.url}/v2/test/oci/tags/list?last=d&n=2"),
            (r"last=d", ["e"], None),
        ],
    )

    async def body(s: aiohttp.ClientSession) -> list[str]:
        return [t async for t in client(s, plain_proxy).tags(OCI, n=2)]

    assert run(body) == ["a", "b", "c", "d", "e"]


_LYING_LINKS = {
    "loop": "/v2/test/oci/tags/list?n=2",
    "off-host": "http://127.0.0.2:1/v2/x?n=2",
    # Not http at all: had no origin to compare, and raised ValueError (a traceback).
    "file": "file:///etc/passwd",
    # The same origin, outside the API: was followed with the credentials.
    "outside /v2/": "/etc/passwd",
}


@pytest.mark.parametrize("where", list(_LYING_LINKS))
def test_lying_link_is_protocol_error(plain_proxy: FaultProxy, where: str) -> None:
    """A ``Link`` that loops back to a page already read, leaves the registry's origin, is
    not an http URL, or leaves the ``/v2/`` API stops pagination with ``ProtocolError``
    instead of looping, raising something else, or sending credentials where they do not
    belong; the pages read before stand."""
    link = _LYING_LINKS[where]
    _paged(
        plain_proxy,
        [
            (r"tags/list\?n=2$", ["a", "b"], "/v2/test/oci/tags/list?last=b&n=2"),
            (r"last=b", ["c"], link),
        ],
    )
    got: list[str] = []

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(ProtocolError):
            async for tag in client(s, plain_proxy).tags(OCI, n=2):
                got.append(tag)  # noqa: PERF401 - the pages before the error must be kept

    run(body)
    assert got == ["a", "b", "c"]
    assert not any("passwd" in seen.path_qs for seen in plain_proxy.seen)


def test_catalog_pagination_with_small_n(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """The real registry's catalog with ``n=5`` (relative Links) lists every repository
    once, in order, the same as one big page."""

    async def body(s: aiohttp.ClientSession) -> tuple[list[str], list[str]]:
        reg = client(s, plain_proxy)
        small = [r async for r in reg.catalog(n=5)]
        big = [r async for r in reg.catalog(n=1000)]
        return small, big

    small, big = run(body)
    assert small == big == sorted(images.tags)
    pages = [s for s in plain_proxy.seen if "_catalog" in s.path_qs]
    assert len(pages) == -(-len(small) // 5) + 1  # ceil(repos / 5) pages, plus the big one


def test_schema1_is_unsupported(plain_proxy: FaultProxy) -> None:
    """A schema 1 manifest (by media type, or by ``schemaVersion`` under a generic type)
    is ``Unsupported``, for GET and HEAD."""
    signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    body1 = json.dumps({"schemaVersion": 1, "name": OCI, "tag": "old", "fsLayers": []}).encode()
    plain_proxy.reset(
        Fault(
            r"GET .*/manifests/old",
            "respond",
            status=200,
            headers={"Content-Type": signed},
            body=body1,
        ),
        Fault(
            r"GET .*/manifests/json",
            "respond",
            status=200,
            headers={"Content-Type": "application/json"},
            body=body1,
        ),
        Fault(
            r"HEAD .*/manifests/old",
            "respond",
            status=200,
            headers={"Content-Type": signed, "Docker-Content-Digest": "sha256:" + "0" * 64},
        ),
    )

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, plain_proxy)
        for ref in ("old", "json"):
            with pytest.raises(Unsupported, match="schema 1"):
                await reg.get_manifest(OCI, ref)
        with pytest.raises(Unsupported, match="schema 1"):
            await reg.head_manifest(OCI, "old")

    run(body)


def test_manifest_size_cap(plain_proxy: FaultProxy) -> None:
    """A manifest above the cap is ``TooLarge`` and not read whole."""

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(TooLarge):
            await client(s, plain_proxy, max_manifest_bytes=100).get_manifest(OCI, "1.0")

    run(body)


def test_concurrency_limit_per_host(plain_proxy: FaultProxy) -> None:
    """With ``concurrency=2``, never more than two requests are in flight at the registry."""
    plain_proxy.reset(Fault(r"/manifests/", "slow", times=-1, delay=0.05))

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, plain_proxy, concurrency=2)
        await reg.ping()
        await asyncio.gather(*(reg.get_manifest(OCI, "1.0") for _ in range(10)))

    run(body)
    assert plain_proxy.max_in_flight == 2


def test_rate_limit_spaces_requests(plain_proxy: FaultProxy) -> None:
    """``rate=20``: ten requests take at least 9 / 20 s."""

    async def body(s: aiohttp.ClientSession) -> float:
        reg = client(s, plain_proxy, rate=20)
        await reg.ping()
        started = time.monotonic()
        await asyncio.gather(*(reg.get_manifest(OCI, "1.0") for _ in range(10)))
        return time.monotonic() - started

    assert run(body) >= 0.44


def test_abandoned_blob_stream_releases_its_slot(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """Stopping a blob stream early (``aclosing``) or cancelling requests mid-flight gives
    back every concurrency slot and pooled connection: the next requests still run at full
    concurrency."""
    digest = layer_of(images)
    plain_proxy.reset(Fault(r"/manifests/", "slow", times=-1, delay=0.5))

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, plain_proxy, concurrency=2)
        async with aclosing(reg.get_blob(OCI, digest)) as chunks:
            async for _ in chunks:
                break
        tasks = [asyncio.create_task(reg.get_manifest(OCI, "1.0")) for _ in range(4)]
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert reg._sem._value == 2  # every slot back
        # ... and every connection: none is still checked out of the pool (private
        # attribute, but the only view aiohttp gives of requests left open).
        assert s.connector is not None
        assert not s.connector._acquired
        plain_proxy.reset()
        await asyncio.wait_for(
            asyncio.gather(reg.get_manifest(OCI, "1.0"), reg.get_manifest(OCI, "1.1")), 2
        )

    run(body)


def test_body_cut_short_is_retried_for_manifests(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """A manifest body cut in half (connection lost) is fetched again, whole."""
    plain_proxy.reset(Fault(r"GET .*/manifests/", "truncate"))
    got = run(lambda s: client(s, plain_proxy).get_manifest(OCI, "1.0"))
    assert got.data == images.tags[OCI]["1.0"].data
    assert manifest_gets(plain_proxy) == 2


def test_registry_serves_blob_ranges(plain_registry: RegistryServer, images: ImageSet) -> None:
    """What resuming a blob relies on: the real registry answers ``Range: bytes=N-`` on a
    blob with 206, the right ``Content-Range`` and the bytes from N on."""
    digest = layer_of(images)
    data = images.blobs[digest].data
    start = len(data) // 3

    async def body(s: aiohttp.ClientSession) -> tuple[int, str | None, bytes]:
        url = f"{plain_registry.url}/v2/{OCI}/blobs/{digest}"
        async with s.get(url, headers={"Range": f"bytes={start}-"}) as resp:
            return resp.status, resp.headers.get("Content-Range"), await resp.read()

    status, content_range, got = run(body)
    assert status == 206
    assert content_range == f"bytes {start}-{len(data) - 1}/{len(data)}"
    assert got == data[start:]


def blob_ranges(proxy: FaultProxy) -> list[str | None]:
    """The ``Range`` header of every blob GET that reached the proxy."""
    return [s.range for s in proxy.seen if s.method == "GET" and "/blobs/" in s.path_qs]


@pytest.mark.parametrize("server", ["206", "200"])
def test_blob_cut_short_is_resumed_where_it_stopped(
    plain_proxy: FaultProxy, images: ImageSet, server: str
) -> None:
    """A blob whose connection breaks mid-body is asked for again from the first byte not
    yet received (``Range: bytes=N-``) and the stream goes on: the consumer gets every
    byte once and the digest check passes. The real registry answers 206; a server that
    ignores ``Range`` answers 200 with the whole blob, whose first N bytes are skipped.
    (The transfer used to fail with ``TransientError``, and the image with it.)"""
    digest = layer_of(images)
    data = images.blobs[digest].data
    faults = [Fault(r"GET .*/blobs/", "truncate")]
    if server == "200":
        faults.append(Fault(r"GET .*/blobs/", "ignore_range"))
    plain_proxy.reset(*faults)
    assert run(lambda s: read_blob(client(s, plain_proxy), OCI, digest)) == data
    # The proxy sent exactly the first half before cutting the connection.
    assert blob_ranges(plain_proxy) == [None, f"bytes={len(data) // 2}-"]


def test_blob_cut_short_every_time_is_retryable_error(
    plain_proxy: FaultProxy, images: ImageSet
) -> None:
    """A blob whose connection breaks on every try: each try resumes where the last one
    stopped, and when the retry budget is spent the stream ends with ``TransientError``
    (retryable), never a silent short blob; what was handed out is the blob's start,
    each byte once."""
    digest = layer_of(images)
    data = images.blobs[digest].data
    plain_proxy.reset(Fault(r"GET .*/blobs/", "truncate", times=-1))
    got = bytearray()

    async def body(s: aiohttp.ClientSession) -> None:
        with pytest.raises(TransientError) as exc:
            async with aclosing(client(s, plain_proxy).get_blob(OCI, digest)) as chunks:
                async for chunk in chunks:
                    got.extend(chunk)
        assert exc.value.retryable
        assert f"{FAST.attempts} tries" in str(exc.value)

    run(body)
    ranges = blob_ranges(plain_proxy)
    assert len(ranges) == FAST.attempts
    starts = [0] + [int(r.removeprefix("bytes=").removesuffix("-")) for r in ranges[1:] if r]
    assert len(starts) == FAST.attempts and starts == sorted(set(starts))
    assert 0 < len(got) < len(data) and bytes(got) == data[: len(got)]


def scan(proxy: FaultProxy, refs: list[str], **kw: Any) -> list[RefResult]:
    """``Crawler.scan_ref`` of each ``REPO:TAG`` in turn, by one crawler (no state store)
    with every analyzer, through ``proxy`` (stopped after 60 s, if it hangs)."""
    executor = ThreadPoolExecutor(max_workers=10)

    async def main(s: aiohttp.ClientSession) -> list[RefResult]:
        crawler = Crawler(client(s, proxy, **kw), default_analyzers(), executor=executor)
        out = []
        for ref in refs:
            repo, _, tag = ref.partition(":")
            out.append(await asyncio.wait_for(crawler.scan_ref(repo, tag, ref_text=ref), 60))
        return out

    try:
        return run(main)
    finally:
        executor.shutdown()


def blob_problems(result: RefResult) -> list[tuple[str, str, bool]]:
    """``(stage, error, retryable)`` of a scanned reference's failures and its images'
    problems, analyzers' notes left out."""
    problems = [*result.failures, *(p for f in result.images for p in f.problems)]
    return [(p.stage, p.error, p.retryable) for p in problems if p.stage != "analyzer"]


def test_crawl_resumes_a_layer_cut_once_and_goes_on_past_one_cut_for_good(
    plain_proxy: FaultProxy, images: ImageSet
) -> None:
    """Through the crawler and its layer scanners: an image whose biggest layer is cut
    mid-body once is scanned whole (it was lost as ``transient_error``); cut on every try,
    that layer is a retryable ``transient_error`` problem of its image, and the next image
    of the crawl is scanned whole."""
    big = layer_of(images)
    plain_proxy.reset(Fault(r"GET .*/blobs/" + big, "truncate"))
    [once] = scan(plain_proxy, ["test/oci:1.0"])
    assert [r for r in blob_ranges(plain_proxy) if r] == [
        f"bytes={len(images.blobs[big].data) // 2}-"
    ]
    assert [f.complete for f in once.images] == [True]
    assert blob_problems(once) == []
    assert [p.name for p in once.images[0].packages] == ["base-files"]

    plain_proxy.reset(Fault(r"GET .*/blobs/" + big, "truncate", times=-1))
    broken, other = scan(plain_proxy, ["test/oci:1.0", "test/docker:1.0"])
    assert [f.complete for f in broken.images] == [False]
    assert blob_problems(broken) == [("blob", "transient_error", True)]
    assert [f.complete for f in other.images] == [True]
    assert blob_problems(other) == []


#: Small limits, so that the slow-loris tests take seconds: a whole small-document exchange
#: 1 s (each try could take 5 s), and a blob must bring 4 KiB per 0.5 s of waiting.
SLOW_LIMITS = Timeouts(request=5.0, total=1.0, stall=0.5, stall_bytes=4096)
#: Comfortably above what ``SLOW_LIMITS`` allow, far below what the old limits took (each
#: try ran to its own 5 s ``request`` limit, and a blob had no limit at all).
HELD_AT_MOST = 4.0


def timed(fn: Callable[[aiohttp.ClientSession], Awaitable[_T]]) -> tuple[_T, float]:
    """``run(fn)`` and how many seconds it took (stopped after 60 s, if it hangs)."""
    started = time.monotonic()

    async def bounded(s: aiohttp.ClientSession) -> _T:
        return await asyncio.wait_for(fn(s), 60)

    return run(bounded), time.monotonic() - started


def test_slow_loris_manifest_is_given_up_within_the_total_limit(plain_proxy: FaultProxy) -> None:
    """A manifest sent one byte at a time (no read ever times out): the whole exchange,
    every try included, ends at ``Timeouts.total`` with a retryable ``TransientError``
    (each try used to run to the ``request`` limit, ``attempts`` times over)."""
    plain_proxy.reset(Fault(r"GET .*/manifests/", "trickle", times=-1, delay=0.1))

    async def body(s: aiohttp.ClientSession) -> TransientError:
        with pytest.raises(TransientError) as exc:
            await client(s, plain_proxy, timeouts=SLOW_LIMITS).get_manifest(OCI, "1.0")
        return exc.value

    error, held = timed(body)
    assert error.retryable and "within 1 s" in str(error)
    assert held < HELD_AT_MOST


def test_slow_loris_token_realm_is_given_up_within_the_total_limit(
    proxied_token_registry: RegistryServer, realm_proxy: FaultProxy
) -> None:
    """A token realm that answers one byte at a time cannot hold the request that needs
    the token past ``Timeouts.total``: a retryable ``TransientError``."""
    realm_proxy.reset(Fault(r"GET /token", "trickle", times=-1, delay=0.1))
    creds = Credentials(username=USER, password=PASSWORD)

    async def body(s: aiohttp.ClientSession) -> TransientError:
        reg = Registry(
            s, proxied_token_registry.url, credentials=creds, retry=FAST, timeouts=SLOW_LIMITS
        )
        with pytest.raises(TransientError) as exc:
            await reg.get_manifest(OCI, "1.0")
        return exc.value

    try:
        error, held = timed(body)
        asked = [seen.path_qs.split("?")[0] for seen in realm_proxy.seen]
    finally:
        realm_proxy.reset()
        realm_proxy.wait_idle()
    assert error.retryable and "within 1 s" in str(error)
    assert held < HELD_AT_MOST
    assert asked[:1] == ["/token"]


def test_a_retry_after_the_server_asks_for_does_not_use_up_the_total_limit(
    plain_proxy: FaultProxy,
) -> None:
    """A 429's ``Retry-After`` (within ``max_retry_after``) is the server's rate limit, not
    its slowness: it is waited for even when longer than ``Timeouts.total``, and the
    exchange's limit moves on by as much; the next try gets the manifest. (It used to
    raise ``RateLimited`` at once: at the defaults, 60 s total, ``max_retry_after`` = 120
    could never take effect.)"""
    plain_proxy.reset(
        Fault(r"/manifests/", "respond", status=429, headers={"Retry-After": "2"}, times=1)
    )

    async def body(s: aiohttp.ClientSession) -> None:
        # A real 2 s wait against a 1 s limit: only a limit moved on by the wait lets the
        # second try happen.
        reg = client(s, plain_proxy, timeouts=Timeouts(total=1.0))
        m = await reg.get_manifest(OCI, "1.0")
        assert m.digest.startswith("sha256:")

    run(body)
    assert sum("/manifests/" in seen.path_qs for seen in plain_proxy.seen) == 2


def test_slow_loris_blob_is_abandoned_and_resumed_then_given_up(
    plain_proxy: FaultProxy, images: ImageSet
) -> None:
    """A blob sent one byte at a time (too fast for the read timeout, far below the rate
    floor): each try is abandoned after ``Timeouts.stall`` seconds with fewer than
    ``stall_bytes`` bytes and resumed from where it was; after the retry budget, a
    retryable ``TransientError`` (the transfer used to go on for as long as the server
    liked)."""
    digest = layer_of(images)
    plain_proxy.reset(Fault(r"GET .*/blobs/", "trickle", times=-1, delay=0.05))

    async def body(s: aiohttp.ClientSession) -> TransientError:
        with pytest.raises(TransientError) as exc:
            await read_blob(client(s, plain_proxy, timeouts=SLOW_LIMITS), OCI, digest)
        return exc.value

    error, held = timed(body)
    assert error.retryable and "fewer than 4096 bytes in 0.5 s" in str(error)
    assert held < HELD_AT_MOST
    assert len(blob_ranges(plain_proxy)) == FAST.attempts


def test_blob_stalled_once_is_resumed(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """A blob that trickles on the first try only: abandoned, resumed, and read whole."""
    digest = layer_of(images)
    plain_proxy.reset(Fault(r"GET .*/blobs/", "trickle", delay=0.05))
    data, held = timed(
        lambda s: read_blob(client(s, plain_proxy, timeouts=SLOW_LIMITS), OCI, digest)
    )
    assert data == images.blobs[digest].data
    assert len(blob_ranges(plain_proxy)) == 2
    assert held < HELD_AT_MOST


def test_crawl_goes_on_past_a_slow_loris_layer(plain_proxy: FaultProxy, images: ImageSet) -> None:
    """Through the crawler: a layer that trickles forever is a retryable ``transient_error``
    problem of its image, in bounded time, and the next image is scanned whole."""
    plain_proxy.reset(Fault(r"GET .*/blobs/" + layer_of(images), "trickle", times=-1, delay=0.05))
    started = time.monotonic()
    slow, other = scan(plain_proxy, ["test/oci:1.0", "test/docker:1.0"], timeouts=SLOW_LIMITS)
    assert time.monotonic() - started < 2 * HELD_AT_MOST
    assert [f.complete for f in slow.images] == [False]
    assert blob_problems(slow) == [("blob", "transient_error", True)]
    assert [f.complete for f in other.images] == [True]
    assert blob_problems(other) == []


def test_tls_registry_refuses_redirect_to_plain_http(
    tls_plain_proxy: FaultProxy, tls_registry: RegistryServer, images: ImageSet
) -> None:
    """An HTTPS registry redirecting a blob to ``http://`` is refused (``Unsupported``)
    unless ``insecure=True``."""
    tls_plain_proxy.reset(Fault(r"GET .*/blobs/", "redirect", times=-1))
    digest = layer_of(images)

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, tls_plain_proxy, ca_file=tls_registry.ca_file)
        with pytest.raises(Unsupported, match="plain HTTP"):
            await read_blob(reg, OCI, digest)
        insecure = client(s, tls_plain_proxy, insecure=True)
        assert await read_blob(insecure, OCI, digest) == images.blobs[digest].data

    run(body)


def test_password_never_sent_to_plain_http_token_realm(
    tls_token_proxy: FaultProxy, tls_registry: RegistryServer
) -> None:
    """An HTTPS registry whose challenge names an ``http://`` token realm: with credentials
    the client refuses (``AuthError``) rather than send the password in clear text."""
    creds = Credentials(username=USER, password=PASSWORD)

    async def body(s: aiohttp.ClientSession) -> None:
        reg = client(s, tls_token_proxy, ca_file=tls_registry.ca_file, credentials=creds)
        with pytest.raises(AuthError, match="not https"):
            await reg.get_manifest(OCI, "1.0")
        assert reg.tokens_fetched == 0

    run(body)
