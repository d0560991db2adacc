"""``regsweep serve --config FILE``: the service's TOML configuration, checked at start.

Every key is known (an unknown or misspelt one is refused), every value is checked, and
the error names the key (``registry[1].interval: '6x' is not a duration …``), so a bad
file stops the service before it listens rather than hours later.

Durations are written ``90s``, ``15m``, ``6h``, ``1d`` or combined (``1h30m``); schedules
are an ``interval`` or a five-field ``cron`` (minute hour day-of-month month day-of-week,
UTC, with ``*``, lists, ranges and ``/`` steps).
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec

from regsweep.crawler import state
from regsweep.crawler.auth import Credentials
from regsweep.crawler.oci import InvalidReference, SourceError, parse_platform
from regsweep.crawler.refs import registry_url
from regsweep.matcher.index import store as index_store


class ConfigError(Exception):
    """The configuration cannot be used: the message names the file and the key."""


_DURATION: Final = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``15m``, ``6h``, ``1d``, ``1h30m``; ``ValueError`` otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration (write 30s, 15m, 6h, 1d or 1h30m)")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    seconds = float(((d * 24 + h) * 60 + mi) * 60 + s)
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than 0")
    return seconds


_SIZE: Final = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB)?")
_UNITS: Final = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def parse_size(text: str | int) -> int:
    """Bytes in ``65536``, ``512KiB``, ``64MiB``, ``1GiB``; ``ValueError`` otherwise."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not a size (write 64MiB, 512KiB or a byte count)")
        value = int(m.group(1)) * _UNITS[m.group(2)]
    if value <= 0:
        raise ValueError(f"{text!r}: a size must be more than 0")
    return value


