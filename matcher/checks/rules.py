"""The configuration checks: catalog (id, title, severity, category, remediation) and rules.

Each check has a stable id and a fixed severity; the module docstring of
``regsweep.matcher.checks`` carries the table. Every rule takes plain facts (the config
view, the OS, the package list, the base-image reference) and yields
``MisconfigurationRecord``s; ``run_checks`` wires them together.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import assert_never

import msgspec
import structlog

from regsweep.matcher import secrets
from regsweep.matcher.checks import eol as eol_table
from regsweep.matcher.checks.config import decode_config
from regsweep.matcher.facts import FileSecret
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import (
    Check,
    ImageRef,
    MisconfigurationRecord,
    OsInfo,
    Package,
    Severity,
)

__all__ = ["CATALOG", "Category", "CheckId", "CheckSpec", "run_checks", "secret_findings"]

_log = structlog.get_logger("regsweep.matcher.checks")


class Category(enum.StrEnum):
    """Check categories, as ``../shared/OUTPUT.md`` names them."""

    USER = "user"
    SECRET = "secret"
    PORT = "port"
    EOL = "eol"
    SERVICE = "service"
    BASE_IMAGE = "base-image"


class CheckId(enum.StrEnum):
    """Stable check ids: never renumbered, never reused."""

    ROOT_USER = "RS-IMG-001"
    PROVIDER_CREDENTIAL = "RS-IMG-002"
    PRIVATE_KEY = "RS-IMG-003"
    JWT = "RS-IMG-004"
    SECRET_VALUE = "RS-IMG-005"
    REMOTE_LOGIN_PORT = "RS-IMG-010"
    CLEARTEXT_LOGIN_PORT = "RS-IMG-011"
    DOCKER_DAEMON_PORT = "RS-IMG-012"
    DATABASE_PORT = "RS-IMG-013"
    EOL_OS = "RS-IMG-020"
    REMOTE_ACCESS_SERVICE = "RS-IMG-030"
    FILE_TRANSFER_SERVICE = "RS-IMG-031"
    UNTRUSTED_BASE = "RS-IMG-040"
    UNDECLARED_BASE = "RS-IMG-041"
    FILE_PROVIDER_CREDENTIAL = "RS-IMG-050"
    FILE_PRIVATE_KEY = "RS-IMG-051"
    FILE_JWT = "RS-IMG-052"
    FILE_SECRET_VALUE = "RS-IMG-053"


class CheckSpec(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A check as reported (``check``) and what to do about it."""

    check: Check
    remediation: str


