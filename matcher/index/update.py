"""``regsweep db update``: fetch advisory feeds as a package manager does, then rebuild the
index once if any of them changed.

Each feed is cached beside the index (``<db>.feeds/``) with the validators the server gave
(``ETag``, ``Last-Modified``), so the next update sends ``If-None-Match`` /
``If-Modified-Since`` and a ``304`` costs no transfer. Downloads run in parallel
(``PARALLEL`` at a time) and stream to ``<feed>.partial``; one that is cut off is kept, with
the validators of the response it came from, and the next update asks for the rest
(``Range`` with ``If-Range``: a server whose file changed meanwhile sends the whole new file
instead). A download replaces the cached copy only when it is whole and verified:

- its length is the one the server announced;
- it hashes to the ``#sha256=<hex>`` pin of its URL, when there is one;
- it hashes to the MD5 of Google Cloud Storage's ``X-Goog-Hash`` header, when the server
  sends one (osv.dev's bucket does);
- a zip's central directory reads and every member inflates to its CRC-32; a JSON feed
  parses.

A feed that fails in any way (HTTP error, cut off, corrupt) keeps its previous copy, which
the rebuild uses; the failure is written into its state file, and ``feeds_report`` shows it
(``db info``). A previous copy that does not match the feed's pin (a pin given or changed
since it was fetched) is not used: the feed then has no copy, and an index built with that
copy is rebuilt without it. Nothing here builds the index: ``needs_rebuild`` says whether
one is due, and ``write_manifest`` records which copies the new index was built from.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import fcntl
import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import aiohttp
import msgspec

from regsweep.matcher.index.catalog import CatalogError, Feed, check_url, mirrored
from regsweep.matcher.index.errors import AdvisoryIndexError

__all__ = [
    "PARALLEL",
    "FeedError",
    "FeedReport",
    "FeedResult",
    "FeedState",
    "Outcome",
    "Progress",
    "Target",
    "UpdateLocked",
    "feed_dir",
    "feeds_report",
    "fetch",
    "fetch_all",
    "needs_rebuild",
    "split_pin",
    "target_of_feed",
    "target_of_url",
    "update_lock",
    "verify_file",
    "write_manifest",
]

CHUNK = 1 << 16
#: Feeds downloaded at once: enough to keep a link busy while one server is slow to start
#: sending, few enough not to hammer one host (every catalog feed is on the same one).
PARALLEL = 4
#: A whole feed (osv.dev's largest all.zip is a few hundred MB) within half an hour.
TIMEOUT_S = 1800
_MANIFEST = "index-feeds.json"
_LOCK = ".update-lock"
# Errors of a read from a zip that is not whole or not a zip; the first three are what
# zipfile raises for a bad archive or a CRC mismatch, the rest for a damaged deflate stream.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_S = TypeVar("_S", bound=msgspec.Struct)


class FeedError(AdvisoryIndexError):
    """A feed could not be fetched or did not verify."""


class UpdateLocked(FeedError):
    """Another ``db update`` of the same index is running."""


class Outcome(enum.StrEnum):
    """What became of one feed in an update."""

    DOWNLOADED = "downloaded"
    RESUMED = "resumed"
    NOT_MODIFIED = "not modified"
    FAILED = "failed"


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One feed to fetch: the name it is reported by, its URL, an optional sha256 pin, and
    the file it is cached as."""

    name: str
    url: str
    pin: str | None = None
    cache_name: str


