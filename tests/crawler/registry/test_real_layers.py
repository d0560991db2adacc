"""Real Debian images at registry scale: each layer fetched once, no false errors.

A minbase bookworm root filesystem built by mmdebstrap (``tests.realimage``, cached between
runs) is the base layer of every image in a registry of its own: 8 repositories, 3 tags each,
every tag with its own config (so every manifest digest differs), some tags OCI indexes,
two small application layers on top (a user added, ``/etc/motd`` whited out, Python and npm
packages). ``regsweep crawl`` runs as a user runs it, with ``--concurrency 8``, through the
fault proxy, whose request log is the count of blob GETs the registry served.
"""

from __future__ import annotations

import collections
import gzip
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from regsweep.crawler.analyze import default_analyzers
from regsweep.crawler.state import StateStore, analyzer_set_hash
from tests.crawler.registry.conftest import RegistryServer, _proxy, _start, _stop
from tests.crawler.registry.faults import BlobSink, FaultProxy, LoopThread
from tests.crawler.registry.images import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Doc,
    ImageSet,
    canonical,
    push,
    sha256,
)
from tests.crawler.registry.test_crawl import Record, blob_gets, run
from tests.realimage import CannotBuild, debian_rootfs, dpkg_installed, gzip_layer, tar_layer

pytestmark = pytest.mark.skipif(
    shutil.which("docker-registry") is None, reason="docker-registry is not installed"
)
REPOS = 8
TAGS = ("v1", "v2", "v3")


