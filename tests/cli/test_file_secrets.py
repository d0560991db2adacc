"""Secrets in layer files, on the product command: an image with planted secrets (a ``.env``,
private keys, a cloud credentials file, a token in a script, a registry login, an npm
token, and a key deleted by a later layer) and decoys that must not fire (the AWS
documentation's example keys, a certificate and a public key, placeholders, a test
fixture's key, a key in a package's documentation, code that names a password, a binary).
The values are made up for this test but have the real formats."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import msgspec
import pytest

from tests.example import REGSWEEP
from tests.realimage import tar_layer

AWS_ID = "AKIA" + "Q3RSTUVWXYZ23456"
AWS_SECRET = "kT9vQ2mX7pL4wR8sZ1bN6cF3hJ5dG0yE2uA9iO4e"
GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PASSWORD = "Tr0ub4dor&3-horse-battery"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
PRIVATE = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}-----END OPENSSH PRIVATE KEY-----\n"
DOCKER_AUTH = "cm9ib3Q6c3VwZXJzZWNyZXQxMjM="  # robot:supersecret123

SECRETS = (AWS_ID, AWS_SECRET, GITHUB, STRIPE, NPM, PASSWORD, KEY_BODY.strip(), DOCKER_AUTH)

LOWER = {
    "app/.env": f"# settings\nDB_HOST=db\nDB_PASSWORD={PASSWORD}\nSTRIPE_KEY={STRIPE}\n",
    "root/.ssh/id_ed25519": PRIVATE,
    "root/.aws/credentials": (
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    ),
    "app/deploy.sh": (
        "#!/bin/sh\nset -e\n"
        f'curl -fsS -H "Authorization: token {GITHUB}" https://api.github.com/repos/x/y\n'
    ),
    "root/.docker/config.json": json.dumps(
        {"auths": {"registry.example.com": {"auth": DOCKER_AUTH}}}, indent=2
    ),
    "app/.npmrc": f"//registry.npmjs.org/:_authToken={NPM}\n",
    # Written by ``echo '{"auths":…}' > ~/.docker/config.json``: one line.
    "home/ci/.docker/config.json": json.dumps({"auths": {"r.io": {"auth": DOCKER_AUTH}}}),
    # /usr/src/app is the node images' WORKDIR: an app, not sources of the system.
    "usr/src/app/index.js": f"const stripe = require('stripe')('{STRIPE}');\n",
    "app/old/deploy_key": PRIVATE,  # deleted by the upper layer: still in this one
    # Decoys.
    "app/README.md": (
        "Configure with\n\n    aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    ),
    "app/certs/server.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "app/certs/pub.pem": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
    "app/.env.example": "DB_PASSWORD=<your password>\nAPI_KEY=${API_KEY}\nTOKEN=\n",
    "app/tests/fixtures/server.key": PRIVATE,
    "usr/share/doc/libfoo/examples/test.key": PRIVATE,
    "app/main.py": (
        "import os\n\ndef connect(password=password, token=os.environ['TOKEN']):\n"
        "    return db.login(user, password)\n"
    ),
    "app/bin/tool": "\x7fELF\0\0\0" + AWS_ID + "\0" * 64,
}
UPPER = {"app/version.txt": "2\n"}

#: (check, file, line) of every secret: nothing else may fire.
EXPECTED = {
    ("RS-IMG-053", "app/.env", 3),
    ("RS-IMG-050", "app/.env", 4),
    ("RS-IMG-051", "root/.ssh/id_ed25519", 1),
    ("RS-IMG-050", "root/.aws/credentials", 2),
    ("RS-IMG-050", "root/.aws/credentials", 3),
    ("RS-IMG-050", "app/deploy.sh", 3),
    ("RS-IMG-053", "root/.docker/config.json", 4),
    ("RS-IMG-050", "app/.npmrc", 1),
    ("RS-IMG-051", "app/old/deploy_key", 1),
    ("RS-IMG-053", "home/ci/.docker/config.json", 1),
    ("RS-IMG-050", "usr/src/app/index.js", 1),
}


def _layout(root: Path) -> Path:
    """A two-layer OCI layout: ``LOWER``, then ``UPPER`` deleting ``app/old/deploy_key``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers, diff_ids = [], []
    for files, whiteouts in ((LOWER, ()), (UPPER, ("app/old/deploy_key",))):
        tar = tar_layer({p: v.encode() for p, v in files.items()}, whiteouts=whiteouts)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        layers.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             **put(gzip.compress(tar, mtime=0))}
        )  # fmt: skip
    config = {
        "architecture": "amd64", "os": "linux", "config": {"User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **put(json.dumps(config).encode())},
        "layers": layers,
    }  # fmt: skip
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **put(json.dumps(manifest).encode()),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _layout(tmp_path_factory.mktemp("secrets") / "layout")


def test_every_planted_secret_and_no_decoy(
    planted: Path, example: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each secret once, with its file, line and layer, redacted; the one a later layer
    deleted is reported as still in its layer; no decoy fires; no secret is written whole
    (the layer cache holds only ``FileFacts.secrets``: redacted hits)."""
    _, db = example
    proc = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), f"oci:{planted}:latest"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [msgspec.json.decode(x) for x in proc.stdout.splitlines()]
    found = {
        (r["check"]["id"], *r["evidence"].split(" ", 1)[0].rsplit(":", 1))
        for r in records
        if r["kind"] == "misconfiguration" and r["check"]["category"] == "secret"
    }
    assert {(c, p, int(n)) for c, p, n in found} == EXPECTED
    evidence = {
        r["evidence"].split(" ", 1)[0]: r["evidence"]
        for r in records
        if r["kind"] == "misconfiguration"
    }
    assert "removed by a later layer" in evidence["app/old/deploy_key:1"]
    assert "removed" not in evidence["root/.ssh/id_ed25519:1"]
    assert "(layer " in evidence["app/.env:3"] and "Tr0u…(25 chars)" in evidence["app/.env:3"]
    for secret in SECRETS:
        assert secret not in proc.stdout and secret not in proc.stderr


def test_the_layer_speed_cost_is_one_substring_search_for_a_file_without_anchors() -> None:
    """A file holding none of the format rules' literals is not decoded or searched further:
    the analyzer answers None (no facts kept for it) from the prefilter alone."""
    from regsweep.crawler.analyzers.secrets import SecretsAnalyzer, skipped

    analyzer = SecretsAnalyzer()
    assert analyzer.wants("app/config.yaml") is not None
    assert analyzer.read("app/config.yaml", b"name: web\nreplicas: 3\n", False) is None
    for path in ("usr/share/doc/x/key.pem", "app/node_modules/a/.env", "app/tests/k.pem",
                 "app/logo.png", "usr/lib/python3/dist-packages/x.py"):  # fmt: skip
        assert skipped(path) and analyzer.wants(path) is None, path
