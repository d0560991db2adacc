"""A feed mirror in osv.dev's layout, and a real HTTP server for it on 127.0.0.1.

``write_osv_mirror`` turns folders of OSV records (JSON, or YAML as pypa keeps PyPI's) into
what ``https://osv-vulnerabilities.storage.googleapis.com/`` serves: one ``<Ecosystem>/all.zip``
per ecosystem, each holding ``<ID>.json`` for every record that affects a package of that
ecosystem (a record affecting two ecosystems is in both zips, as on osv.dev), plus
``ecosystems.txt`` at the root. With ``replicas`` > 1 every record is written again under
renamed ids, for a corpus of osv.dev's size from the real records we have.

``write_cve_mirror`` adds the CVE feeds ``db update`` fetches by default at their paths
(NVD's ``/feeds/json/cve/2.0/nvdcve-2.0-<year>.json.zip``), made from NVD documents.

``MirrorServer`` serves such a directory with aiohttp's own static-file response (ETag,
Last-Modified, ``If-None-Match``, ``If-Modified-Since``, ``Range`` and ``If-Range`` as aiohttp
implements them, nothing re-implemented here), records every request, and can be told to
fail one path: a status, or a body cut off mid-way.

Used by the ``db update`` tests and by ``benchmarks.bench_feeds``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import threading
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from regsweep.matcher.advisories._yaml import load_yaml
from regsweep.matcher.index import catalog

_JSON = msgspec.json.Decoder()
_ENC = msgspec.json.Encoder()


def _records(root: Path) -> Iterator[dict[str, Any]]:
    """Every OSV record under ``root`` (one record per file), in sorted path order."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".json":
            doc = _JSON.decode(path.read_bytes())
        elif suffix in (".yaml", ".yml"):
            doc = load_yaml(path.read_bytes())
        else:
            continue  # README, LICENSE, SOURCE
        if isinstance(doc, dict) and "id" in doc and "affected" in doc:
            yield doc


def ecosystems_of(record: dict[str, Any]) -> set[str]:
    """The osv.dev export folders a record is in: its affected ecosystems without the
    ``:<release>`` suffix (osv.dev exports only the main ecosystem)."""
    out = set()
    for aff in record.get("affected") or ():
        eco = ((aff or {}).get("package") or {}).get("ecosystem")
        if isinstance(eco, str) and eco:
            out.add(eco.split(":", 1)[0])
    return out


def _rename(record: dict[str, Any], replica: int) -> dict[str, Any]:
    # A replica is the same record under other ids: its own id, and its own aliases and
    # related ids, so that the alias table grows as it would with distinct real records.
    if replica == 0:
        return record
    tag = f"-R{replica}"
    out = dict(record)
    out["id"] = record["id"] + tag
    for key in ("aliases", "related"):
        ids = record.get(key)
        if isinstance(ids, list):
            out[key] = [i + tag if isinstance(i, str) else i for i in ids]
    return out


def write_osv_mirror(
    root: Path,
    sources: Iterable[Path],
    *,
    replicas: int = 1,
    only: Iterable[str] | None = None,
    empty: Iterable[str] = (),
) -> dict[str, int]:
    """Write ``root/<Ecosystem>/all.zip`` for the records under ``sources``.

    ``only`` keeps only these ecosystems; ``empty`` adds an all.zip with no record for each
    named ecosystem that has none (a mirror of a catalog feed we hold no sample of). Returns
    the number of records per ecosystem zip.
    """
    keep = None if only is None else set(only)
    root.mkdir(parents=True, exist_ok=True)
    zips: dict[str, zipfile.ZipFile] = {}
    counts: dict[str, int] = {}
    names: dict[str, set[str]] = {}
    try:
        for src in sources:
            for record in _records(src):
                ecosystems = sorted(e for e in ecosystems_of(record) if keep is None or e in keep)
                for replica in range(replicas):
                    renamed = _rename(record, replica)
                    data = _ENC.encode(renamed)
                    for eco in ecosystems:
                        zf = zips.get(eco)
                        if zf is None:
                            (root / eco).mkdir(exist_ok=True)
                            zf = zips[eco] = zipfile.ZipFile(
                                root / eco / "all.zip",
                                "w",
                                compression=zipfile.ZIP_DEFLATED,
                            )
                        name = f"{renamed['id']}.json"
                        if name in names.setdefault(eco, set()):
                            # osv.dev's zips name each record once; a second copy would
                            # be a duplicate member that ingest reads twice.
                            raise ValueError(f"{eco}: two records with the id {renamed['id']}")
                        names[eco].add(name)
                        zf.writestr(name, data)
                        counts[eco] = counts.get(eco, 0) + 1
        for eco in empty:
            if eco not in zips:
                (root / eco).mkdir(exist_ok=True)
                zips[eco] = zipfile.ZipFile(root / eco / "all.zip", "w")
                counts[eco] = 0
    finally:
        for zf in zips.values():
            zf.close()
    (root / "ecosystems.txt").write_text("".join(f"{e}\n" for e in sorted(zips)))
    return counts


