"""The request paths a ``Registry`` builds from repository names and references."""

from __future__ import annotations

import pytest

from regsweep.crawler.registry import InvalidName, Registry


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
