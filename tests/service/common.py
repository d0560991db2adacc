"""What the service's tests (and ``bench_serve``) share: a free loopback port, the
registry configuration that sends its notifications to the service, a plain HTTP call."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def notifications(port: int, token: str) -> str:
    """Distribution's ``notifications`` section pointing at a service on ``port``."""
    return f"""notifications:
  endpoints:
    - name: regsweep
      url: http://127.0.0.1:{port}/v1/notifications
      headers:
        Authorization: [Bearer {token}]
      timeout: 2s
      threshold: 3
      backoff: 500ms
"""


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """``(status, body)``; status 0 when nothing listens."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (ConnectionError, urllib.error.URLError):
        return 0, b""
