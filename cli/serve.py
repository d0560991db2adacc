"""``regsweep serve --config FILE``: the registry crawler as a long-running service.

The configuration (TOML, ``cli/service/config.py``) is read and checked whole before
anything starts, credentials included: a bad key or an unreadable secret exits 2 with one
line naming it. Then ``cli/service/core.py`` runs until SIGTERM or SIGINT, with the HTTP
API of ``cli/service/app.py``; exit 0 after a clean stop.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import structlog
from click.core import ParameterSource

from regsweep.cli import logs
from regsweep.cli.common import run_async, usage_error
from regsweep.cli.service import config as cfg


@click.command(name="serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The service configuration (TOML).",
)
@click.option("--check", is_flag=True, help="Check the configuration and exit.")
def serve_command(config_path: Path, check: bool) -> None:
    """Crawl registries on schedule, scan on push, re-match on new advisories; serve an API."""
    try:
        conf = cfg.load(config_path)
        for registry in conf.registry:
            registry.load_credentials()
    except cfg.ConfigError as exc:
        usage_error(str(exc))
    token = os.environ.get(conf.server.token_env) or None
    parent = click.get_current_context().parent
    if parent is not None and parent.get_parameter_source("log_level") is ParameterSource.DEFAULT:
        # A service logs every crawl's start and end (the one-shot commands' default,
        # warnings only, would leave its log silent while all is well).
        logs.configure("info")
    if check:
        click.echo(f"{config_path}: ok ({len(conf.registry)} registries)", err=True)
        return
    # Imported here: aiohttp.web and the crawler are only needed when the service runs.
    from regsweep.cli.service.app import serve  # noqa: PLC0415
    from regsweep.cli.service.core import Service  # noqa: PLC0415

    if token is None:
        structlog.get_logger("regsweep.serve").warning(
            "write_endpoints_disabled",
            reason=f"{conf.server.token_env} is not set: POST /v1/scan and "
            "/v1/notifications refuse every request",
        )
    sys.exit(run_async(Service(conf, token=token).run(serve=serve)))
