"""Root user, exposed ports, installed services, base-image policy, config decoding, catalog."""

from __future__ import annotations

import contextlib
from datetime import date

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.matcher.checks import (
    CATALOG,
    CheckId,
    ConfigError,
    config_summary,
    decode_config,
    run_checks,
)
from regsweep.matcher.checks.config import MAX_CONFIG_BYTES
from regsweep.matcher.checks.rules import is_root_user, is_trusted, split_reference
from regsweep.matcher.records import MisconfigurationRecord, Package
from tests.matcher.checks.helpers import IMAGE, image_config

DAY = date(2026, 1, 1)


def _ids(records: list[MisconfigurationRecord]) -> list[str]:
    return [r.check.id for r in records]


def _run(blob: bytes, **kw: object) -> list[MisconfigurationRecord]:
    records, _ = run_checks(blob, None, kw.pop("packages", []), IMAGE, today=DAY, **kw)  # type: ignore[arg-type]
    return records


@pytest.mark.parametrize("user", [None, "", "  ", "0", "00", "root", "0:0", "root:root", "0:1000"])
def test_root_users(user: str | None) -> None:
    """Unset, empty, ``root`` and uid 0 (with any group) run as root: RS-IMG-001."""
    assert is_root_user(user)
    assert _ids(_run(image_config(user=user))) == ["RS-IMG-001"]


@pytest.mark.parametrize("user", ["1000", "nobody", "app:0", "1000:0", "ROOT", "65532:65532"])
def test_non_root_users(user: str) -> None:
    """A non-zero uid or another user name is not root, even with gid 0 (``app:0``)."""
    assert not is_root_user(user)
    assert _run(image_config(user=user)) == []


def test_root_evidence_says_unset_or_quotes_the_user() -> None:
    """The evidence tells an unset user apart from an explicit root."""
    assert _run(image_config(user=None))[0].evidence == "User is not set (defaults to root)"
    assert _run(image_config(user="0:0"))[0].evidence == "User is '0:0'"


def test_one_record_per_risky_port() -> None:
    """Each risky TCP port is one record with its own check; safe ports, UDP and junk are not."""
    ports = ["22/tcp", "23", "2375/tcp", "2376/tcp", "3389/tcp", "5900/tcp", "5901/tcp",
             "5432/tcp", "6379/tcp", "27017/tcp", "80/tcp", "443/tcp", "8080/tcp",
             "22/udp", "53/udp", "11211/udp", "junk", "99999999/tcp"]  # fmt: skip
    records = _run(image_config(user="app", ports=ports))
    got = sorted((r.check.id, r.evidence or "") for r in records)
    assert got == sorted(
        [
            ("RS-IMG-010", "ExposedPorts 22/tcp (ssh)"),
            ("RS-IMG-011", "ExposedPorts 23 (telnet)"),
            ("RS-IMG-012", "ExposedPorts 2375/tcp (docker (plain HTTP))"),
            ("RS-IMG-012", "ExposedPorts 2376/tcp (docker (TLS))"),
            ("RS-IMG-010", "ExposedPorts 3389/tcp (rdp)"),
            ("RS-IMG-010", "ExposedPorts 5900/tcp (vnc)"),
            ("RS-IMG-010", "ExposedPorts 5901/tcp (vnc)"),
            ("RS-IMG-013", "ExposedPorts 5432/tcp (postgresql)"),
            ("RS-IMG-013", "ExposedPorts 6379/tcp (redis)"),
            ("RS-IMG-013", "ExposedPorts 27017/tcp (mongodb)"),
        ]
    )
    assert {r.check.category for r in records} == {"port"}


def _pkg(name: str, type_: str) -> Package:
    return Package(name=name, version="1.0-1", type=type_)


@pytest.mark.parametrize(
    ("name", "type_", "check"),
    [
        ("openssh-server", "deb", "RS-IMG-030"),
        ("ssh", "deb", "RS-IMG-030"),
        ("telnetd", "deb", "RS-IMG-030"),
        ("telnetd-ssl", "deb", "RS-IMG-030"),
        ("inetutils-telnetd", "deb", "RS-IMG-030"),
        ("dropbear", "apk", "RS-IMG-030"),
        ("openssh", "apk", "RS-IMG-030"),
        ("openssh-server", "apk", "RS-IMG-030"),
        ("openssh-server", "rpm", "RS-IMG-030"),
        ("telnet-server", "rpm", "RS-IMG-030"),
        ("vsftpd", "deb", "RS-IMG-031"),
        ("tftp-server", "rpm", "RS-IMG-031"),
    ],
)
def test_remote_access_packages(name: str, type_: str, check: str) -> None:
    """Server packages of remote access (and file transfer) are a service finding."""
    records = _run(image_config(user="app"), packages=[_pkg(name, type_)])
    assert _ids(records) == [check]
    assert records[0].check.category == "service"


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("openssh-client", "deb"),
        ("openssh", "rpm"),  # the shared base of client and server on rpm distros
        ("telnet", "deb"),
        ("openssh-server", "pypi"),  # a language package of that name is not a daemon
        ("libssh-4", "deb"),
    ],
)
def test_client_packages_are_not_services(name: str, type_: str) -> None:
    """Clients and look-alike names are not remote-access servers."""
    assert _run(image_config(user="app"), packages=[_pkg(name, type_)]) == []