class FeedState(msgspec.Struct, kw_only=True):
    """What is remembered about one cached feed between updates (``<feed>.state``)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    #: Of the cached copy; ``None`` while there is none.
    sha256: str | None = None
    size: int = 0
    #: When the cached copy was downloaded, and when the server last confirmed it (200/304).
    fetched_at: datetime | None = None
    checked_at: datetime | None = None
    #: The last attempt's failure, cleared by the next success.
    failed_at: datetime | None = None
    error: str | None = None


class _PartialState(msgspec.Struct, kw_only=True):
    # What a ``.partial`` file is a prefix of: the response it came from, by its validators.
    url: str
    etag: str | None = None
    last_modified: str | None = None
    md5: str | None = None


class FeedResult(msgspec.Struct, kw_only=True):
    """The outcome of fetching one feed."""

    name: str
    url: str
    outcome: Outcome
    #: The cached copy an index can be built from (the old one after a failure), if any.
    path: Path | None
    #: Whether that copy differs from the one cached before this update.
    changed: bool
    #: Its size and hash (``0``/``""`` without one).
    size: int = 0
    sha256: str = ""
    #: Bytes this update transferred, and where a resumed download picked up.
    transferred: int = 0
    resumed_at: int = 0
    error: str | None = None
    #: When the copy in ``path`` was downloaded.
    fetched_at: datetime | None = None
    #: A cached copy there is does not match the target's pin, so it is not used: ``path``
    #: is ``None`` and the index is built without this feed.
    ruled_out: bool = False


class Progress(Protocol):
    """Where a download reports its bytes (a progress bar on a terminal, or nothing)."""

    def begin(self, name: str, total: int | None, done: int) -> None:
        """A transfer of ``name`` starts, ``done`` bytes of ``total`` already there."""

    def advance(self, name: str, n: int) -> None:
        """``n`` more bytes of ``name`` arrived."""

    def end(self, name: str) -> None:
        """``name`` is finished with (whatever the outcome)."""


class _NoProgress:
    def begin(self, name: str, total: int | None, done: int) -> None:
        pass

    def advance(self, name: str, n: int) -> None:
        pass

    def end(self, name: str) -> None:
        pass


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


def target_of_url(url_with_pin: str) -> Target:
    """A ``--from`` URL as a target, named by its URL and cached under a name of its own;
    ``FeedError`` for a URL that cannot be fetched (not http(s), no host, malformed)."""
    try:
        # The whole argument first: credentials are refused before anything else is said
        # about it (a bad pin too), and never echoed.
        check_url(url_with_pin)
        url, pin = split_pin(url_with_pin)
        parts = check_url(url)
    except CatalogError as err:
        raise FeedError(str(err)) from None
    # A stable file name per URL, keeping the extension so format detection still works.
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(parts.path).name or "feed"
    return Target(name=url, url=url, pin=pin, cache_name=f"{digest}-{name}")


def target_of_feed(feed: Feed, mirror: str | None = None) -> Target:
    """A catalog feed as a target, on ``mirror`` when one is given (same cache file)."""
    url = feed.url if mirror is None else mirrored(feed.url, mirror)
    return Target(name=feed.name, url=url, cache_name=feed.cache_name)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_atomic(path: Path, data: bytes) -> None:
    # State files are replaced whole: a crash leaves the old one or the new one.
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        # A full disk, a path in the way: the half-written file is nobody's.
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path, typ: type[_S]) -> _S | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=typ)
    except (OSError, msgspec.DecodeError):
        return None  # absent or unreadable: as if never written


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".state")


def _read_state(path: Path, url: str) -> FeedState:
    state = _read(_state_path(path), FeedState)
    if state is not None and (state.sha256 is None or path.is_file()):
        return state
    if path.is_file():
        # A cached copy without a readable state (written by an older regsweep, or the
        # state lost): still a copy to fall back on; it is fetched unconditionally.
        data_hash, size = _hash_file(path)
        return FeedState(url=url, sha256=data_hash, size=size)
    return FeedState(url=url)


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _hash_file(path: Path, *hashes: _Hasher) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            for other in hashes:
                other.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _goog_md5(headers: Mapping[str, str]) -> str | None:
    # ``X-Goog-Hash: crc32c=<b64>,md5=<b64>``: the MD5 of the whole object (absent for
    # composite objects, which have only a CRC32C, which the standard library cannot compute).
    for part in headers.get("X-Goog-Hash", "").split(","):
        algo, _, value = part.strip().partition("=")
        if algo == "md5" and value:
            try:
                return base64.b64decode(value, validate=True).hex()
            except ValueError:
                return None
    return None


def verify_file(path: Path, name: str) -> None:
    """Check that a downloaded file is whole in its own format (``name`` says which).

    A zip: its central directory reads and every member inflates to its CRC-32 (osv.dev's
    zips are a few hundred MB at most, read once more here, member by member). A JSON
    document: it parses. Other files are only checked by length and hash.
    """
    suffix = name.lower().rsplit(".", 1)[-1]
    if suffix == "zip":
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    with zf.open(info) as member:
                        while member.read(1 << 20):
                            pass
        except _ZIP_ERRORS as exc:
            raise FeedError(f"not a whole zip archive: {exc}") from None
    elif suffix == "json":
        try:
            msgspec.json.decode(path.read_bytes())
        except msgspec.DecodeError as exc:
            raise FeedError(f"not a JSON document: {exc}") from None


@contextlib.contextmanager
def update_lock(cache: Path) -> Iterator[None]:
    """Hold the feed cache for one update; a second update of the same index fails at once
    (``UpdateLocked``) instead of writing the same partial files. ``FeedError`` when the
    cache cannot be created (a ``--db`` under a path that cannot exist, a full disk)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise FeedError(f"cannot use {cache} as the feed cache: {err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateLocked(f"another db update using {cache} is running") from None
        yield
    finally:
        os.close(fd)


class _Restart(Exception):
    # The server would not continue the partial file (416, or another range): start over.
    pass


def _same_version(p: _PartialState, headers: Mapping[str, str]) -> bool:
    # Whether a 206 comes from the file the partial one is a prefix of, by the validators
    # both responses carry.
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    if p.etag and etag:
        return p.etag == etag
    if p.last_modified and modified:
        return p.last_modified == modified
    return True  # nothing to compare: If-Range was the only check


def _if_range(p: _PartialState) -> str | None:
    # If-Range needs a strong validator: a weak ETag (W/"…") may stand for other bytes.
    if p.etag and not p.etag.startswith("W/"):
        return p.etag
    return p.last_modified


async def fetch(
    session: aiohttp.ClientSession,
    target: Target,
    cache: Path,
    progress: Progress | None = None,
) -> FeedResult:
    """Fetch one feed into ``cache``. Never raises for the feed's own failures: they are a
    ``FAILED`` result that keeps the previous copy (and are written into its state)."""
    progress = progress or _NoProgress()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / target.cache_name
    state = _read_state(path, target.url)
    try:
        for _attempt in range(2):
            try:
                return await _fetch(session, target, path, state, progress)
            except _Restart:
                continue
        raise FeedError(f"{target.url}: the server would not resume or restart the download")
    except FeedError as err:
        error = str(err)
    except (aiohttp.ClientError, TimeoutError) as err:
        error = f"{target.url}: {type(err).__name__}: {err}".rstrip(": ")
    except OSError as err:
        # The local side: a full disk, an unwritable cache. The cached copy is untouched
        # (a download only ever replaces it whole).
        error = f"{target.url}: {err}"
    finally:
        progress.end(target.name)
    # The URL tried now, not the stored one: a feed's cache is shared by every mirror of it,
    # and a state written by an older regsweep may hold a URL with credentials in it.
    failed = msgspec.structs.replace(state, url=target.url, failed_at=_now(), error=error)
    with contextlib.suppress(OSError):
        # Best effort: the failure is reported on stderr whether or not it can be recorded.
        _write_atomic(_state_path(path), msgspec.json.encode(failed))
    # A copy that does not match the pin is not one to build from: it is reported as no
    # copy at all (no hash either), so that an index built from it is rebuilt without it.
    has_copy = state.sha256 is not None and (target.pin is None or state.sha256 == target.pin)
    return FeedResult(
        name=target.name,
        url=target.url,
        outcome=Outcome.FAILED,
        path=path if has_copy else None,
        changed=False,
        size=state.size if has_copy else 0,
        sha256=(state.sha256 or "") if has_copy else "",
        error=error,
        fetched_at=state.fetched_at if has_copy else None,
        ruled_out=state.sha256 is not None and not has_copy,
    )


async def _fetch(
    session: aiohttp.ClientSession,
    target: Target,
    path: Path,
    state: FeedState,
    progress: Progress,
) -> FeedResult:
    url = target.url
    partial = path.with_name(path.name + ".partial")
    pstate_path = _state_path(partial)
    headers: dict[str, str] = {}
    # A cached copy that does not match the pin is no copy to revalidate.
    have = state.sha256 is not None and (target.pin is None or state.sha256 == target.pin)
    if have:
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
    pstate = _read(pstate_path, _PartialState) if partial.is_file() else None
    offset = 0
    if pstate is not None and pstate.url == url and _if_range(pstate):
        offset = partial.stat().st_size
        if offset:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = _if_range(pstate) or ""
    async with session.get(url, headers=headers) as resp:
        if resp.status == 304 and have:
            # The server's file is the cached one: a partial of another version is useless.
            partial.unlink(missing_ok=True)
            pstate_path.unlink(missing_ok=True)
            checked = msgspec.structs.replace(
                state, url=url, checked_at=_now(), failed_at=None, error=None
            )
            _write_atomic(_state_path(path), msgspec.json.encode(checked))
            return FeedResult(
                name=target.name,
                url=url,
                outcome=Outcome.NOT_MODIFIED,
                path=path,
                changed=False,
                size=state.size,
                sha256=state.sha256 or "",
                fetched_at=state.fetched_at,
            )
        if offset and resp.status == 416:
            partial.unlink(missing_ok=True)
            raise _Restart
        if offset and resp.status == 206:
            m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
            if m is None or int(m.group(1)) != offset:
                partial.unlink(missing_ok=True)
                raise _Restart
            assert pstate is not None
            if not _same_version(pstate, resp.headers):
                # A server that ignores If-Range (aiohttp's static files compare only dates
                # there) sends the rest of *another* file: the validators tell.
                partial.unlink(missing_ok=True)
                raise _Restart
            total = None if m.group(3) == "*" else int(m.group(3))
            md5_expected = _goog_md5(resp.headers) or pstate.md5
        elif resp.status == 200:
            offset = 0
            total = resp.content_length
            md5_expected = _goog_md5(resp.headers)
            pstate = _PartialState(
                url=url,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                md5=md5_expected,
            )
            # Written before the body: if the transfer is cut off, the next update knows
            # which version of the file the partial one is a prefix of.
            _write_atomic(pstate_path, msgspec.json.encode(pstate))
        else:
            raise FeedError(f"{url}: HTTP {resp.status} {resp.reason}")
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        if offset:
            # The whole file is hashed: the bytes already on disk first.
            await asyncio.to_thread(_hash_file, partial, sha, md5)
        progress.begin(target.name, total, offset)
        received = 0
        try:
            with partial.open("ab" if offset else "wb") as out:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    progress.advance(target.name, len(chunk))
        except (aiohttp.ClientError, TimeoutError) as err:
            got = offset + received
            of = f" of {total}" if total is not None else ""
            if _if_range(pstate) is None:
                partial.unlink(missing_ok=True)
                resume = "the server gave no validator to resume with"
            else:
                resume = "the next update resumes it"
            raise FeedError(
                f"{url}: download cut off after {got}{of} bytes ({type(err).__name__}); {resume}"
            ) from None
    size = offset + received
    try:
        if total is not None and size != total:
            raise FeedError(f"{url}: got {size} bytes, the server announced {total}")
        digest = sha.hexdigest()
        if target.pin is not None and digest != target.pin:
            raise FeedError(f"{url}: sha256 {digest} does not match the pinned {target.pin}")
        if md5_expected is not None and md5.hexdigest() != md5_expected:
            raise FeedError(
                f"{url}: md5 {md5.hexdigest()} does not match the server's X-Goog-Hash "
                f"md5 {md5_expected}"
            )
        try:
            await asyncio.to_thread(verify_file, partial, target.cache_name)
        except FeedError as err:
            raise FeedError(f"{url}: {err}") from None
    except FeedError:
        # Whole but wrong: nothing to resume; the cached copy stays.
        partial.unlink(missing_ok=True)
        pstate_path.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    pstate_path.unlink(missing_ok=True)
    now = _now()
    new_state = FeedState(
        url=url,
        etag=pstate.etag,
        last_modified=pstate.last_modified,
        sha256=digest,
        size=size,
        fetched_at=now,
        checked_at=now,
    )
    _write_atomic(_state_path(path), msgspec.json.encode(new_state))
    return FeedResult(
        name=target.name,
        url=url,
        outcome=Outcome.RESUMED if offset else Outcome.DOWNLOADED,
        path=path,
        changed=digest != state.sha256,
        size=size,
        sha256=digest,
        transferred=received,
        resumed_at=offset,
        fetched_at=now,
    )


async def fetch_all(
    targets: Sequence[Target],
    cache: Path,
    progress: Progress | None = None,
    parallel: int = PARALLEL,
) -> list[FeedResult]:
    """Fetch every target, ``parallel`` at a time with one session; one result per target,
    in order. The caller holds ``update_lock(cache)``."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S, sock_connect=30, sock_read=60)
    gate = asyncio.Semaphore(max(1, parallel))

    async def one(session: aiohttp.ClientSession, target: Target) -> FeedResult:
        async with gate:
            return await fetch(session, target, cache, progress)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(one(session, t) for t in targets)))


class _UsedFeed(msgspec.Struct, kw_only=True):
    # One feed of an index build: its copy (sha256), or None when it had none to give.
    name: str
    url: str
    cache_name: str
    sha256: str | None


class _Manifest(msgspec.Struct, kw_only=True):
    # Which feed copies the index file ``index`` (its fingerprint) was made of.
    index: tuple[int, int, int]
    feeds: list[_UsedFeed]


def _fingerprint(db: Path) -> tuple[int, int, int] | None:
    # The index file itself, not its build time: a build replaces the file (a new inode,
    # size and mtime), so a ``db build`` run since the update, even within the same
    # second, is told apart from the index the manifest describes.
    try:
        st = db.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _manifest_of(db: Path) -> _Manifest | None:
    manifest = _read(feed_dir(db) / _MANIFEST, _Manifest)
    fingerprint = _fingerprint(db)
    if manifest is None or fingerprint is None or manifest.index != fingerprint:
        return None
    return manifest


def _used(targets: Sequence[Target], results: Sequence[FeedResult]) -> list[_UsedFeed]:
    return [
        _UsedFeed(name=t.name, url=t.url, cache_name=t.cache_name, sha256=r.sha256 or None)
        for t, r in zip(targets, results, strict=True)
    ]


def needs_rebuild(db: Path, targets: Sequence[Target], results: Sequence[FeedResult]) -> bool:
    """Whether the index at ``db`` must be rebuilt from these results: there is none, a feed
    changed, or it was not built from exactly these feed copies (another ``--ecosystem``
    set, a ``db build`` since, a feed that had no copy last time)."""
    if any(r.changed for r in results):
        return True
    manifest = _manifest_of(db)
    if manifest is None:
        return True
    return [(f.cache_name, f.sha256) for f in manifest.feeds] != [
        (f.cache_name, f.sha256) for f in _used(targets, results)
    ]


def write_manifest(db: Path, targets: Sequence[Target], results: Sequence[FeedResult]) -> None:
    """Record that the index just built at ``db`` was made of these feed copies.

    ``FeedError`` if the record cannot be written (a full disk): the index stays, and as
    no record describes it, the next update rebuilds it.
    """
    fingerprint = _fingerprint(db)
    if fingerprint is None:
        raise FeedError(f"{db}: no index to describe")
    manifest = _Manifest(index=fingerprint, feeds=_used(targets, results))
    try:
        _write_atomic(feed_dir(db) / _MANIFEST, msgspec.json.encode(manifest))
    except OSError as err:
        raise FeedError(
            f"built {db}, but cannot record which feed copies it holds ({err}): "
            "the next db update rebuilds it"
        ) from None


class FeedReport(msgspec.Struct, kw_only=True):
    """One feed of an index built by ``db update``, as ``db info`` shows it."""

    name: str
    url: str
    #: Whether the index holds this feed's data (it had a copy at the build).
    in_index: bool
    size: int = 0
    sha256: str | None = None
    fetched_at: datetime | None = None
    checked_at: datetime | None = None
    #: The last update's failure, if the last update of this feed failed.
    failed_at: datetime | None = None
    error: str | None = None


def feeds_report(db: Path) -> list[FeedReport] | None:
    """The feeds the index at ``db`` was made of, with what the last update of each said;
    ``None`` if that index was not built by ``db update``."""
    cache = feed_dir(db)
    manifest = _manifest_of(db)
    if manifest is None:
        return None
    out = []
    for used in manifest.feeds:
        st = _read(_state_path(cache / used.cache_name), FeedState) or FeedState(url=used.url)
        # The copy the index holds is the manifest's; the state may describe a newer one
        # only if a later update downloaded it and its rebuild did not happen (a failed
        # build), in which case its dates are not the index's.
        same = st.sha256 == used.sha256
        out.append(
            FeedReport(
                name=used.name,
                url=used.url,
                in_index=used.sha256 is not None,
                size=st.size if same else 0,
                sha256=used.sha256,
                fetched_at=st.fetched_at if same else None,
                checked_at=st.checked_at if same else None,
                failed_at=st.failed_at,
                error=st.error,
            )
        )
    return out
