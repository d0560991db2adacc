"""Configuration checks on an image: user, secrets, ports, end of life, services, base image.

``run_checks`` takes the facts the crawler found (the image config blob, the OS, the
package list, the base-image reference) and returns ``MisconfigurationRecord``s plus the OS
with ``eol``/``eol_date`` filled. Nothing here touches the network or the filesystem
except the bundled EOL table (``data/eol.json``).

=============  ========  ==========  ==================================================
id             severity  category    finding
=============  ========  ==========  ==================================================
RS-IMG-001     HIGH      user        runs as root: ``User`` unset/empty, ``root``, uid 0
                                     (``0``, ``0:0``, ``root:root``); ``app:0`` is not root
RS-IMG-002     CRITICAL  secret      provider credential (AWS, GCP, GitHub, GitLab, Slack,
                                     Stripe, npm, PyPI, SendGrid, Docker Hub, Google OAuth)
RS-IMG-003     CRITICAL  secret      PEM / OpenSSH private key
RS-IMG-004     HIGH      secret      JSON Web Token (header decodes to JSON with ``alg``)
RS-IMG-005     HIGH      secret      value of a secret-looking name (``*_PASSWORD``,
                                     ``*_TOKEN``, ``API_KEY`` …) or a password in a URL
RS-IMG-010     MEDIUM    port        remote login port exposed: 22 ssh, 3389 rdp,
                                     5900-5901 vnc, 5985-5986 winrm
RS-IMG-011     HIGH      port        cleartext login port exposed: 23 telnet, 512-514 r*
RS-IMG-012     CRITICAL  port        Docker daemon port exposed: 2375, 2376
RS-IMG-013     LOW       port        database/cache port exposed: 3306, 5432, 1433, 1521,
                                     27017, 6379, 9200, 9300, 11211, 5984, 9042, …
RS-IMG-020     HIGH      eol         OS past end of life (bundled table, judged on ``today``)
RS-IMG-030     MEDIUM    service     remote-access server installed: openssh-server,
                                     dropbear, telnetd, rsh-server, VNC/RDP servers, …
RS-IMG-031     LOW       service     FTP/TFTP server installed: vsftpd, proftpd, …
RS-IMG-040     MEDIUM    base-image  base image not on the trusted list
RS-IMG-041     LOW       base-image  trusted list in force but the base is not declared
=============  ========  ==========  ==================================================

Secrets are searched in ``Env`` values, label keys and values, ``Entrypoint``/``Cmd``
arguments and every history ``created_by``; one record per (check, place, secret). The
evidence names the place (``Env AWS_SECRET_ACCESS_KEY``, ``history[3] created_by``) and
shows the secret redacted (``wJal…(40 chars)``, see ``secrets.redact``): no record, log
line or exception message ever carries a whole secret. A name that may itself be a secret
(a bare Env entry, a label key holding a token) is shown by position (``Env[2]``,
``Labels[0] key``) instead. Whoever prints ``Entrypoint``/``Cmd`` elsewhere (the ``image``
record's config summary) should pass each argument through ``redact_text``.

Ports: one record per risky TCP port (``22/tcp`` or ``22``); UDP/SCTP are not judged.
The base-image policy is off without a trusted list.
"""

from __future__ import annotations

from regsweep.matcher.checks.config import (
    ConfigError,
    config_summary,
    decode_config,
)
from regsweep.matcher.checks.rules import CATALOG, Category, CheckId, CheckSpec, run_checks
from regsweep.matcher.secrets import redact, redact_text

__all__ = [
    "config_summary",
    "CATALOG",
    "Category",
    "CheckId",
    "CheckSpec",
    "ConfigError",
    "decode_config",
    "redact",
    "redact_text",
    "run_checks",
]
