"""The crawl as a library (``crawler.crawl``): what the README promises an application
embedding it, against the real docker-registry."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import aclosing
from pathlib import Path

import msgspec
import pytest

from regsweep.crawler.crawl import RegistryCrawl, RegistryOptions, Visit, connect
from tests.crawler.registry.conftest import RegistryServer
from tests.crawler.registry.images import ImageSet
from tests.example import example_image

REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def _host(server: RegistryServer) -> str:
    return server.url.removeprefix("http://")


def test_visits_cover_every_tag_and_an_early_close_is_clean(
    plain_registry: RegistryServer, images: ImageSet
) -> None:
    """Every tag once; leaving the loop early (``aclosing`` + ``break``) cancels the
    workers and raises nothing."""

    async def main() -> tuple[list[Visit], int]:
        async with connect(_host(plain_registry), RegistryOptions(insecure=True)) as crawler:
            crawl = RegistryCrawl(crawler, concurrency=3)
            await crawl.start()
            seen = [v async for v in crawl.visits()]
            again = RegistryCrawl(crawler, concurrency=3)
            await again.start()
            taken = 0
            async with aclosing(again.visits()) as visits:
                async for _ in visits:
                    taken += 1
                    break
            return seen, taken

    seen, taken = asyncio.run(main())
    tags = {f"{repo}:{tag}" for repo, names in images.tags.items() for tag in names}
    assert {v.key for v in seen} == tags and len(seen) == len(tags)
    assert taken == 1


def test_a_worker_bug_reaches_the_consumer(plain_registry: RegistryServer) -> None:
    """A bug in a worker (not a registry error) is raised where the visits are consumed,
    not lost as an unretrieved task exception."""

    async def main() -> None:
        async with connect(_host(plain_registry), RegistryOptions(insecure=True)) as crawler:
            crawl = RegistryCrawl(crawler, concurrency=2)
            await crawl.start()

            async def broken(repo: str) -> None:
                raise RuntimeError(f"bug listing {repo}")
                yield  # an async generator, as Registry.tags is

            crawler.registry.tags = broken  # type: ignore[method-assign]
            async for _ in crawl.visits():
                pass

    with pytest.raises(RuntimeError, match="bug listing"):
        asyncio.run(main())


def test_a_bad_ca_file_is_an_error_record_and_the_other_refs_are_scanned(
    db: Path, tmp_path: Path
) -> None:
    """``--ca-file`` that is not a CA bundle: the registry's references get an ``auth``
    error record; a local image in the same scan is still reported."""
    layout = example_image(tmp_path / "image")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--ca-file", str(bad),
         "https://127.0.0.1:9/team/app:1.0", f"oci:{layout}:latest"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    [error] = [r for r in records if r["kind"] == "error"]
    assert (error["stage"], error["error"]) == ("auth", "tls_error")
    assert error["ref"] == "https://127.0.0.1:9/team/app:1.0"
    assert sum(r["kind"] == "image" for r in records) == 2