def test_policy_off_without_a_trusted_list() -> None:
    """With no trusted list, no base-image finding, whatever the base."""
    labels = {"org.opencontainers.image.base.name": "docker.io/evil/base:1"}
    assert _run(image_config(user="app", labels=labels)) == []


@pytest.mark.parametrize(
    ("base", "trusted"),
    [
        ("debian:12", ["docker.io/library/debian"]),
        ("docker.io/library/debian:12", ["debian"]),
        ("index.docker.io/library/debian:12", ["docker.io/library"]),
        ("registry.example.com/team/base:1", ["registry.example.com"]),
        ("registry.example.com/team/base:1", ["registry.example.com/team"]),
        ("localhost:5000/base:1", ["localhost:5000"]),
        ("debian:12", ["debian:12"]),
        ("debian@sha256:" + "a" * 64, ["sha256:" + "a" * 64]),
    ],
)
def test_trusted_bases(base: str, trusted: list[str]) -> None:
    """Registry, namespace, repository, tag and digest entries trust what they name."""
    assert is_trusted(base, None, trusted)
    labels = {"org.opencontainers.image.base.name": base}
    assert _run(image_config(user="app", labels=labels), trusted_bases=trusted) == []


@pytest.mark.parametrize(
    ("base", "trusted"),
    [
        ("registry.example.com.evil.io/app:1", ["registry.example.com"]),
        ("registry.example.com/teamx/app:1", ["registry.example.com/team"]),
        ("debian:11", ["debian:12"]),
        ("docker.io/evil/debian:12", ["debian"]),
        ("debian:12", ["sha256:" + "b" * 64]),
    ],
)
def test_untrusted_bases(base: str, trusted: list[str]) -> None:
    """Prefixes match whole path components; a different tag, namespace or digest is untrusted."""
    assert not is_trusted(base, None, trusted)
    records = _run(image_config(user="app"), trusted_bases=trusted, base_ref=base)
    assert _ids(records) == ["RS-IMG-040"]
    assert records[0].evidence == f"base image {base}"


def test_untrusted_base_evidence_never_shows_a_secret_whole() -> None:
    """A base named with credentials in it (a label or annotation holding a registry URL
    with its password) is reported with the secret redacted, as every evidence is."""
    secret = "Sup3rS3cretPassw0rd"
    base = f"https://ci:{secret}@registry.test/team/base:1"
    labels = {"org.opencontainers.image.base.name": base}
    for records in (
        _run(image_config(user="app"), trusted_bases=["debian"], base_ref=base),
        _run(image_config(user="app", labels=labels), trusted_bases=["debian"]),
    ):
        [untrusted] = [r for r in records if r.check.id == "RS-IMG-040"]
        assert secret not in untrusted.evidence
        assert (
            untrusted.evidence == "base image https://ci:Sup3…(19 chars)@registry.test/team/base:1"
        )


def test_env_names_in_the_config_summary_never_show_a_secret_whole() -> None:
    """The image record lists Env names; an entry that is a bare token, or whose name is
    one, is listed redacted (as the secret checks name it), every other name as it is."""
    aws_id, ghp = "AKIAIOSFODNN7EXAMPLE", "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
    blob = image_config(env=["PATH=/usr/bin", aws_id, f"{ghp}_TOKEN=x1y2z3", "JAVA_HOME=/j"])
    summary = config_summary(blob)
    assert summary is not None
    assert summary.env_keys == ["PATH", "AKIA…(20 chars)", "ghp_…(46 chars)", "JAVA_HOME"]


def test_base_digest_from_annotation_is_trusted() -> None:
    """A trusted digest matches the manifest's base.digest annotation."""
    digest = "sha256:" + "c" * 64
    records = _run(image_config(user="app"), trusted_bases=[digest], base_digest=digest)
    assert records == []


def test_undeclared_base_under_a_policy() -> None:
    """With a trusted list in force, an image that declares no base gets RS-IMG-041."""
    assert _ids(_run(image_config(user="app"), trusted_bases=["debian"])) == ["RS-IMG-041"]


