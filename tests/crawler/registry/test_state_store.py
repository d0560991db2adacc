"""The state store as a crawl leaves it: damaged files, and the secrets of image configs.

The registry is its own (Debian's docker-registry on 127.0.0.1), holding a few small
images and one whose config carries credentials: an AWS secret key in ``Env``, a
password in a build step of its ``history``, a token in a label and a password in a URL
in ``Cmd``. Crawls run as subprocesses, as a user runs them: a SIGBUS or a traceback
shows as what it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from regsweep.matcher import lmdbfile
from tests.crawler.registry.conftest import RegistryServer, _start, _stop
from tests.crawler.registry.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Doc,
    ImageSet,
    canonical,
    make_layer,
    push,
)
from tests.crawler.registry.test_crawl import refs_of, run, stable

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE1"
DB_PASSWORD = "Tr0ub4dor-n0t-a-real-one"
LABEL_TOKEN = "ghp_" + "Zq8" * 12
URL_PASSWORD = "s3cr3t-in-the-url"
SECRETS = (AWS_SECRET, DB_PASSWORD, LABEL_TOKEN, URL_PASSWORD)


def _add_image(images: ImageSet, repo: str, tag: str, config: dict[str, Any]) -> None:
    layer, diff_id = make_layer({f"app/{repo}.txt": f"{repo}:{tag}\n".encode() * 50})
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    blob = Blob(canonical(config))
    images.add_blob(repo, blob)
    images.add_blob(repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": blob.digest, "size": len(blob.data)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": len(layer.data)}],
    }
    images.tags.setdefault(repo, {})[tag] = Doc(canonical(manifest), OCI_MANIFEST)


def _image_set() -> ImageSet:
    images = ImageSet()
    _add_image(
        images,
        "team/secret",
        "1.0",
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}"],
                "Labels": {"ci.token": LABEL_TOKEN, "org.opencontainers.image.base.name": "x"},
                "Cmd": ["fetch", f"https://deploy:{URL_PASSWORD}@db.example.test/dump"],
                "ExposedPorts": {"22/tcp": {}},
            },
            "history": [
                {"created_by": "/bin/sh -c #(nop) ADD file:0 in /"},
                {"created_by": f"/bin/sh -c mysql -uroot --password={DB_PASSWORD} < init.sql"},
            ],
        },
    )
    for i in range(6):
        _add_image(
            images,
            f"team/app{i}",
            "1.0",
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"User": "1000", "Env": [f"APP={i}"], "Cmd": ["app"]},
            },
        )
    return images


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("state-registry")
    server = _start(root / "run", root / "storage", "state")
    try:
        push(server.url, _image_set())
        yield server
    finally:
        _stop(server)


def _crawl(db: Path, url: str, state: Path) -> tuple[list[dict[str, Any]], str]:
    code, records, err = run(db, "crawl", url, "--state", str(state))
    assert code == 0, err
    return records, err


@pytest.fixture(scope="module")
def first(
    db: Path, registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, Any]]]:
    """A crawl into a new state store: (the store, its records)."""
    state = tmp_path_factory.mktemp("state") / "state.lmdb"
    records, _ = _crawl(db, registry.url, state)
    return state, records


def test_config_secrets_never_reach_the_store_and_cached_images_judge_the_same(
    db: Path, registry: RegistryServer, first: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The image config's secrets are reported (redacted) but the state store's bytes hold
    none of them; a second crawl, which takes the image from the store, writes the same
    records, secret findings and their evidence included."""
    state, records = first
    evidence = [r["evidence"] for r in records if r["kind"] == "misconfiguration"]
    checks = {r["check"]["id"] for r in records if r["kind"] == "misconfiguration"}
    assert {"RS-IMG-002", "RS-IMG-005"} <= checks  # the AWS key; the password, the URL's
    assert any("Env AWS_SECRET_ACCESS_KEY" in e for e in evidence)
    assert any("history[1] created_by" in e for e in evidence)
    output = msgspec.json.encode(records)
    assert not [s for s in SECRETS if s.encode() in output]  # redacted in the output

    stored = b"".join(p.read_bytes() for p in state.parent.iterdir() if p.is_file())
    assert not [s for s in SECRETS if s.encode() in stored]

    again, _ = _crawl(db, registry.url, state)
    assert again[-1]["layers"]["fetched"] == 0  # every image came from the store
    assert stable(again[:-1]) == stable(records[:-1])
    # Under a platform filter the walks recorded do not apply: manifests and configs are
    # read back from the store's documents, the images' facts from its images.
    seen = registry.log.stat().st_size
    code, filtered, err = run(
        db, "crawl", registry.url, "--state", str(state), "--platform", "linux/amd64"
    )
    assert code == 0, err
    with registry.log.open("rb") as log:
        log.seek(seen)
        requests = [line for line in log.read().splitlines() if line.startswith(b"127.0.0.1 ")]
    # No config (a blob) nor manifest was fetched: they came from the store.
    fetched = [r for r in requests if b"/blobs/" in r or (b'"GET ' in r and b"/manifests/" in r)]
    assert requests and not fetched, fetched
    assert filtered[-1]["layers"]["fetched"] == 0 and filtered[-1]["images"] == 7
    assert stable(filtered[:-1]) == stable(records[:-1])


def _page_flag_offsets(state: Path) -> list[int]:
    """The flags byte of LMDB's header (offset 10) of every page after the two metas."""
    meta = lmdbfile.check(state)
    return [n * meta.page_size + 10 for n in range(2, meta.last_page + 1)]


def test_a_crawl_over_a_store_with_flipped_bytes_yields_every_image(
    db: Path, registry: RegistryServer, first: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A byte flipped in the store a real crawl wrote (either meta page, the header of any
    other page, a stored value): the next crawl still yields every image with the same
    records, no error record and no traceback, and says so in at most one warning."""
    state, records = first
    data = state.read_bytes()
    page = lmdbfile.check(state).page_size
    offsets = [16, page + 136, *_page_flag_offsets(state), len(data) - page // 2]
    outcomes = {}
    for offset in offsets:
        run_dir = tmp_path / f"flip-{offset}"
        run_dir.mkdir()
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        (run_dir / "state.lmdb").write_bytes(damaged)
        code, again, err = run(db, "crawl", registry.url, "--state", str(run_dir / "state.lmdb"))
        warnings = [
            line
            for line in err.splitlines()
            if "state_store_damaged" in line or "state_entry_corrupt" in line
        ]
        outcomes[offset] = (
            code,
            code == 0 and stable(again[:-1]) == stable(records[:-1]),
            "Traceback" in err,
            len(warnings) <= 1,
        )
    # (-7 would be a SIGBUS.)
    assert outcomes == dict.fromkeys(offsets, (0, True, False, True))
    assert len(refs_of(records)) == 7
