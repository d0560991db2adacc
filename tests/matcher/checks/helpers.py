"""Builders for real-shaped OCI image configs (as Docker/BuildKit write them) and secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec

from regsweep.matcher.records import ImageRef

IMAGE = ImageRef(ref="oci:/tmp/layout:latest", digest="sha256:" + "ab" * 32, platform="linux/amd64")


def image_config(
    *,
    user: str | None = "",
    env: list[str] | None = None,
    ports: list[str] | None = None,
    labels: dict[str, str] | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    history: list[str] | None = None,
) -> bytes:
    """An image config blob in the shape ``docker image inspect``/BuildKit produce: every
    field present, Docker's ``null`` for absent lists and maps, unknown extra fields kept."""
    cfg: dict[str, Any] = {
        "Hostname": "",
        "User": user,
        "ExposedPorts": {p: {} for p in ports} if ports is not None else None,
        "Env": env if env is not None else ["PATH=/usr/local/sbin:/usr/local/bin:/usr/bin"],
        "Cmd": cmd,
        "Entrypoint": entrypoint,
        "WorkingDir": "/",
        "Labels": labels,
        "OnBuild": None,
        "ArgsEscaped": True,
    }
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05.123456789Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "cd" * 32]},
        "history": [
            {
                "created": "2026-01-02T03:04:05Z",
                "created_by": step,
                "comment": "buildkit.dockerfile.v0",
                **({"empty_layer": True} if "#(nop)" in step or step.startswith("ENV") else {}),
            }
            for step in (history or ["/bin/sh -c #(nop) ADD file:0123 in / "])
        ],
    }
    return msgspec.json.encode(doc)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any], key: bytes = b"k" * 32) -> str:
    """A real HS256 JWT (RFC 7519): base64url header.payload, HMAC-SHA256 signature."""
    head = _b64url(msgspec.json.encode({"alg": "HS256", "typ": "JWT"}))
    body = _b64url(msgspec.json.encode(claims))
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"
