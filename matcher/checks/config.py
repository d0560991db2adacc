"""Decoding the image config for the checks (the model is ``matcher.imageconfig``).

``decode_config`` caps the size and names what is wrong without ever quoting the blob;
``run_checks`` and ``config_summary`` take the blob or a view decoded already.
"""

from __future__ import annotations

import msgspec

from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import ConfigSummary
from regsweep.matcher.secrets import redact_text, show_name

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "config_summary", "decode_config"]

#: Largest config blob accepted. Real configs are a few KiB (a long history maybe 100 KiB);
#: registries cap manifests at 4 MiB, and a blob past this is garbage or an attack, not a config.
MAX_CONFIG_BYTES = 8 * 1024 * 1024


class ConfigError(ValueError):
    """The image config blob is not a JSON object in the OCI image config shape.

    The message names what is wrong (size, JSON syntax, a field's type) but never quotes the
    blob: a config can hold secrets, and error text ends up in ``error`` records and logs.
    """


_DECODER = msgspec.json.Decoder(ImageConfig)


def decode_config(blob: bytes) -> ImageConfig:
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


def config_summary(config_json: bytes | ImageConfig) -> ConfigSummary | None:
    """The ``image`` record's view of a config (the blob, or its decoded view): environment
    *names* only (redacted when a name is itself a secret), and entrypoint and command
    arguments with any secret redacted (they can carry credentials too). None for a config
    that does not decode (the checks report that)."""
    try:
        view = config_json if isinstance(config_json, ImageConfig) else decode_config(config_json)
    except ConfigError:
        return None
    cfg = view.config
    if cfg is None:
        return ConfigSummary()
    return ConfigSummary(
        user=cfg.user,
        exposed_ports=sorted(cfg.exposed_ports or {}),
        # A bare entry, or a name, can be a token pasted in the wrong place: names are
        # shown as the secret checks name them (``show_name``), redacted when they are one.
        env_keys=[show_name(e.partition("=")[0]) for e in cfg.env or []],
        entrypoint=None if cfg.entrypoint is None else [redact_text(a) for a in cfg.entrypoint],
        cmd=None if cfg.cmd is None else [redact_text(a) for a in cfg.cmd],
    )
