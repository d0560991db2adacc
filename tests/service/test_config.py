"""``regsweep serve --config``: every bad key refused at start with its name; schedules."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regsweep.cli.service import config as cfg
from tests.example import REGSWEEP

GOOD = """
[server]
listen = "127.0.0.1:9108"
[paths]
db = "/tmp/regsweep-test/db.lmdb"
[[registry]]
url = "http://127.0.0.1:5000"
repos = ["team/*"]
interval = "1h30m"
"""


def _load(tmp_path: Path, text: str) -> cfg.Config:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    return cfg.load(path)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (('interval = "1h30m"', 'interval = "6x"'), "registry[0].interval: '6x' is not a duration"),
        (("repos =", "repoz ="), "registry[0]: Object contains unknown field `repoz`"),
        (('listen = "127.0.0.1:9108"', 'listen = "everywhere"'), "server.listen: 'everywhere'"),
        (
            ('url = "http://127.0.0.1:5000"', 'url = "http://u:pw@127.0.0.1:5000"'),
            "registry[0].url: http://u:***@127.0.0.1:5000",
        ),
        (('interval = "1h30m"', 'cron = "61 * * * *"'), "registry[0].cron: '61'"),
        (('interval = "1h30m"', 'interval = "1h"\ncron = "0 * * * *"'), "give one schedule"),
        (('interval = "1h30m"', 'credentials = "vault:x"'), "registry[0].credentials"),
        (('db = "/tmp/regsweep-test/db.lmdb"', "db = 3"), "paths.db: expected a path, got 3"),
        (("[server]", "[server\n"), "not valid TOML"),
    ],
)
def test_a_bad_key_is_named(tmp_path: Path, edit: tuple[str, str], said: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        _load(tmp_path, GOOD.replace(*edit))
    assert said in str(err.value)
    assert "pw" not in str(err.value)


def test_the_good_file_and_its_defaults(tmp_path: Path) -> None:
    conf = _load(tmp_path, GOOD)
    reg = conf.registry[0]
    assert reg.name == "127.0.0.1:5000"
    assert reg.schedule() == 5400.0
    assert reg.jitter_seconds() == 300.0
    assert conf.server.host == "127.0.0.1" and conf.server.port == 9108
    assert conf.output.compression == "none"


def test_the_command_refuses_a_bad_file_before_starting(tmp_path: Path) -> None:
    """Exit 2, one line naming the key; credentials that cannot be read too (never their
    values)."""
    path = tmp_path / "serve.toml"
    path.write_text(GOOD.replace('interval = "1h30m"', 'interval = "soon"'))
    proc = subprocess.run([REGSWEEP, "serve", "--config", str(path)], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 2
    assert "registry[0].interval" in proc.stderr and "Traceback" not in proc.stderr
    path.write_text(GOOD + 'credentials = "env:RS_TEST_USER:RS_TEST_PASS"\n')
    env = {**os.environ, "RS_TEST_USER": "bob"}
    env.pop("RS_TEST_PASS", None)
    proc = subprocess.run([REGSWEEP, "serve", "--config", str(path), "--check"],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert proc.returncode == 2
    assert "RS_TEST_PASS" in proc.stderr
    env["RS_TEST_PASS"] = "hunter2-secret"
    proc = subprocess.run([REGSWEEP, "serve", "--config", str(path), "--check"],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("6h", 21600), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert cfg.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "6x", "h", "1.5h", "-1h", "1m1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        cfg.parse_duration(text)


def _fires(fields: list[set[int]], any_day: bool, any_weekday: bool, t: datetime) -> bool:
    """The cron rule written out plainly, as the oracle: minute, hour, month, and the day
    rule (either day field when both are restricted)."""
    minutes, hours, days, months, weekdays = fields
    cron_weekday = (t.weekday() + 1) % 7  # cron: Sunday 0
    day = t.day in days
    weekday = cron_weekday in weekdays or (cron_weekday == 0 and 7 in weekdays)
    day_ok = (day and weekday) if (any_day or any_weekday) else (day or weekday)
    return t.minute in minutes and t.hour in hours and t.month in months and day_ok


@settings(max_examples=60, deadline=None)
@given(
    minute=st.sampled_from(["*", "*/15", "0", "5,35", "10-20/5"]),
    hour=st.sampled_from(["*", "3", "*/6", "8-17"]),
    day=st.sampled_from(["*", "1", "13", "1-7", "*/10"]),
    month=st.sampled_from(["*", "2", "1-6", "*/3"]),
    weekday=st.sampled_from(["*", "0", "1-5", "6,7", "5"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_cron_next_after_matches_a_minute_by_minute_walk(
    minute: str, hour: str, day: str, month: str, weekday: str, start: datetime
) -> None:
    text = f"{minute} {hour} {day} {month} {weekday}"
    cron = cfg.Cron(text)
    ranges = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
    fields = [cfg.Cron._field(f, lo, hi) for f, (lo, hi) in zip(text.split(), ranges, strict=True)]
    t0 = start.replace(tzinfo=UTC)
    got = cron.next_after(t0)
    assert got > t0 and _fires(fields, day == "*", weekday == "*", got)
    # Nothing fires in between: every minute checked, skipping only whole days or hours in
    # which the oracle says no minute can fire.
    t = t0.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t < got:
        assert not _fires(fields, day == "*", weekday == "*", t), t
        if not any(_fires(fields, day == "*", weekday == "*", t.replace(hour=h, minute=m))
                   for h in fields[1] for m in sorted(fields[0])[:1]):  # fmt: skip
            t = (t + timedelta(days=1)).replace(hour=0, minute=0)
        elif t.hour not in fields[1]:
            t = (t + timedelta(hours=1)).replace(minute=0)
        else:
            t += timedelta(minutes=1)


def test_the_next_crawl_follows_the_schedule_with_jitter_and_backs_off_on_failure() -> None:
    """``next_delay``: an interval from the last start plus jitter within its bound; a cron
    schedule's next minute; after failures 30 s doubling up to the period, ±20 %."""
    import random

    from regsweep.cli.service.core import next_delay

    rng = random.Random(3)
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    hourly = cfg.RegistryConfig(url="h:5000", interval="1h")
    for _ in range(200):
        d = next_delay(hourly, ok=True, started=start, failures=0,
                       now=start + timedelta(minutes=10), rng=rng)  # fmt: skip
        assert 3000 <= d <= 3000 + 300
    # A crawl that took longer than the interval is followed at once (plus jitter).
    late = next_delay(hourly, ok=True, started=start, failures=0,
                      now=start + timedelta(hours=2), rng=rng)  # fmt: skip
    assert 0 <= late <= 300
    cron = cfg.RegistryConfig(url="h:5000", cron="30 * * * *", jitter="1s")
    d = next_delay(cron, ok=True, started=start, failures=0,
                   now=start + timedelta(minutes=5), rng=rng)  # fmt: skip
    assert 25 * 60 <= d <= 25 * 60 + 1
    backoff = [next_delay(hourly, ok=False, started=start, failures=n, now=start, rng=rng)
               for n in range(1, 10)]  # fmt: skip
    for n, d in enumerate(backoff, start=1):
        expected = min(30 * 2 ** (n - 1), 3600)
        assert 0.8 * expected <= d <= 1.2 * expected
    quick = cfg.RegistryConfig(url="h:5000", interval="40s")
    assert max(next_delay(quick, ok=False, started=start, failures=9, now=start, rng=rng)
               for _ in range(50)) <= 1.2 * 40  # fmt: skip