def _spec(cid: CheckId) -> CheckSpec:
    def spec(title: str, severity: Severity, category: Category, fix: str) -> CheckSpec:
        check = Check(id=cid.value, title=title, severity=severity, category=category.value)
        return CheckSpec(check=check, remediation=fix)

    rotate = "Rotate the credential now: it ships to everyone who can pull the image. "
    in_file = (
        "Keep it out of the build context (.dockerignore) and mount it at run time, or use "
        "`docker build --secret`; deleting it in a later layer leaves it in the layer below."
    )
    match cid:
        case CheckId.ROOT_USER:
            return spec(
                "Image runs as root",
                Severity.HIGH,
                Category.USER,
                "Create an unprivileged user and set `USER <uid>` (numeric) in the Dockerfile.",
            )
        case CheckId.PROVIDER_CREDENTIAL:
            return spec(
                "Cloud or service credential in image config",
                Severity.CRITICAL,
                Category.SECRET,
                rotate + "Pass it at run time (a secret store, a mounted file, "
                "`docker build --secret`), never through ENV, ARG or LABEL.",
            )
        case CheckId.PRIVATE_KEY:
            return spec(
                "Private key in image config",
                Severity.CRITICAL,
                Category.SECRET,
                "Replace the key pair, then mount the key at run time instead of baking it in.",
            )
        case CheckId.JWT:
            return spec(
                "JSON Web Token in image config",
                Severity.HIGH,
                Category.SECRET,
                rotate + "Fetch tokens at run time.",
            )
        case CheckId.SECRET_VALUE:
            return spec(
                "Password or secret value in image config",
                Severity.HIGH,
                Category.SECRET,
                rotate + "Use a `*_FILE` variable pointing at a mounted secret, "
                "or `docker build --secret` for build-time secrets.",
            )
        case CheckId.FILE_PROVIDER_CREDENTIAL:
            return spec(
                "Cloud or service credential in a layer file", Severity.CRITICAL,
                Category.SECRET, rotate + in_file,
            )  # fmt: skip
        case CheckId.FILE_PRIVATE_KEY:
            return spec(
                "Private key in a layer file", Severity.CRITICAL, Category.SECRET,
                "Replace the key pair. " + in_file,
            )  # fmt: skip
        case CheckId.FILE_JWT:
            return spec(
                "JSON Web Token in a layer file", Severity.HIGH, Category.SECRET,
                rotate + in_file,
            )  # fmt: skip
        case CheckId.FILE_SECRET_VALUE:
            return spec(
                "Password or secret value in a layer file", Severity.HIGH, Category.SECRET,
                rotate + in_file,
            )  # fmt: skip
        case CheckId.REMOTE_LOGIN_PORT:
            return spec(
                "Remote login port exposed",
                Severity.MEDIUM,
                Category.PORT,
                "Do not run a login service in the container; use `docker exec`/`kubectl exec`.",
            )
        case CheckId.CLEARTEXT_LOGIN_PORT:
            return spec(
                "Cleartext remote login port exposed",
                Severity.HIGH,
                Category.PORT,
                "Remove the telnet/r-services daemon and the EXPOSE line.",
            )
        case CheckId.DOCKER_DAEMON_PORT:
            return spec(
                "Docker daemon port exposed",
                Severity.CRITICAL,
                Category.PORT,
                "Never expose the Docker API from an image: it is root on the host.",
            )
        case CheckId.DATABASE_PORT:
            return spec(
                "Database or cache port exposed",
                Severity.LOW,
                Category.PORT,
                "Keep database ports on a private network; publish them only where needed.",
            )
        case CheckId.EOL_OS:
            return spec(
                "Operating system past end of life",
                Severity.HIGH,
                Category.EOL,
                "Rebuild on a supported release of the distribution: "
                "an end-of-life OS gets no security fixes.",
            )
        case CheckId.REMOTE_ACCESS_SERVICE:
            return spec(
                "Remote-access server installed",
                Severity.MEDIUM,
                Category.SERVICE,
                "Remove the server package; containers are entered with `exec`, not a login.",
            )
        case CheckId.FILE_TRANSFER_SERVICE:
            return spec(
                "File-transfer server installed",
                Severity.LOW,
                Category.SERVICE,
                "Remove the FTP/TFTP server unless serving files is the image's purpose.",
            )
        case CheckId.UNTRUSTED_BASE:
            return spec(
                "Base image not on the trusted list",
                Severity.MEDIUM,
                Category.BASE_IMAGE,
                "Rebuild FROM an approved base image, or add this base to the trusted list.",
            )
        case CheckId.UNDECLARED_BASE:
            return spec(
                "Base image not declared",
                Severity.LOW,
                Category.BASE_IMAGE,
                "Record the base with the `org.opencontainers.image.base.name` and "
                "`.base.digest` annotations (BuildKit: `--annotation`, or the label).",
            )
        case _:
            assert_never(cid)


#: Every check, by id.
CATALOG: Mapping[CheckId, CheckSpec] = {cid: _spec(cid) for cid in CheckId}


def _record(image: ImageRef, cid: CheckId, evidence: str) -> MisconfigurationRecord:
    spec = CATALOG[cid]
    # Evidence is already redacted by construction; logging it is as safe as writing it.
    _log.debug("misconfiguration", check=cid.value, evidence=evidence)
    return MisconfigurationRecord(
        image=image, check=spec.check, evidence=evidence, remediation=spec.remediation
    )


# --- user -------------------------------------------------------------------------------

_ROOT_NAMES = frozenset({"", "root"})


def is_root_user(user: str | None) -> bool:
    """Whether a config ``User`` runs the container as uid 0.

    ``User`` is ``user``, ``uid``, ``user:group`` or ``uid:gid``; only the *user* part
    decides. Unset, empty, ``root`` and any all-digit uid equal to 0 (``0``, ``00``) are
    root; ``app:0`` (a non-root user in group 0, as OpenShift images do) is not, because
    the process has no root privileges. User names are case-sensitive (``ROOT`` is not root).
    """
    who = (user or "").strip().partition(":")[0].strip()
    return who in _ROOT_NAMES or (who.isascii() and who.isdigit() and int(who) == 0)


