"""The service's commit step, in process, on a real state store, output and index: the
order of results of one tag, and an index swapped while commits wait."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from regsweep.cli.service import config as cfg
from regsweep.cli.service.core import Service
from regsweep.matcher.records import (
    Advisory,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    Package,
    Record,
    VulnerabilityRecord,
)
from tests.example import advisory_index

REF = "127.0.0.1:5000/team/app:1.0"


def _image(digest: str) -> list[Record]:
    ref = ImageRef(ref=REF, registry="127.0.0.1:5000", repository="team/app", tag="1.0",
                   digest=digest, platform="linux/amd64")  # fmt: skip
    return [ImageRecord(image=ref)]


@pytest.fixture
def service(tmp_path: Path) -> Service:
    db = advisory_index(tmp_path / "db.lmdb")
    conf = cfg.Config(
        paths=cfg.PathsConfig(db=db, state=tmp_path / "state.lmdb", output=tmp_path / "out"),
        output=cfg.OutputConfig(max_age="1h"),
        registry=[cfg.RegistryConfig(url="http://127.0.0.1:5000")],
    )
    return Service(conf, token=None)


def _lines(service: Service) -> list[bytes]:
    out = service.conf.paths.output
    return [line for p in sorted(out.rglob("*part-*")) for line in p.read_bytes().splitlines()]


def test_a_result_read_before_one_already_written_is_dropped(service: Service) -> None:
    """A push scan read the tag at t=2 and committed D2; the crawl read it at t=1 (before the
    push) and commits after: its D1 must not be written over D2."""
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64

    async def go() -> None:
        service._open()
        try:
            await service._commit(REF, 2.0, _image(d2), {}, Counter())
            await service._commit(REF, 1.0, _image(d1), {}, Counter())
            await service._commit(REF, 3.0, _image(d2), {}, Counter())  # unchanged: nothing
        finally:
            service._close()

    asyncio.run(go())
    lines = _lines(service)
    assert len(lines) == 1 and d2.encode() in lines[0]
    again = Service(service.conf, token=None)
    again._open()
    try:
        assert again.keys_of_digest(d2) == [f"{REF}\0linux/amd64"]
        assert not again.keys_of_digest(d1)
    finally:
        again._close()


def _vulnerable(ref: str, digest: str) -> list[Record]:
    image = ImageRef(ref=ref, registry="127.0.0.1:5000", repository="team/app",
                     digest=digest, platform="linux/amd64")  # fmt: skip
    package = Package(name="openssl", version="1.1.1k-1", type="deb", ecosystem="Debian:11")
    return [
        ImageRecord(image=image, vulnerabilities=1),
        VulnerabilityRecord(image=image, package=package, advisory=Advisory(id="DSA-5044-1")),
    ]


def test_an_index_swapped_while_commits_wait_is_never_used_closed(
    service: Service, tmp_path: Path
) -> None:
    """Commits queued behind the lock while the index file is replaced and reloaded, each
    resolving a stored finding (which asks the index whether the advisory is still there):
    each uses the index open at its turn, never the one closed by the swap."""
    refs = [f"{REF}-{i}" for i in range(20)]
    digest = "sha256:" + "d" * 64

    async def go() -> None:
        service._open()
        service._judged = service._index_id  # as a running service has it
        try:
            for ref in refs:
                await service._commit(ref, 0.0, _vulnerable(ref, digest), {}, Counter())
            fixed = [r for r in _vulnerable(REF, digest) if isinstance(r, ImageRecord)]
            commits = [
                asyncio.create_task(service._commit(
                    ref, 0.0, [msgspec.structs.replace(fixed[0], image=msgspec.structs.replace(
                        fixed[0].image, ref=ref))], {}, Counter()))
                for ref in refs
            ]  # fmt: skip
            new = advisory_index(tmp_path / "db2.lmdb")
            os.replace(new, service.conf.paths.db)
            reload = asyncio.create_task(service.reload_index(reason="test"))
            await asyncio.gather(*commits, reload)
        finally:
            service._close()

    asyncio.run(go())
    kinds = Counter(msgspec.json.decode(line)["kind"] for line in _lines(service))
    assert kinds == {"image": 20, "vulnerability": 20, "resolved": 20, "summary": 1}


def test_a_platform_that_left_the_tag_s_index_is_resolved_as_image_gone(
    service: Service,
) -> None:
    """The tag read whole again with one platform fewer: the one gone gets a resolved
    record (``image_gone``) per finding and its findings are deleted; a tag that could not
    be read whole (an error about the tag itself) retires nothing."""
    amd = _vulnerable(REF, "sha256:" + "a" * 64)
    arm = [
        msgspec.structs.replace(r, image=msgspec.structs.replace(r.image, platform="linux/arm64"))
        for r in _vulnerable(REF, "sha256:" + "b" * 64)
    ]
    tag_error = ErrorRecord(
        image=ImageRef(ref=REF), ref=REF, stage="manifest", error="not_found", message="gone"
    )

    async def go() -> None:
        service._open()
        try:
            await service._commit(REF, 1.0, [*amd, *arm], {}, Counter())
            await service._commit(REF, 2.0, [tag_error], {}, Counter())
            await service._commit(REF, 3.0, amd, {}, Counter())
        finally:
            service._close()

    asyncio.run(go())
    records = [msgspec.json.decode(line) for line in _lines(service)]
    gone = [r for r in records if r["kind"] == "resolved"]
    assert [(r["image"]["platform"], r["reason"]) for r in gone] == [("linux/arm64", "image_gone")]
    assert records.index(gone[0]) > records.index(next(r for r in records if r["kind"] == "error"))
    again = Service(service.conf, token=None)
    again._open()
    try:
        assert again.keys_of_digest("sha256:" + "b" * 64) == []
        assert again.keys_of_digest("sha256:" + "a" * 64) == [f"{REF}\0linux/amd64"]
    finally:
        again._close()