def test_split_reference() -> None:
    """References are qualified the way Docker does it."""
    assert split_reference("debian") == ("docker.io/library/debian", None, None)
    assert split_reference("ghcr.io/o/r:v1@sha256:ab") == ("ghcr.io/o/r", "v1", "sha256:ab")
    assert split_reference("localhost:5000/r") == ("localhost:5000/r", None, None)
    assert split_reference("gcr.io", registry_only_ok=True) == ("gcr.io", None, None)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00\x01garbage",
        b"[]",
        b'{"config": []}',
        b'{"config": {"User": 0}}',
        b'{"config": {"Env": "PATH=/bin"}}',
        b'{"config": {"ExposedPorts": ["22/tcp"]}}',
        b'{"history": [{"created_by": 5}]}',
        b'{"config": {"User": "a"}',
    ],
)
def test_malformed_configs_raise_config_error(blob: bytes) -> None:
    """Garbage, non-objects and wrong field types are a ConfigError, never a crash or a pass."""
    with pytest.raises(ConfigError):
        decode_config(blob)


@pytest.mark.parametrize(
    "blob",
    [
        b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}",  # in a skipped unknown field
        b'{"config":{"Volumes":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}}",
    ],
)
def test_deeply_nested_config_is_a_config_error(blob: bytes) -> None:
    """Nesting deep enough to exhaust the decoder's recursion is a ConfigError, not a crash."""
    with pytest.raises(ConfigError, match="nested too deeply"):
        decode_config(blob)


def test_oversized_config_is_refused_before_parsing() -> None:
    """A blob over the cap is refused with its size, without decoding it."""
    blob = b'{"history": [' + b'{"created_by": "x"},' * (MAX_CONFIG_BYTES // 20) + b"{}]}"
    with pytest.raises(ConfigError, match="over the"):
        decode_config(blob)


def test_minimal_and_null_configs_decode() -> None:
    """``{}`` and Docker's nulls decode to an empty view (root user is still reported)."""
    assert decode_config(b"{}").config is None
    null_cfg = b'{"config": {"User": null, "Env": null, "ExposedPorts": null, "Labels": null}}'
    assert _ids(_run(null_cfg)) == ["RS-IMG-001"]
    assert _ids(_run(b"{}")) == ["RS-IMG-001"]


def test_large_real_shaped_config_is_scanned_quickly() -> None:
    """A 5 MB history of long RUN lines is scanned within the test budget (no regex blowup)."""
    step = "/bin/sh -c " + "apt-get install -y pkg && " * 400 + "x=" + "a" * 5000
    blob = image_config(user="app", history=[step] * 300)
    assert len(blob) > 4_000_000
    assert _run(blob) == []


def test_catalog_ids_are_stable_and_complete() -> None:
    """Every CheckId has a catalog entry with its id, a title, a category and a remediation."""
    assert set(CATALOG) == set(CheckId)
    for cid, spec in CATALOG.items():
        assert spec.check.id == cid.value
        assert spec.check.title and spec.remediation
        assert spec.check.category in {"user", "secret", "port", "eol", "service", "base-image"}
    # The ids are a public interface: this list only ever grows.
    assert [c.value for c in CheckId] == [
        "RS-IMG-001", "RS-IMG-002", "RS-IMG-003", "RS-IMG-004", "RS-IMG-005",
        "RS-IMG-010", "RS-IMG-011", "RS-IMG-012", "RS-IMG-013", "RS-IMG-020",
        "RS-IMG-030", "RS-IMG-031", "RS-IMG-040", "RS-IMG-041", "RS-IMG-050",
        "RS-IMG-051", "RS-IMG-052", "RS-IMG-053",
    ]  # fmt: skip


def test_records_round_trip_through_the_output_union() -> None:
    """Records encode as ``kind: misconfiguration`` NDJSON and decode back unchanged."""
    from regsweep.matcher.records import Record

    records = _run(image_config(user=None, ports=["22/tcp"]))
    for rec in records:
        raw = msgspec.json.encode(rec)
        assert b'"kind":"misconfiguration"' in raw
        assert msgspec.json.decode(raw, type=Record) == rec


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_config_error(blob: bytes) -> None:
    """Arbitrary bytes either decode or raise ConfigError: no other exception escapes."""
    with contextlib.suppress(ConfigError):
        decode_config(blob)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "User": st.none() | st.text(max_size=20),
            "Env": st.none() | st.lists(st.text(max_size=60), max_size=5),
            "ExposedPorts": st.none() | st.dictionaries(st.text(max_size=12), st.just({})),
            "Labels": st.none() | st.dictionaries(st.text(max_size=30), st.text(max_size=60)),
            "Cmd": st.none() | st.lists(st.text(max_size=60), max_size=3),
            "Volumes": _json_values,
        },
    ),
    st.lists(st.text(max_size=200), max_size=4),
)
def test_any_well_typed_config_runs_every_check(
    config: dict[str, object], steps: list[str]
) -> None:
    """Any config of the right shape, whatever its strings, runs all checks without error and
    every record carries a catalogued check."""
    blob = msgspec.json.encode({"config": config, "history": [{"created_by": s} for s in steps]})
    records = _run(blob, trusted_bases=["debian"])
    assert all(CATALOG[CheckId(r.check.id)].check == r.check for r in records)
