"""Golden records: what ``scan`` and ``crawl`` write must not change when the code moves.

The golden files in ``tests/data/golden`` were written by the commit before the pipeline
became a library (4b5babd) and are compared record for record (timestamps dropped, the
test registry's port replaced by ``REGISTRY``, canonical order). A change of output is then
a visible diff of these files, never a side effect. Regenerate, after checking that the
change is meant: ``REGSWEEP_UPDATE_GOLDEN=1 pytest tests/crawler/registry/test_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from tests import paths
from tests.crawler.registry.faults import FaultProxy
from tests.crawler.registry.test_crawl import Record, run, stable
from tests.example import example_image

GOLDEN = paths.DATA / "golden"
_UPDATE = os.environ.get("REGSWEEP_UPDATE_GOLDEN", "") not in ("", "0")


def _normalised(records: list[Record], host: str) -> list[Record]:
    # The registry's port changes every run; the records must not otherwise.
    text = msgspec.json.encode(stable(records)).decode().replace(host, "REGISTRY")
    out: list[Record] = msgspec.json.decode(text)
    for r in out:
        if r["kind"] == "summary":
            assert isinstance(r["db"], dict)
            r["db"].pop("built_at")  # the index is built anew for every test session
            # Work, not findings: a layer two images wait for at once counts as fetched for
            # one and cached for the other, or fetched for both, as the race goes.
            r.pop("layers")
    return out


def _compare(name: str, records: list[Record]) -> None:
    path = GOLDEN / name
    if _UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgspec.json.format(msgspec.json.encode(records), indent=1) + b"\n")
    want = msgspec.json.decode(path.read_bytes())
    assert len(records) == len(want)
    for got, expected in zip(records, want, strict=True):
        assert got == expected


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The make-run example layout (deterministic: the same digests every run)."""
    return example_image(tmp_path_factory.mktemp("golden") / "image")


def test_scan_writes_the_golden_records(db: Path, example: Path) -> None:
    """Both platforms of the example image, with packages, as the golden file has them."""
    code, records, err = run(db, "scan", "--packages", f"oci:{example}:latest")
    assert code == 0, err
    _compare("scan-example.json", _normalised(records, str(example)))


def test_crawl_writes_the_golden_records(
    db: Path, _plain_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The whole test registry (every repository, tag and platform: indexes, attestations,
    artifacts, Docker and OCI media types), with packages, as the golden file has them.
    Its findings and failures are covered by the scan golden and the crawl tests."""
    _plain_proxy.wait_idle()
    _plain_proxy.reset()  # no fault an earlier test installed may reach this crawl
    state, out = tmp_path / "state.lmdb", tmp_path / "out.ndjson"
    code, _, err = run(
        db, "crawl", _plain_proxy.url, "--packages", "--state", str(state), "-o", str(out)
    )
    assert code == 0, err
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    _compare("crawl-registry.json", _normalised(records, _plain_proxy.url.removeprefix("http://")))
