"""The state store's form of an image config: no secret kept, the same records judged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from regsweep.crawler.oci import config_platform, decode_config
from regsweep.matcher.checks import ConfigError
from regsweep.matcher.checks.scrub import SCRUB, VERSION, read_scrubbed, scrub_config
from regsweep.matcher.facts import ImageFacts
from regsweep.matcher.index import store
from regsweep.matcher.judge import Policy, judge
from regsweep.matcher.match import Matcher
from regsweep.matcher.records import OsInfo, Package
from tests.matcher.checks.helpers import IMAGE, image_config, make_jwt

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GHP = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA"
    + "q" * 64
    + "\n-----END RSA PRIVATE KEY-----"
)
JWT = make_jwt({"sub": "svc"})

#: Configs with secrets in every place the checks search, and some without any.
CONFIGS: dict[str, bytes] = {
    "env": image_config(
        env=["PATH=/usr/bin", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "DB_PASSWORD=hunter2-x9"]
    ),
    "bare env entry and a token for a name": image_config(
        env=[AWS_ID, f"{GHP}_TOKEN=abc123def456", "PLAIN"]
    ),
    "labels": image_config(
        labels={
            "ci.token": GHP,
            GHP: "the key is the token",
            "org.opencontainers.image.base.name": f"https://u:{AWS_SECRET[:12]}@r.test/base:1",
            "org.opencontainers.image.base.digest": "sha256:" + "0" * 64,
        }
    ),
    "commands": image_config(
        entrypoint=["/entry", f"--jwt={JWT}"],
        cmd=["curl", f"https://deploy:{AWS_SECRET[:10]}@db.test/x", "--api-key", GHP],
    ),
    "history": image_config(
        history=[
            "/bin/sh -c #(nop) ADD file:0 in /",
            f"/bin/sh -c mysql --password=Tr0ub4dor-3 -e 'select 1' && echo '{PEM}' > /k",
            f"|2 NPM_TOKEN=npm_{'a1' * 18} GH={GHP} /bin/sh -c make",
        ]
    ),
    "root, ports, nothing secret": image_config(user="root", ports=["22/tcp", "5432"]),
    "no config section": msgspec.json.encode(
        {"architecture": "arm64", "os": "linux", "variant": "v8", "rootfs": {"diff_ids": []}}
    ),
}
SECRETS = (AWS_ID, AWS_SECRET, AWS_SECRET[:10], AWS_SECRET[:12], GHP, "hunter2-x9", JWT)
SECRETS += ("Tr0ub4dor-3", "q" * 64, "a1" * 18, "abc123def456")


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matcher]:
    path = tmp_path_factory.mktemp("scrub") / "adv.lmdb"
    store.build(path, [])
    with store.AdvisoryIndex(path) as index:
        yield Matcher(index)


def _records(facts: ImageFacts, matcher: Matcher, trusted: tuple[str, ...]) -> list[Any]:
    policy = Policy(trusted_bases=trusted)
    out = [msgspec.to_builtins(r) for r in judge(facts, matcher, policy).records]
    for r in out:
        r.pop("scanned_at", None)
    return out


def _facts(config: bytes, scrubbed: bool) -> ImageFacts:
    return ImageFacts(
        image=IMAGE,
        config=config,
        layers=1,
        size=10,
        packages=[Package(name="openssh-server", version="1:9.2p1-2", type="deb")],
        os=OsInfo(family="debian", name="Debian GNU/Linux", version="12"),
        config_scrubbed=scrubbed,
    )


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("trusted", [(), ("r.test/base",)])
def test_a_scrubbed_config_is_judged_as_the_config_it_came_from(
    name: str, trusted: tuple[str, ...], matcher: Matcher
) -> None:
    """Every record, the secret findings' evidence and the image record's config summary
    included, is the same for the scrubbed form as for the config as fetched; the crawler
    reads the same platform and layers from it."""
    raw = CONFIGS[name]
    scrubbed = scrub_config(raw)
    assert scrubbed is not None
    assert _records(_facts(scrubbed, True), matcher, trusted) == _records(
        _facts(raw, False), matcher, trusted
    )
    before, after = decode_config(raw, "raw"), decode_config(scrubbed, "scrubbed")
    assert config_platform(after) == config_platform(before)
    assert after.rootfs == before.rootfs


def test_a_scrubbed_config_holds_no_secret_and_no_env_command_or_history() -> None:
    for name, raw in CONFIGS.items():
        scrubbed = scrub_config(raw)
        assert scrubbed is not None
        assert [s for s in SECRETS if s.encode() in raw] or name in (
            "root, ports, nothing secret",
            "no config section",
        )
        view, _ = read_scrubbed(scrubbed)
        if view.config is not None:
            assert view.config.env is None and view.config.cmd is None
            assert view.config.entrypoint is None
        assert view.history is None
        assert [s for s in SECRETS if s.encode() in scrubbed] == [], name


def test_only_a_config_marked_scrubbed_by_the_crawler_is_read_as_one(matcher: Matcher) -> None:
    """A config from a registry that carries a ``regsweep.scrubbed`` key of its own (say,
    with no findings) is judged as fetched: its secrets are still reported."""
    raw = CONFIGS["env"]
    forged = msgspec.json.decode(raw)
    forged["regsweep.scrubbed"] = {"version": VERSION, "secrets": [], "summary": None}
    forged_blob = msgspec.json.encode(forged)
    records = _records(_facts(forged_blob, False), matcher, ())
    checks = [r["check"]["id"] for r in records if r["kind"] == "misconfiguration"]
    assert "RS-IMG-002" in checks and "RS-IMG-005" in checks


def test_what_cannot_be_scrubbed_is_not_kept_and_other_forms_are_refused(
    tmp_path: Path,
) -> None:
    assert scrub_config(b"not json") is None
    assert scrub_config(b'{"config": {"Env": "not a list"}}') is None
    assert SCRUB(CONFIGS["env"]) == scrub_config(CONFIGS["env"])
    with pytest.raises(ConfigError):
        read_scrubbed(CONFIGS["env"])  # a raw config is not the scrubbed form
    older = msgspec.json.decode(scrub_config(CONFIGS["env"]) or b"")
    older["regsweep.scrubbed"]["version"] = "0"
    with pytest.raises(ConfigError, match="v0"):
        read_scrubbed(msgspec.json.encode(older))