def _check_user(view: ImageConfig, image: ImageRef) -> Iterator[MisconfigurationRecord]:
    user = view.config.user if view.config else None
    if is_root_user(user):
        shown = (user or "").strip()
        evidence = f"User is {shown!r}" if shown else "User is not set (defaults to root)"
        yield _record(image, CheckId.ROOT_USER, evidence)


# --- secrets ----------------------------------------------------------------------------


def _file_kind_check(kind: str) -> CheckId:
    return {
        secrets.SecretKind.PROVIDER: CheckId.FILE_PROVIDER_CREDENTIAL,
        secrets.SecretKind.PRIVATE_KEY: CheckId.FILE_PRIVATE_KEY,
        secrets.SecretKind.JWT: CheckId.FILE_JWT,
    }.get(secrets.SecretKind(kind), CheckId.FILE_SECRET_VALUE)


def file_secret_records(
    image: ImageRef, found: Sequence[FileSecret]
) -> list[MisconfigurationRecord]:
    """One record per secret in the layers' files: the file, line and layer in the
    evidence, the secret redacted (it was never kept whole)."""
    out = []
    for s in found:
        said = []
        if layer := s.layer.removeprefix("sha256:")[:12]:  # none for a root filesystem
            said.append(f"layer {layer}")
        if s.removed:
            said.append("removed by a later layer but still in this one")
        where = f"{s.path}:{s.line}" + (f" ({', '.join(said)})" if said else "")
        out.append(_record(image, _file_kind_check(s.kind), f"{where}: {s.title} {s.shown}"))
    return out


def _kind_check(kind: secrets.SecretKind) -> CheckId:
    match kind:
        case secrets.SecretKind.PROVIDER:
            return CheckId.PROVIDER_CREDENTIAL
        case secrets.SecretKind.PRIVATE_KEY:
            return CheckId.PRIVATE_KEY
        case secrets.SecretKind.JWT:
            return CheckId.JWT
        case secrets.SecretKind.URL_PASSWORD | secrets.SecretKind.NAMED:
            return CheckId.SECRET_VALUE
        case _:
            assert_never(kind)


def _secret_places(view: ImageConfig) -> Iterator[tuple[str, list[secrets.SecretHit]]]:
    cfg = view.config
    if cfg is not None:
        for i, entry in enumerate(cfg.env or ()):
            name, sep, value = entry.partition("=")
            if sep and secrets.show_name(name) == name:
                yield f"Env {name}", secrets.scan_assignment(name, value)
            else:
                # A bare or odd entry: never print it, it may be the secret itself.
                yield f"Env[{i}]", secrets.scan_text(entry)
        for i, (key, value) in enumerate((cfg.labels or {}).items()):
            if secrets.show_name(key) != key:
                # The key itself may hold a secret: name the label by position only.
                yield f"Labels[{i}] key", secrets.scan_text(key)
                yield f"Labels[{i}] value", secrets.scan_text(value)
            else:
                yield f"Label {key}", secrets.scan_assignment(key, value)
        for field, args in (("Entrypoint", cfg.entrypoint), ("Cmd", cfg.cmd)):
            for i, arg in enumerate(args or ()):
                yield f"{field}[{i}]", secrets.scan_text(arg)
    for i, step in enumerate(view.history or ()):
        if step.created_by:
            yield f"history[{i}] created_by", secrets.scan_text(step.created_by)


def secret_findings(view: ImageConfig) -> list[tuple[CheckId, str]]:
    """The secret checks' findings on a config, in report order: ``(check, evidence)``, one
    per (check, place, secret). The evidence shows each secret redacted, so these are what
    may be kept of a config's secrets (``scrub``)."""
    found: list[tuple[CheckId, str]] = []
    seen: set[tuple[CheckId, str, str]] = set()
    for where, hits in _secret_places(view):
        for hit in hits:
            cid = _kind_check(hit.kind)
            evidence = f"{where}: {hit.title} {hit.shown}"
            if (cid, where, evidence) not in seen:
                seen.add((cid, where, evidence))
                found.append((cid, evidence))
    return found


