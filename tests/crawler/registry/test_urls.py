"""The request paths a ``Registry`` builds from repository names and references."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regsweep.crawler.registry import InvalidName, Registry

REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def _registry() -> Registry:
    # Building a path needs no session: no request is made.
    return Registry(None, "http://127.0.0.1:5000", use_docker_config=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("latest", "/v2/lib/app/manifests/latest"),
        ("sha256:" + "a" * 64, "/v2/lib/app/manifests/sha256:" + "a" * 64),
        ("1.0-rc.1_b", "/v2/lib/app/manifests/1.0-rc.1_b"),
        # Not valid tags, but a registry's tag list or a user can hand them over: each is
        # one segment, quoted once.
        ("a b", "/v2/lib/app/manifests/a%20b"),
        ("x%y", "/v2/lib/app/manifests/x%25y"),
        ("tag?x#y", "/v2/lib/app/manifests/tag%3Fx%23y"),
        ("../../other/manifests/x", "/v2/lib/app/manifests/..%2F..%2Fother%2Fmanifests%2Fx"),
        (".hidden", "/v2/lib/app/manifests/.hidden"),
    ],
)
def test_a_reference_is_one_segment_quoted_once(ref: str, path: str) -> None:
    url = _registry()._path("lib/app", "manifests", ref)
    assert url.raw_path == path
    assert url.host == "127.0.0.1" and url.port == 5000


@pytest.mark.parametrize("ref", ["", ".", ".."])
def test_a_dot_segment_or_nothing_is_not_a_reference(ref: str) -> None:
    with pytest.raises(InvalidName):
        _registry()._path("lib/app", "manifests", ref)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:s3cret-pw@reg.example:5000/team/app:1.0", "https://user:***@"),
        ("user:s3cret-pw@127.0.0.1:5000/team/app:1.0", "user:***@"),
        ("docker://s3cret-pw@reg.example/app", "docker://***@"),
        # A password holding "/" or "@": none of it shown either.
        ("https://user:abc/s3cret-pw@reg.example:5000/team/app:1.0", "https://user:***@reg"),
        ("https://user:ss@s3cret-pw@reg.example:5000/team/app:1.0", "https://user:***@reg"),
    ],
)
def test_a_reference_with_a_password_is_refused_without_echoing_it(text: str, shown: str) -> None:
    """Credentials in a reference or URL: a usage error that never prints the secret (it
    would land in a terminal, a CI log, a bug report)."""
    for args in (["scan", "--db", "/nonexistent", text], ["crawl", "--db", "/nonexistent",
                 text.split("/team")[0].split("/app")[0]]):  # fmt: skip
        proc = subprocess.run([REGSWEEP, *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2
        assert "s3cret-pw" not in proc.stderr + proc.stdout
        assert shown in proc.stderr and "credentials do not belong" in proc.stderr
