"""``regsweep db update``: fetch advisory feeds over HTTP, then rebuild the index if they changed.

Each feed is cached beside the index (``<db>.feeds/``) with the validators the server gave
(``ETag``, ``Last-Modified``), so a second update sends ``If-None-Match`` /
``If-Modified-Since`` and a ``304`` costs no transfer. A URL may pin its content with a
``#sha256=<hex>`` fragment: a download that does not hash to it is rejected and the cached
copy stays. Downloads stream to a temporary file and are renamed into place only when whole
and verified; the index is rebuilt (atomically, see ``store.build``) only when some feed
changed or no index exists yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import msgspec

from regsweep.matcher.index.errors import AdvisoryIndexError

CHUNK = 1 << 16
#: A whole feed (osv.dev's largest all.zip is a few hundred MB) within half an hour.
TIMEOUT_S = 1800


class FeedError(AdvisoryIndexError):
    """A feed could not be fetched or did not verify."""


class FeedState(msgspec.Struct, kw_only=True):
    """What is remembered about one cached feed between updates."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    size: int = 0


class FeedResult(msgspec.Struct, kw_only=True):
    """The outcome of fetching one feed."""

    url: str
    path: Path
    changed: bool
    status: int
    size: int
    sha256: str


def split_pin(url: str) -> tuple[str, str | None]:
    """``URL#sha256=HEX`` → (URL, hex); a URL without a pin → (URL, None)."""
    base, _, frag = url.partition("#")
    if frag.startswith("sha256="):
        pin = frag[len("sha256=") :].lower()
        if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
            raise FeedError(f"{url}: sha256 pin must be 64 hex digits")
        return base, pin
    return base, None


def feed_dir(db_path: Path) -> Path:
    """Where the feeds of the index at ``db_path`` are cached."""
    return db_path.with_name(db_path.name + ".feeds")


def _cache_name(url: str) -> str:
    # A stable file name per URL, keeping the extension so format detection still works.
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(urlsplit(url).path).name or "feed"
    return f"{digest}-{name}"


async def fetch(session: aiohttp.ClientSession, url_with_pin: str, cache: Path) -> FeedResult:
    """Fetch one feed into ``cache`` (conditional GET; sha256 verified when pinned)."""
    url, pin = split_pin(url_with_pin)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / _cache_name(url)
    state_path = path.with_name(path.name + ".state")
    state = FeedState(url=url)
    if path.exists() and state_path.exists():
        try:
            state = msgspec.json.decode(state_path.read_bytes(), type=FeedState)
        except msgspec.DecodeError:
            state = FeedState(url=url)  # unreadable state: fetch unconditionally
    headers = {}
    if path.exists() and (pin is None or state.sha256 == pin):
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
    try:
        async with session.get(url, headers=headers) as resp:
            if resp.status == 304 and path.exists():
                return FeedResult(
                    url=url,
                    path=path,
                    changed=False,
                    status=304,
                    size=state.size,
                    sha256=state.sha256 or "",
                )
            if resp.status != 200:
                raise FeedError(f"{url}: HTTP {resp.status} {resp.reason}")
            tmp = path.with_name(path.name + f".part-{os.getpid()}")
            h = hashlib.sha256()
            size = 0
            try:
                with tmp.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                digest = h.hexdigest()
                if pin is not None and digest != pin:
                    raise FeedError(f"{url}: sha256 {digest} does not match the pinned {pin}")
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            new_state = FeedState(
                url=url,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                sha256=digest,
                size=size,
            )
    except (aiohttp.ClientError, TimeoutError) as err:
        raise FeedError(f"{url}: {type(err).__name__}: {err}") from err
    state_path.write_bytes(msgspec.json.encode(new_state))
    changed = digest != state.sha256
    return FeedResult(url=url, path=path, changed=changed, status=200, size=size, sha256=digest)


async def fetch_all(urls: Sequence[str], cache: Path) -> list[FeedResult]:
    """Fetch every feed concurrently with one session; the first failure is raised."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(fetch(session, u, cache) for u in urls)))