# --- ports ------------------------------------------------------------------------------

#: TCP port → (check, service). UDP/SCTP ports are not judged: the services listed speak TCP.
RISKY_PORTS: Mapping[int, tuple[CheckId, str]] = {
    22: (CheckId.REMOTE_LOGIN_PORT, "ssh"),
    3389: (CheckId.REMOTE_LOGIN_PORT, "rdp"),
    5900: (CheckId.REMOTE_LOGIN_PORT, "vnc"),
    5901: (CheckId.REMOTE_LOGIN_PORT, "vnc"),
    5985: (CheckId.REMOTE_LOGIN_PORT, "winrm"),
    5986: (CheckId.REMOTE_LOGIN_PORT, "winrm"),
    23: (CheckId.CLEARTEXT_LOGIN_PORT, "telnet"),
    512: (CheckId.CLEARTEXT_LOGIN_PORT, "rexec"),
    513: (CheckId.CLEARTEXT_LOGIN_PORT, "rlogin"),
    514: (CheckId.CLEARTEXT_LOGIN_PORT, "rsh"),
    2375: (CheckId.DOCKER_DAEMON_PORT, "docker (plain HTTP)"),
    2376: (CheckId.DOCKER_DAEMON_PORT, "docker (TLS)"),
    1433: (CheckId.DATABASE_PORT, "mssql"),
    1521: (CheckId.DATABASE_PORT, "oracle"),
    2379: (CheckId.DATABASE_PORT, "etcd"),
    3306: (CheckId.DATABASE_PORT, "mysql"),
    5432: (CheckId.DATABASE_PORT, "postgresql"),
    5984: (CheckId.DATABASE_PORT, "couchdb"),
    6379: (CheckId.DATABASE_PORT, "redis"),
    7474: (CheckId.DATABASE_PORT, "neo4j"),
    8086: (CheckId.DATABASE_PORT, "influxdb"),
    9042: (CheckId.DATABASE_PORT, "cassandra"),
    9200: (CheckId.DATABASE_PORT, "elasticsearch"),
    9300: (CheckId.DATABASE_PORT, "elasticsearch transport"),
    11211: (CheckId.DATABASE_PORT, "memcached"),
    26257: (CheckId.DATABASE_PORT, "cockroachdb"),
    27017: (CheckId.DATABASE_PORT, "mongodb"),
}
_PORT_KEY = re.compile(r"(\d{1,5})(?:/([A-Za-z]+))?")


def _check_ports(view: ImageConfig, image: ImageRef) -> Iterator[MisconfigurationRecord]:
    ports = (view.config.exposed_ports if view.config else None) or {}
    for key in sorted(ports):
        m = _PORT_KEY.fullmatch(key.strip())
        if m is None or (m.group(2) or "tcp").lower() != "tcp":
            continue
        risky = RISKY_PORTS.get(int(m.group(1)))
        if risky is not None:
            cid, service = risky
            yield _record(image, cid, f"ExposedPorts {key} ({service})")


# --- services ---------------------------------------------------------------------------