class Real:
    """The real image set: blobs, which are layers, and the rootfs they came from."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        path, digest, diff_id = gzip_layer(rootfs)
        base = Blob(path.read_bytes())
        assert base.digest == digest
        passwd = _member(rootfs, "./etc/passwd") + b"app:x:10001:10001::/app:/usr/sbin/nologin\n"
        app_tar = tar_layer(
            {
                "etc/passwd": passwd,
                "usr/local/lib/python3.11/site-packages/requests-2.25.0.dist-info/METADATA": (
                    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\n\n"
                ),
                "app/node_modules/lodash/package.json": b'{"name":"lodash","version":"4.17.15"}',
                "app/run": b"#!/bin/sh\nexec python3 -m app\n",
                "usr/local/bin/app": "/app/run",
            },
            whiteouts=("etc/motd",),
        )
        py_tar = tar_layer(
            {
                "usr/local/lib/python3.11/site-packages/urllib3-1.26.4.dist-info/METADATA": (
                    b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.4\n\n"
                )
            }
        )
        self.layers = {"base": (base, diff_id)}
        for name, raw in (("app", app_tar), ("py", py_tar)):
            self.layers[name] = (Blob(_gzip(raw)), sha256(raw))
        self.stacks = {"v1": ["base"], "v2": ["base", "app"], "v3": ["base", "py"]}

    @property
    def layer_digests(self) -> set[str]:
        """Digests of the distinct layer blobs."""
        return {blob.digest for blob, _ in self.layers.values()}

    def images(self, prefix: str) -> ImageSet:
        """``REPOS`` repositories named ``prefix/rNN``, one image per tag (an OCI index for
        ``v2`` of every third repository), each with a config of its own."""
        out = ImageSet()
        for i in range(REPOS):
            repo = f"{prefix}/r{i:02d}"
            out.tags[repo] = {}
            for tag, stack in self.stacks.items():
                layers = [self.layers[n] for n in stack]
                config = canonical(
                    {
                        "architecture": "amd64",
                        "os": "linux",
                        "config": {"User": "app" if "app" in stack else "", "Cmd": ["bash"],
                                   "Labels": {"build": f"{repo}:{tag}"}},
                        "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                    }
                )  # fmt: skip
                out.add_blob(repo, Blob(config))
                for blob, _ in layers:
                    out.add_blob(repo, blob)
                manifest = Doc(
                    canonical(
                        {
                            "schemaVersion": 2,
                            "mediaType": OCI_MANIFEST,
                            "config": _desc(OCI_CONFIG, config),
                            "layers": [_desc(OCI_LAYER, b.data) for b, _ in layers],
                        }
                    ),
                    OCI_MANIFEST,
                )
                if tag == "v2" and i % 3 == 0:
                    plat = {"architecture": "amd64", "os": "linux"}
                    index = canonical(
                        {
                            "schemaVersion": 2,
                            "mediaType": OCI_INDEX,
                            "manifests": [_desc(OCI_MANIFEST, manifest.data, platform=plat)],
                        }
                    )
                    out.children.setdefault(repo, []).append(manifest)
                    out.tags[repo][tag] = Doc(index, OCI_INDEX)
                else:
                    out.tags[repo][tag] = manifest
        return out


def _desc(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def _gzip(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _member(tar: Path, name: str) -> bytes:
    with tarfile.open(tar) as tf:
        fh = tf.extractfile(name)
        assert fh is not None
        return fh.read()


@pytest.fixture(scope="module")
def real() -> Real:
    """The real image set (the rootfs is built on first use and cached)."""
    try:
        return Real(debian_rootfs("amd64"))
    except CannotBuild as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def real_registry(registry_run_dir: Path, real: Real) -> Iterator[RegistryServer]:
    """A registry of its own (its own storage) holding the first real image set."""
    server = _start(registry_run_dir / "real", registry_run_dir / "real-storage", "real")
    try:
        push(server.url, real.images("real"))
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def real_proxy(
    loop_thread: LoopThread, real_registry: RegistryServer, blob_sink: BlobSink
) -> Iterator[FaultProxy]:
    """The fault proxy in front of it: its request log counts the blob GETs."""
    yield from _proxy(loop_thread, real_registry, blob_sink)


def _crawl(db: Path, proxy: FaultProxy, state: Path, *args: str) -> list[Record]:
    proxy.wait_idle()
    proxy.reset()
    out = state.parent / f"out-{len(list(state.parent.glob('out-*')))}.ndjson"
    code, _, err = run(
        db, "crawl", proxy.url, "--state", str(state), "-o", str(out), "--concurrency", "8", *args
    )
    assert code == 0, err
    return [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]


def test_real_images_crawl_fetches_each_layer_once_and_reports_no_error(
    db: Path, real: Real, real_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A cold crawl of 24 tags over 3 distinct layers (a real 30 MB rootfs among them), 8
    requests at once: each layer blob is fetched exactly once and each config once; no
    ``error`` record (usrmerge links and all); every image built on the rootfs reports
    exactly the packages ``dpkg-query`` reads in its status file, with their sources; the
    app layers' packages are there, each from the layer that added it; what the store keeps
    for the 30 MB layer is a few hundred KiB at most."""
    state = tmp_path / "state.lmdb"
    records = _crawl(db, real_proxy, state)
    gets = collections.Counter(blob_gets(real_proxy))
    layers = {d: n for d, n in gets.items() if d in real.layer_digests}
    assert layers == dict.fromkeys(real.layer_digests, 1)
    assert all(n == 1 for n in gets.values())
    assert [r for r in records if r["kind"] == "error"] == []
    summary = records[-1]
    assert summary["images"] == REPOS * len(TAGS)
    assert summary["layers"]["fetched"] == len(real.layers)  # type: ignore[index]
    assert summary["errors"] == 0

    expected = dpkg_installed(real.rootfs)
    assert len(expected) > 80
    code, packages, err = run(
        db, "crawl", real_proxy.url, "--state", str(state), "--packages", "--repo", "real/r01"
    )
    assert code == 0, err
    base, app = real.layers["base"][0].digest, real.layers["app"][0].digest
    by_tag: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    for r in packages:
        if r["kind"] == "package":
            by_tag[str(r["image"]["tag"])].append(r["package"])  # type: ignore[index]
    for tag in TAGS:
        debs = sorted(
            (p["name"], p["version"], p["source_name"], p["source_version"])
            for p in by_tag[tag]
            if p["type"] == "deb"
        )
        assert debs == expected, tag
        assert {p["ecosystem"] for p in by_tag[tag] if p["type"] == "deb"} == {"Debian:12"}
    lang = {(p["type"], p["name"], p["version"], p["layer"]) for p in by_tag["v2"]}
    assert {("pypi", "requests", "2.25.0", app), ("npm", "lodash", "4.17.15", app)} <= lang
    assert all(p["layer"] == base for p in by_tag["v1"])

    with StateStore(state) as store:
        facts = store.get_layer(base, analyzer_set_hash(default_analyzers()))
    assert facts is not None
    assert len(msgspec.msgpack.encode(facts)) < 512 << 10 < len(real.layers["base"][0].data)


