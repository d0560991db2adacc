"""The ``regsweep`` command line as a user meets it: the console script and its exit codes."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from regsweep.cli.main import main
from tests import paths

REGSWEEP = Path(sys.executable).parent / "regsweep"


def test_console_script_prints_the_installed_version() -> None:
    """The installed ``regsweep`` entry point runs and reports the distribution's version."""
    out = subprocess.run(
        [str(REGSWEEP), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"regsweep, version {version('regsweep')}"


def test_versions_compare_prints_the_order_symbol() -> None:
    """``versions compare`` prints <, = or > exactly as the scheme orders A against B."""
    runner = CliRunner()
    cases = [
        ("dpkg", "1.0~rc1", "1.0", "<"),
        ("dpkg", "0:1.0", "1.0-0", "="),
        ("rpm", "1:1.0-1", "2.0-1", ">"),
        ("pep440", "1.0.post1", "1.0", ">"),
    ]
    for scheme, a, b, symbol in cases:
        result = runner.invoke(main, ["versions", "compare", scheme, a, b])
        assert result.exit_code == 0, result.output
        assert result.output == f"{symbol}\n"


def test_invalid_version_is_a_usage_error_with_exit_2() -> None:
    """A version that does not parse exits 2 with a message naming it, and prints no order."""
    proc = subprocess.run(
        [str(REGSWEEP), "versions", "compare", "dpkg", "1:", "1.0"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "invalid dpkg version '1:'" in proc.stderr


def test_unknown_scheme_is_a_usage_error() -> None:
    """Naming a scheme that does not exist is rejected by the argument parser (exit 2)."""
    result = CliRunner().invoke(main, ["versions", "compare", "nosuch", "1", "2"])
    assert result.exit_code == 2


def test_versions_sort_orders_stdin_oldest_first() -> None:
    """``versions sort`` reads stdin and prints the versions in scheme order."""
    result = CliRunner().invoke(
        main, ["versions", "sort", "dpkg"], input="1.0\n1.0~rc1\n1:0.1\n0.9\n"
    )
    assert result.exit_code == 0
    assert result.output.split() == ["0.9", "1.0~rc1", "1.0", "1:0.1"]


def test_versions_key_prints_hex_keys_in_version_order() -> None:
    """``versions key`` prints keys whose byte order is the version order."""
    result = CliRunner().invoke(main, ["versions", "key", "dpkg", "1.0~rc1", "1.0"])
    assert result.exit_code == 0
    k1, k2 = (bytes.fromhex(line.split("\t")[0]) for line in result.output.splitlines())
    assert k1 < k2


_SILENT_PROBE = """
import sys
from regsweep.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
assert "structlog" not in sys.modules, "a silent command imported structlog"
"""


def test_silent_commands_never_import_structlog(tmp_path: Path) -> None:
    """``match``, ``versions`` and ``schema`` skip configuring logs (structlog and rich cost
    0.2 s of start-up); so nothing on their paths may import structlog, or a log line would
    go out unconfigured — structlog's default writes to stdout, into the NDJSON."""
    from regsweep.matcher.advisories import load
    from regsweep.matcher.index import store

    db = tmp_path / "db.lmdb"
    store.build(db, *load(paths.DATA / "advisories" / "osv"))
    line = (
        b'{"kind":"package","schema_version":1,"package":{"name":"firefox-esr",'
        b'"version":"91.4.0esr-1~deb10u1","type":"deb","ecosystem":"Debian:10"}}\n'
    )
    for args, stdin in (
        (["match", "--db", str(db)], line),
        (["versions", "compare", "dpkg", "1.0", "1.1"], b""),
        (["schema"], b""),
    ):
        out = subprocess.run(
            [sys.executable, "-c", _SILENT_PROBE, *args], input=stdin, capture_output=True
        )
        assert out.returncode == 0, (args, out.stderr.decode())
        assert out.stdout, args  # a vulnerability, a comparison, the schema