_REMOTE = CheckId.REMOTE_ACCESS_SERVICE
_FTP = CheckId.FILE_TRANSFER_SERVICE
_COMMON: dict[str, tuple[CheckId, str]] = {
    "openssh-server": (_REMOTE, "SSH server"),
    "dropbear": (_REMOTE, "SSH server"),
    "telnetd": (_REMOTE, "telnet server"),
    "rsh-server": (_REMOTE, "rsh/rlogin server"),
    "x11vnc": (_REMOTE, "VNC server"),
    "tigervnc-server": (_REMOTE, "VNC server"),
    "xrdp": (_REMOTE, "RDP server"),
    "vsftpd": (_FTP, "FTP server"),
    "proftpd": (_FTP, "FTP server"),
    "pure-ftpd": (_FTP, "FTP server"),
}
#: Package type → installed package name → (check, what it is). Names differ per family:
#: ``openssh`` is only a server on Alpine/Wolfi (a meta package pulling openssh-server);
#: on rpm distros it is the shared base of client and server.
SERVICE_PACKAGES: Mapping[str, Mapping[str, tuple[CheckId, str]]] = {
    "deb": {
        **_COMMON,
        # Debian's "ssh" is a meta package depending on openssh-server.
        "ssh": (_REMOTE, "SSH server (meta package)"),
        "dropbear-bin": (_REMOTE, "SSH server"),
        "dropbear-run": (_REMOTE, "SSH server"),
        "telnetd-ssl": (_REMOTE, "telnet server"),
        "inetutils-telnetd": (_REMOTE, "telnet server"),
        "rsh-redone-server": (_REMOTE, "rsh/rlogin server"),
        "tightvncserver": (_REMOTE, "VNC server"),
        "tigervnc-standalone-server": (_REMOTE, "VNC server"),
        "proftpd-basic": (_FTP, "FTP server"),
        "proftpd-core": (_FTP, "FTP server"),
        "inetutils-ftpd": (_FTP, "FTP server"),
        "tftpd-hpa": (_FTP, "TFTP server"),
        "tftpd": (_FTP, "TFTP server"),
    },
    "apk": {
        **_COMMON,
        "openssh": (_REMOTE, "SSH server (meta package)"),
        "openssh-server-pam": (_REMOTE, "SSH server"),
        "tftp-hpa": (_FTP, "TFTP server"),
    },
    "rpm": {
        **_COMMON,
        "telnet-server": (_REMOTE, "telnet server"),
        "tftp-server": (_FTP, "TFTP server"),
    },
}


def _check_services(
    packages: Sequence[Package], image: ImageRef
) -> Iterator[MisconfigurationRecord]:
    seen: set[tuple[str, str]] = set()
    for pkg in packages:
        hit = SERVICE_PACKAGES.get(pkg.type, {}).get(pkg.name)
        if hit is not None and (pkg.type, pkg.name) not in seen:
            seen.add((pkg.type, pkg.name))
            cid, what = hit
            yield _record(image, cid, f"{pkg.type} package {pkg.name} {pkg.version} ({what})")


# --- end of life ------------------------------------------------------------------------


def _check_eol(
    os: OsInfo | None, today: date, image: ImageRef
) -> tuple[OsInfo | None, list[MisconfigurationRecord]]:
    if os is None:
        return None, []
    filled, verdict = eol_table.annotate(os, today)
    if not verdict.eol:
        return filled, []
    name = os.name or os.family
    evidence = f"{name} {os.version}: support ({verdict.support}) ended {verdict.eol_date}"
    return filled, [_record(image, CheckId.EOL_OS, evidence)]


# --- base image -------------------------------------------------------------------------

BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Fa-f0-9]{32,}")


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _is_registry_host(component: str) -> bool:
    # A lone entry: "localhost:5000" and "registry.example.com" are registries, but
    # "debian:12" is an image with a tag (a bare host:port needs a dot or "localhost").
    host = component.partition(":")[0]
    return "." in host or host == "localhost"


def split_reference(
    ref: str, *, registry_only_ok: bool = False
) -> tuple[str, str | None, str | None]:
    """``(name, tag, digest)`` of an image reference, the name fully qualified as Docker
    does: ``debian:12`` → ``docker.io/library/debian``; ``index.docker.io`` → ``docker.io``.

    With ``registry_only_ok`` a lone ``registry.example.com`` (a trusted-list entry naming
    a whole registry) stays a registry instead of becoming a Docker Hub repository.
    """
    ref = ref.strip()
    ref, _, digest = ref.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    tag = None
    if colon > slash and not (registry_only_ok and "/" not in ref and _is_registry_host(ref)):
        ref, tag = ref[:colon], ref[colon + 1 :]
    first, _, rest = ref.partition("/")
    if rest and _is_registry(first):
        registry, path = first.lower(), rest
    elif not rest and registry_only_ok and _is_registry_host(first):
        registry, path = first.lower(), ""
    else:
        registry, path = "docker.io", ref
    if registry == "index.docker.io":
        registry = "docker.io"
    # Docker Hub's official images live under library/; "docker.io/library" itself (a
    # trusted-list entry for all official images) is the namespace, not library/library.
    if registry == "docker.io" and path and "/" not in path and path != "library":
        path = f"library/{path}"
    name = f"{registry}/{path}" if path else registry
    return name, tag or None, digest or None