def test_new_images_on_known_layers_fetch_only_their_configs(
    db: Path, real: Real, real_registry: RegistryServer, real_proxy: FaultProxy, tmp_path: Path
) -> None:
    """After a crawl, images pushed later onto the same layers (new repositories, new
    configs) cost their manifests and configs: no layer is fetched again, in a new crawl
    with the same state store; and an unchanged registry costs no blob at all."""
    state = tmp_path / "state.lmdb"
    _crawl(db, real_proxy, state, "--repo", "real/*")
    push(real_registry.url, real.images("later"))
    records = _crawl(db, real_proxy, state, "--repo", "later/*")
    gets = blob_gets(real_proxy)
    assert gets and not set(gets) & real.layer_digests
    assert records[-1]["images"] == REPOS * len(TAGS)
    cached = REPOS * sum(len(stack) for stack in real.stacks.values())
    assert records[-1]["layers"] == {"fetched": 0, "cached": cached}
    _crawl(db, real_proxy, state, "--repo", "later/*")
    assert blob_gets(real_proxy) == []


def test_scan_of_several_references_fetches_a_shared_layer_once(
    db: Path, real: Real, real_proxy: FaultProxy, tmp_path: Path
) -> None:
    """``regsweep scan`` of three references built on the same rootfs, scanned at once
    with a fresh state store: the rootfs is fetched once, and every image reports it."""
    real_proxy.wait_idle()
    real_proxy.reset()
    host = real_proxy.url.removeprefix("http://")
    refs = [f"{host}/real/r0{i}:{tag}" for i, tag in ((2, "v1"), (3, "v2"), (4, "v3"))]
    code, records, err = run(db, "scan", "--state", str(tmp_path / "s.lmdb"), "--insecure", *refs)
    assert code == 0, err
    gets = collections.Counter(blob_gets(real_proxy))
    assert gets[real.layers["base"][0].digest] == 1
    assert [r for r in records if r["kind"] == "error"] == []
    assert records[-1]["images"] == 3


def test_an_image_naming_a_layer_wrongly_does_not_fail_the_images_that_name_it_rightly(
    db: Path, real: Real, real_registry: RegistryServer, real_proxy: FaultProxy, tmp_path: Path
) -> None:
    """One image's config gives the app layer a wrong diff_id: that image is an error
    record; another image on the same blob with the right diff_id, crawled after it with
    one worker, is analysed (the blob itself is sound: its fault is not remembered)."""
    blob, diff_id = real.layers["app"]
    images = ImageSet()
    for repo, diff in (("diff/a", "sha256:" + "0" * 64), ("diff/b", diff_id)):
        config = canonical(
            {"architecture": "amd64", "os": "linux", "config": {},
             "rootfs": {"type": "layers", "diff_ids": [diff]}}
        )  # fmt: skip
        images.add_blob(repo, Blob(config))
        images.add_blob(repo, blob)
        manifest = canonical(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": _desc(OCI_CONFIG, config), "layers": [_desc(OCI_LAYER, blob.data)]}
        )  # fmt: skip
        images.tags[repo] = {"v1": Doc(manifest, OCI_MANIFEST)}
    push(real_registry.url, images)
    records = _crawl(db, real_proxy, tmp_path / "s.lmdb", "--repo", "diff/*")
    records = [r for r in records if r["kind"] in ("error", "image")]  # the crawl used -c 8
    code, again, err = run(
        db, "crawl", real_proxy.url, "--state", str(tmp_path / "t.lmdb"), "--repo", "diff/*",
        "--concurrency", "1",
    )  # fmt: skip
    assert code == 0, err
    # The layer's facts already cached (from diff/b): diff/a's wrong diff_id is still told.
    state = str(tmp_path / "u.lmdb")
    code, _, err = run(db, "crawl", real_proxy.url, "--state", state, "--repo", "diff/b")
    assert code == 0, err
    code, cached, err = run(db, "crawl", real_proxy.url, "--state", state, "--repo", "diff/*")
    assert code == 0, err
    for recs in (records, again, cached):
        kinds = {(r["kind"], r["image"]["repository"]) for r in recs if r["kind"] != "summary"}  # type: ignore[index]
        assert ("image", "diff/b") in kinds
        assert ("image", "diff/a") not in kinds
        assert [r["error"] for r in recs if r["kind"] == "error"] == ["diff_id_mismatch"]