def _nvd_items(sources: Iterable[Path]) -> Iterator[dict[str, Any]]:
    # The ``vulnerabilities`` items of NVD documents: a feed's, or a lone CVE object as one.
    for src in sources:
        files = [src] if src.is_file() else sorted(src.rglob("*.json"))
        for path in files:
            doc = _JSON.decode(path.read_bytes())
            if isinstance(doc, dict) and "vulnerabilities" in doc:
                yield from doc["vulnerabilities"]
            elif isinstance(doc, dict) and "sourceIdentifier" in doc:
                yield {"cve": doc}


def write_cve_mirror(root: Path, sources: Iterable[Path] = ()) -> list[Path]:
    """Write every CVE feed of ``catalog.select()`` at its URL's path under ``root``: each
    NVD year a zip of ``nvdcve-2.0-<year>.json`` holding the records of ``sources``' NVD
    documents whose CVE id is of that year (as NVD splits them), empty for a year with
    none. Returns the files written."""
    by_year: dict[str, list[dict[str, Any]]] = {}
    for item in _nvd_items(sources):
        by_year.setdefault(item["cve"]["id"].split("-")[1], []).append(item)
    written = []
    for feed in catalog.select():
        if not isinstance(feed, catalog.CveFeed):
            continue
        items = by_year.get(feed.name.removeprefix("NVD-"), [])
        doc = {
            "resultsPerPage": len(items),
            "startIndex": 0,
            "totalResults": len(items),
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": "2026-08-01T00:00:00.000",
            "vulnerabilities": items,
        }
        target = root / urlsplit(feed.url).path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(target.name.removesuffix(".zip"), _ENC.encode(doc))
        written.append(target)
    return written


class Fault(msgspec.Struct, kw_only=True):
    """How the server misbehaves on one path: a status instead of the file; or the file's
    response (status, headers and all) with only its first ``cut_at`` body bytes, then the
    connection closed; or ``body`` sent instead of the file, under the file's own
    ``X-Goog-Hash`` (bytes damaged on the way). ``times`` is how many requests it applies
    to (then the file is served)."""

    status: int | None = None
    cut_at: int | None = None
    body: bytes | None = None
    times: int = 1


class _CutFileResponse(web.FileResponse):
    # aiohttp's own file response (its ETag, Last-Modified, Content-Length, Range and
    # If-Range handling), whose body stops after ``cut_at`` bytes: a dropped connection.
    def __init__(self, path: Path, cut_at: int) -> None:
        super().__init__(path)
        self._cut_at = cut_at

    async def _sendfile(self, request: Any, fobj: Any, offset: int, count: int) -> Any:
        writer = await super()._sendfile(request, fobj, offset, min(count, self._cut_at))
        if request.transport is not None:
            request.transport.close()
        return writer


def goog_hash(data: bytes) -> str:
    """The ``X-Goog-Hash`` value Google Cloud Storage sends for an object (its MD5 part)."""
    return "md5=" + base64.b64encode(hashlib.md5(data).digest()).decode()


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One request the server answered."""

    path: str
    raw_path: str
    headers: dict[str, str]
    status: int


class MirrorServer:
    """A mirror of a feed directory on ``http://127.0.0.1:<port>/``, in a thread of its own
    (the code under test runs its own event loop)."""

    def __init__(self, root: Path, *, with_goog_hash: bool = False) -> None:
        self.root = root
        #: Send ``X-Goog-Hash`` with every file, as osv.dev's bucket does.
        self.with_goog_hash = with_goog_hash
        self.requests: list[Request] = []
        self.faults: dict[str, Fault] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        """The mirror's base URL, for ``--mirror``."""
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str) -> str:
        """The URL of ``path`` (``/Debian/all.zip``) on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, data: bytes) -> Path:
        """Write ``data`` as the file served at ``path``; a new mtime, so a new ETag."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target = (self.root / request.path.lstrip("/")).resolve()
        if not target.is_file() or self.root.resolve() not in target.parents:
            return self._log(request, web.Response(status=404))
        fault = self.faults.get(request.path)
        if fault is not None and fault.times > 0:
            fault.times -= 1
            if fault.status is not None:
                return self._log(request, web.Response(status=fault.status, text="fault"))
            if fault.body is not None:
                real = goog_hash(target.read_bytes())
                bad = web.Response(body=fault.body, headers={"X-Goog-Hash": real})
                return self._log(request, bad)
            assert fault.cut_at is not None
            return _CutFileResponse(target, fault.cut_at)
        resp = web.FileResponse(target)
        if self.with_goog_hash:
            resp.headers["X-Goog-Hash"] = goog_hash(target.read_bytes())
        return resp

    def _log(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        self.requests.append(
            Request(
                path=request.path,
                raw_path=request.raw_path,
                headers=dict(request.headers),
                status=resp.status,
            )
        )
        return resp

    async def _on_prepare(self, request: web.Request, resp: web.StreamResponse) -> None:
        # FileResponse decides its status (200, 206, 304, 412, 416) as it prepares.
        if isinstance(resp, web.FileResponse):
            self._log(request, resp)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.on_response_prepare.append(self._on_prepare)
        app.router.add_get("/{name:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