def is_trusted(base_name: str | None, base_digest: str | None, trusted: Sequence[str]) -> bool:
    """Whether a base image matches an entry of the trusted list.

    An entry is a digest (``sha256:…``: the base's digest must equal it) or a reference
    prefix: a registry (``registry.example.com``), a namespace (``docker.io/library``) or a
    repository, optionally with a tag or digest that must then match too. Prefixes match on
    path components: ``registry.example.com`` does not trust
    ``registry.example.com.evil.io/app``, ``team`` does not trust ``teamx``.
    """
    name, tag, ref_digest = split_reference(base_name) if base_name else (None, None, None)
    digests = {d.lower() for d in (base_digest, ref_digest) if d}
    for entry in trusted:
        entry = entry.strip()
        if _DIGEST.fullmatch(entry):
            if entry.lower() in digests:
                return True
            continue
        if name is None:
            continue
        e_name, e_tag, e_digest = split_reference(entry, registry_only_ok=True)
        if not (name == e_name or name.startswith(e_name + "/")):
            continue
        if e_tag is not None and e_tag != tag:
            continue
        if e_digest is not None and e_digest.lower() not in digests:
            continue
        return True
    return False


def _check_base(
    view: ImageConfig,
    image: ImageRef,
    trusted: Sequence[str],
    base_ref: str | None,
    base_digest: str | None,
) -> Iterator[MisconfigurationRecord]:
    if not trusted:
        return
    labels = (view.config.labels if view.config else None) or {}
    base_ref = base_ref or labels.get(BASE_NAME_LABEL) or None
    base_digest = base_digest or labels.get(BASE_DIGEST_LABEL) or None
    if base_ref is None and base_digest is None:
        # With a policy in force, an image that hides its base would pass every policy if
        # silence counted as trusted.
        yield _record(image, CheckId.UNDECLARED_BASE, "no base.name/base.digest annotation")
        return
    if not is_trusted(base_ref, base_digest, trusted):
        shown = " ".join(s for s in (base_ref, base_digest and f"({base_digest})") if s)
        # A base named by URL can carry its registry password: evidence never shows one.
        yield _record(image, CheckId.UNTRUSTED_BASE, f"base image {secrets.redact_text(shown)}")


# --- entry point ------------------------------------------------------------------------


def run_checks(
    config_json: bytes | ImageConfig | None,
    os: OsInfo | None,
    packages: Sequence[Package],
    image: ImageRef,
    *,
    today: date | None = None,
    trusted_bases: Sequence[str] = (),
    base_ref: str | None = None,
    base_digest: str | None = None,
    secrets_found: Sequence[tuple[CheckId, str]] | None = None,
    file_secrets: Sequence[FileSecret] = (),
) -> tuple[list[MisconfigurationRecord], OsInfo | None]:
    """Run every configuration check on one platform image.

    ``config_json`` is the image config blob (``ConfigError`` when it is not one), or the
    view the crawler already decoded, or None when there is no image config (an SBOM:
    only the checks on the OS and packages run); ``os``
    the OS analyzer's finding, returned with ``eol``/``eol_date`` filled; ``today`` the day
    EOL is judged on (default: today, UTC). The base-image policy is off unless
    ``trusted_bases`` is given; ``base_ref``/``base_digest`` come from the manifest's
    ``org.opencontainers.image.base.*`` annotations, else from the config labels.
    ``secrets_found`` are the secret checks' findings made before the config was scrubbed
    of its secrets (``secret_findings``, kept by ``scrub``); None: search the config.
    ``file_secrets`` are the secrets the crawler found in the layers' files.
    """
    day = today or datetime.now(UTC).date()
    filled, eol_records = _check_eol(os, day, image)
    in_files = file_secret_records(image, file_secrets)
    if config_json is None:
        return [*in_files, *eol_records, *_check_services(packages, image)], filled
    view = config_json if isinstance(config_json, ImageConfig) else decode_config(config_json)
    if secrets_found is None:
        secrets_found = secret_findings(view)
    records = [
        *_check_user(view, image),
        *(_record(image, cid, evidence) for cid, evidence in secrets_found),
        *in_files,
        *_check_ports(view, image),
        *eol_records,
        *_check_services(packages, image),
        *_check_base(view, image, trusted_bases, base_ref, base_digest),
    ]
    return records, filled