class Cron:
    """A five-field cron schedule in UTC (minute hour day-of-month month day-of-week).

    As in cron, when both day fields are restricted a day matching either one fires.
    """

    _RANGES: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

    def __init__(self, text: str) -> None:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"{text!r}: a cron schedule has 5 fields (minute hour day month weekday)"
            )
        self.text = text
        sets = [self._field(f, lo, hi) for f, (lo, hi) in zip(fields, self._RANGES, strict=True)]
        self.minutes, self.hours, self.days, self.months, weekdays = sets
        # Cron's Sunday is 0 or 7; Python's is 6 (Monday 0).
        self.weekdays = {(d - 1) % 7 for d in weekdays}
        self._any_day, self._any_weekday = fields[2] == "*", fields[4] == "*"

    @staticmethod
    def _field(text: str, lo: int, hi: int) -> set[int]:
        values: set[int] = set()
        for part in text.split(","):
            body, _, step_text = part.partition("/")
            step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
            if body == "*":
                start, end = lo, hi
            elif "-" in body:
                a, _, b = body.partition("-")
                start, end = (int(a), int(b)) if a.isdigit() and b.isdigit() else (-1, -1)
            elif body.isdigit():
                start = int(body)
                end = hi if step_text else start
            else:
                start, end = -1, -1
            if step < 1 or not lo <= start <= end <= hi:
                raise ValueError(f"{part!r} is not a cron field in {lo}-{hi}")
            values.update(range(start, end + 1, step))
        return values

    def _day_matches(self, t: datetime) -> bool:
        day, weekday = t.day in self.days, t.weekday() in self.weekdays
        if self._any_day or self._any_weekday:
            return day and weekday
        return day or weekday

    def next_after(self, t: datetime) -> datetime:
        """The first time after ``t`` (UTC) that the schedule fires."""
        t = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        # At most four years of days (a 29 February schedule), each stepped in one go.
        for _ in range(4 * 366 * 24 * 60):
            if t.month not in self.months or not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"{self.text!r} never fires")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class ServerConfig(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[server]``: where the HTTP API listens and how writes are authorised."""

    listen: str = "127.0.0.1:9108"
    #: The environment variable holding the bearer token that write endpoints require.
    token_env: str = "REGSWEEP_TOKEN"
    #: Largest request body accepted (notifications, scan requests).
    max_body: str | int = "1MiB"
    #: Notification and scan requests accepted per second (a burst of as many is allowed).
    write_rate: float = 50.0

    def __post_init__(self) -> None:
        host, _, port = self.listen.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            ok = port.isdigit() and 0 <= int(port) < 65536
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"listen: {self.listen!r} is not ADDRESS:PORT (e.g. 127.0.0.1:9108)")
        try:
            parse_size(self.max_body)
        except ValueError as exc:
            raise ValueError(f"max_body: {exc}") from None
        if self.write_rate <= 0:
            raise ValueError("write_rate: must be more than 0")

    @property
    def host(self) -> str:
        """The address to bind."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port to bind (0: any free one, written to the log)."""
        return int(self.listen.rpartition(":")[2])


class PathsConfig(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[paths]``: the advisory index, the state store, the output directory."""

    db: Path = msgspec.field(default_factory=index_store.default_path)
    state: Path = msgspec.field(default_factory=state.default_path)
    output: Path = Path("regsweep-out")


class OutputConfig(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[output]``: how NDJSON parts are rotated, and what goes in them."""

    #: A part is completed when it reaches this size …
    max_bytes: str | int = "64MiB"
    #: … or this age (a reader sees records at most this late).
    max_age: str = "10m"
    #: ``none`` or ``zstd`` (``part-NNNNNN.ndjson.zst``).
    compression: str = "none"
    #: Write ``package`` records too (as ``crawl --packages``).
    packages: bool = False
    #: Base images trusted by the base-image check (as ``--trusted-base``).
    trusted_bases: list[str] = []

    def __post_init__(self) -> None:
        for key, check in (("max_bytes", parse_size), ("max_age", parse_duration)):
            try:
                check(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        if self.compression not in ("none", "zstd"):
            raise ValueError(f"compression: {self.compression!r} is not none or zstd")


class FeedsConfig(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[feeds]``: the scheduled ``regsweep db update`` (none without ``update_interval``)."""

    update_interval: str | None = None
    #: As ``db update --from`` (repeatable): these feeds instead of the built-in catalog.
    urls: list[str] = []
    #: As ``db update --mirror`` and ``--ecosystem``.
    mirror: str | None = None
    ecosystems: list[str] = []

    def __post_init__(self) -> None:
        if self.update_interval is not None:
            try:
                parse_duration(self.update_interval)
            except ValueError as exc:
                raise ValueError(f"update_interval: {exc}") from None
        if self.urls and (self.mirror or self.ecosystems):
            raise ValueError("urls names its own feeds: it does not go with mirror or ecosystems")


class RegistryConfig(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[[registry]]``: one registry to crawl, what of it, how often and how politely."""

    url: str
    repos: list[str] = []
    exclude: list[str] = []
    tags: list[str] = []
    max_tags: int | None = None
    platform: str = "all"
    interval: str | None = None
    cron: str | None = None
    #: Added at random to every scheduled start (default: a tenth of the interval, at most
    #: 5 minutes), so that registries and replicas do not all start at once.
    jitter: str | None = None
    concurrency: int = 8
    #: Request starts per second to this host (none: no limit beyond ``concurrency``).
    rate_limit: float | None = None
    #: ``docker-config`` (the Docker CLI config, default), ``env:USER_VAR:PASS_VAR`` or
    #: ``file:PATH`` (two lines: user name, password), or ``none``.
    credentials: str = "docker-config"
    insecure: bool = False
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        try:
            registry_url(self.url)
        except InvalidReference as exc:
            raise ValueError(f"url: {exc}") from None
        if self.interval is not None and self.cron is not None:
            raise ValueError("interval and cron: give one schedule, not both")
        for key in ("interval", "jitter"):
            value = getattr(self, key)
            if value is not None:
                try:
                    parse_duration(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        if self.cron is not None:
            try:
                Cron(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron: {exc}") from None
        if self.platform != "all":
            try:
                parse_platform(self.platform)
            except SourceError as exc:
                raise ValueError(f"platform: {exc}") from None
        if self.concurrency < 1:
            raise ValueError("concurrency: must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit: must be more than 0")
        if self.max_tags is not None and self.max_tags < 1:
            raise ValueError("max_tags: must be at least 1")
        kind, _, rest = self.credentials.partition(":")
        if not (
            self.credentials in ("docker-config", "none")
            or (kind == "env" and len(rest.split(":")) == 2 and all(rest.split(":")))
            or (kind == "file" and rest)
        ):
            raise ValueError(
                "credentials: expected docker-config, none, env:USER_VAR:PASS_VAR or file:PATH"
            )

    @property
    def name(self) -> str:
        """The registry as metrics, logs and the API name it: ``host[:port]``."""
        return self.url.split("://", 1)[-1].rstrip("/")

    def schedule(self) -> Cron | float:
        """The cron schedule, or the interval in seconds (default 1 hour)."""
        if self.cron is not None:
            return Cron(self.cron)
        return parse_duration(self.interval or "1h")

    def jitter_seconds(self) -> float:
        """The most a scheduled start is delayed at random."""
        if self.jitter is not None:
            return parse_duration(self.jitter)
        period = 3600.0 if self.cron is not None else parse_duration(self.interval or "1h")
        return min(period / 10, 300.0)

    def load_credentials(self) -> tuple[Credentials | None, bool]:
        """The credentials to use, and whether the Docker config may be read; ``ConfigError``
        naming the variable or file (never its content) when they cannot be read."""
        import os  # noqa: PLC0415 - only here, where the environment is read on purpose

        kind, _, rest = self.credentials.partition(":")
        if self.credentials == "docker-config":
            return None, True
        if self.credentials == "none":
            return None, False
        if kind == "env":
            user_var, pass_var = rest.split(":")
            user, password = os.environ.get(user_var), os.environ.get(pass_var)
            if not user or not password:
                raise ConfigError(
                    f"registry {self.name}: credentials: {user_var} and {pass_var} must both "
                    "be set in the environment"
                )
            return Credentials(username=user, password=password), False
        try:
            lines = Path(rest).read_text().splitlines()
        except OSError as exc:
            raise ConfigError(
                f"registry {self.name}: credentials: cannot read {rest}: {exc.strerror}"
            ) from None
        if len(lines) < 2 or not lines[0] or not lines[1]:
            raise ConfigError(
                f"registry {self.name}: credentials: {rest} must hold two lines, the user name "
                "and the password"
            )
        return Credentials(username=lines[0], password=lines[1]), False


class Config(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole configuration file."""

    server: ServerConfig = ServerConfig()
    paths: PathsConfig = msgspec.field(default_factory=PathsConfig)
    output: OutputConfig = OutputConfig()
    feeds: FeedsConfig = FeedsConfig()
    registry: list[RegistryConfig] = []

    def __post_init__(self) -> None:
        names = [r.name for r in self.registry]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"registry: {dup} is configured twice")


def load(path: Path) -> Config:
    """Read and check the configuration at ``path``; ``ConfigError`` naming the bad key."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        # tomllib first: its syntax errors name the line and column.
        tomllib.loads(raw.decode("utf-8", "replace"))
        return msgspec.toml.decode(raw, type=Config, dec_hook=_dec_hook)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_readable(str(exc))}") from None


def _dec_hook(typ: type, obj: object) -> object:
    # msgspec asks only for the types it does not decode itself: here that is Path alone.
    if isinstance(obj, str) and obj:
        return Path(obj).expanduser()
    raise ValueError(f"expected a path, got {obj!r}")


def _readable(message: str) -> str:
    # msgspec says "listen: … - at `$.server`"; people write the key as it is in the file.
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    where = where.rstrip("`").removeprefix("$").lstrip(".")
    return f"{where}.{text}" if where and ":" in text.split()[0] else f"{where}: {text}"


def registry_for(config: Config, host: str) -> RegistryConfig | None:
    """The configured registry whose ``host[:port]`` is ``host`` (none: not ours)."""
    return next((r for r in config.registry if r.name.lower() == host.lower()), None)
