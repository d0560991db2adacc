"""The image config, as both halves read it: one model of the OCI image config (and Docker's
container image v1, the same shape).

The crawler decodes it when it resolves an image (``crawler.oci.decode_config``: platform,
diff_ids); the judge decodes the same blob once more into the same model for the checks
and the image record (user, environment, ports, labels, entrypoint, command, history),
because facts rebuilt from the state store carry the blob, not a view (about 10 µs for a
real config). Only these fields are decoded: everything else in a config is skipped
without being materialised. Docker writes ``null`` for empty lists and maps, so every
field accepts null.
"""

from __future__ import annotations

import msgspec


class ContainerConfig(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="pascal"):
    """``config``: the run-time defaults a container starts with (Docker spelling)."""

    user: str | None = None
    #: ``NAME=value`` strings as written by the builder (a bare ``NAME`` is possible).
    env: list[str] | None = None
    #: ``"22/tcp": {}`` keys; the values (always empty objects) are not decoded.
    exposed_ports: dict[str, msgspec.Raw] | None = None
    labels: dict[str, str] | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    working_dir: str | None = None


class RootFs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``rootfs``: the uncompressed digests of the layers, in order."""

    type: str = "layers"
    diff_ids: list[str] = []


class History(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ``history`` entry (a build step); ``empty_layer`` entries made no layer."""

    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    empty_layer: bool = False


class ImageConfig(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An image config (``application/vnd.oci.image.config.v1+json``), the parts read."""

    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    created: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFs | None = None
    history: list[History] | None = None
