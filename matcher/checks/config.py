"""The image config as the checks see it: a small msgspec "view" of the OCI image config.

Only the fields a check reads are decoded (``config.User``, ``Env``, ``ExposedPorts``,
``Labels``, ``Entrypoint``, ``Cmd`` and ``history[].created_by``); everything else in the
blob is skipped by msgspec without being materialised. Docker writes ``null`` for empty
lists and maps (``"Env": null``, ``"ExposedPorts": null``), so every field accepts null.
"""

from __future__ import annotations

import msgspec

from regsweep.matcher.checks.secrets import redact_text
from regsweep.matcher.records import ConfigSummary

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "ConfigView", "HistoryView", "ImageConfigView"]

#: Largest config blob accepted. Real configs are a few KiB (a long history maybe 100 KiB);
#: registries cap manifests at 4 MiB, and a blob past this is garbage or an attack, not a config.
MAX_CONFIG_BYTES = 8 * 1024 * 1024


class ConfigError(ValueError):
    """The image config blob is not a JSON object in the OCI image config shape.

    The message names what is wrong (size, JSON syntax, a field's type) but never quotes the
    blob: a config can hold secrets, and error text ends up in ``error`` records and logs.
    """


class ConfigView(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="pascal"):
    """``config`` of an OCI image config: the run-time defaults a container starts with."""

    user: str | None = None
    #: ``NAME=value`` strings as written by the builder (a bare ``NAME`` is possible).
    env: list[str] | None = None
    #: ``"22/tcp": {}`` keys; the values are always empty objects.
    exposed_ports: dict[str, object] | None = None
    labels: dict[str, str] | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None


class HistoryView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ``history`` entry: the build step that made a layer (or an empty layer)."""

    created_by: str | None = None


class ImageConfigView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The parts of an OCI image config (``application/vnd.oci.image.config.v1+json``) used."""

    config: ConfigView | None = None
    history: list[HistoryView] | None = None


_DECODER = msgspec.json.Decoder(ImageConfigView)


def decode_config(blob: bytes) -> ImageConfigView:
    """Decode an image config blob into the view, or raise ``ConfigError``.

    Unknown fields are ignored (the spec lets builders add their own); a known field with the
    wrong type, invalid JSON, a non-object top level or a blob over ``MAX_CONFIG_BYTES`` is
    an error.
    """
    if len(blob) > MAX_CONFIG_BYTES:
        raise ConfigError(f"image config is {len(blob)} bytes, over the {MAX_CONFIG_BYTES} cap")
    try:
        return _DECODER.decode(blob)
    except msgspec.ValidationError as exc:
        # msgspec's validation text names the path and expected type, never the value.
        raise ConfigError(f"image config has an unexpected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        # Syntax errors name a byte offset only ("malformed data (byte 12)").
        raise ConfigError(f"image config is not valid JSON: {exc}") from None
    except RecursionError:
        # msgspec walks nesting recursively, even in skipped unknown fields: a blob of
        # 100 000 nested brackets is an attack on the decoder, not a config.
        raise ConfigError("image config is nested too deeply") from None


def config_summary(config_json: bytes) -> ConfigSummary | None:
    """The ``image`` record's view of a config: environment *names* only, and entrypoint and
    command arguments with any secret redacted (they can carry credentials too). None for a
    config that does not decode (the checks report that)."""
    try:
        view = decode_config(config_json)
    except ConfigError:
        return None
    cfg = view.config
    if cfg is None:
        return ConfigSummary()
    return ConfigSummary(
        user=cfg.user,
        exposed_ports=sorted(cfg.exposed_ports or {}),
        env_keys=[e.partition("=")[0] for e in cfg.env or []],
        entrypoint=None if cfg.entrypoint is None else [redact_text(a) for a in cfg.entrypoint],
        cmd=None if cfg.cmd is None else [redact_text(a) for a in cfg.cmd],
    )
