"""The state store's form of an image config: what judging it needs, and no secret.

The crawler caches image configs in its state store, and an image re-judged from the
store (a cached image on a later crawl, ``rematch``) must give the same records as a
fresh crawl. A config's ``Env``, labels, commands and history can hold credentials, which
the records only ever show redacted; the store must not keep them whole either.

``scrub_config`` turns a config blob into a JSON object that the config model
(``ImageConfig``) still reads, holding:

* the fields that the crawler and the non-secret checks read as they are: platform
  (``architecture``, ``os``, ``variant``), ``created``, ``rootfs`` (diff_ids), and of
  ``config`` the ``User``, the ``ExposedPorts`` and the two base-image labels (any secret
  in those redacted, as the checks show it);
* nothing else of the config: no ``Env`` (names nor values), no other label, no
  ``Entrypoint``/``Cmd``, no ``history``;
* under ``regsweep.scrubbed``, what judging made of what was left out, computed from the
  whole config by the same code the judge runs: the secret checks' findings (check id and
  evidence, each secret shown redacted) and the ``image`` record's config summary
  (environment names, redacted commands).

``read_scrubbed`` gives the judge both back. It is only ever called for a config that
the crawler says came from the store in this form (``ImageFacts.config_scrubbed``): a
config from a registry carrying a ``regsweep.scrubbed`` key of its own is judged as
fetched, the key ignored like any unknown field, so no image can forge its findings.

A scrubbed config no longer hashes to its digest: the store keeps the hash of what it
stored to check it when read, and the ``VERSION`` of this form: a config stored under
another version is a miss (fetched and scrubbed again).
"""

from __future__ import annotations

from typing import Final

import msgspec

from regsweep.matcher.checks.config import ConfigError, config_summary, decode_config
from regsweep.matcher.checks.rules import (
    BASE_DIGEST_LABEL,
    BASE_NAME_LABEL,
    CheckId,
    secret_findings,
)
from regsweep.matcher.imageconfig import ContainerConfig, ImageConfig
from regsweep.matcher.records import ConfigSummary
from regsweep.matcher.secrets import redact_text

__all__ = ["SCRUB", "VERSION", "ConfigScrub", "Scrubbed", "read_scrubbed", "scrub_config"]

#: The form ``scrub_config`` makes: bump it when what is kept or computed changes.
VERSION: Final = "1"


class Scrubbed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What judging made of the parts of a config that the store does not keep."""

    version: str
    #: The secret checks' findings, in report order (``rules.secret_findings``).
    secrets: list[tuple[CheckId, str]] = []
    #: The ``image`` record's config summary (``config_summary``), None for no summary.
    summary: ConfigSummary | None = None


class _StoredConfig(ImageConfig, frozen=True, kw_only=True, gc=False):
    scrubbed: Scrubbed = msgspec.field(name="regsweep.scrubbed")


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_StoredConfig)


def scrub_config(blob: bytes) -> bytes | None:
    """The store's form of the image config ``blob`` (see the module doc); None for a
    blob that is not a config the judge can read (the store then keeps nothing of it)."""
    try:
        view = decode_config(blob)
    except ConfigError:
        return None
    cfg = view.config
    kept = None
    if cfg is not None:
        labels = {
            key: redact_text(value)
            for key, value in (cfg.labels or {}).items()
            if key in (BASE_NAME_LABEL, BASE_DIGEST_LABEL)
        }
        kept = ContainerConfig(
            user=cfg.user, exposed_ports=cfg.exposed_ports, labels=labels or None
        )
    stored = _StoredConfig(
        architecture=view.architecture,
        os=view.os,
        variant=view.variant,
        created=view.created,
        config=kept,
        rootfs=view.rootfs,
        scrubbed=Scrubbed(
            version=VERSION, secrets=secret_findings(view), summary=config_summary(view)
        ),
    )
    return _ENCODER.encode(stored)


def read_scrubbed(blob: bytes) -> tuple[ImageConfig, Scrubbed]:
    """The config view and the findings of a config ``scrub_config`` made; ``ConfigError``
    for anything else (another version included)."""
    try:
        stored = _DECODER.decode(blob)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ConfigError(f"stored image config is not in the scrubbed form: {exc}") from None
    if stored.scrubbed.version != VERSION:
        raise ConfigError(
            f"stored image config is scrubbed form v{stored.scrubbed.version}, "
            f"this regsweep reads v{VERSION}"
        )
    return stored, stored.scrubbed


class ConfigScrub:
    """``scrub_config`` as the crawler's state store takes it (``crawler.state.Scrub``):
    handed over by the commands, since the crawler does not import the checks."""

    version: Final = VERSION

    def __call__(self, config: bytes) -> bytes | None:
        """``scrub_config(config)``."""
        return scrub_config(config)


#: The one scrubber the commands give the state store.
SCRUB: Final = ConfigScrub()
