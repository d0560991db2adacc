"""Reference tools as test oracles: apt_pkg, rpm and dpkg, run as the machine has them.

python3-apt and python3-rpm import only under Debian's ``/usr/bin/python3``, not in the
project's venv, so the pairs go through one subprocess per batch as JSON lines.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"

_BATCH = r"""
import json, sys
kind = sys.argv[1]
if kind == "apt":
    import apt_pkg
    apt_pkg.init_system()
    cmp = apt_pkg.version_compare
elif kind == "rpm":
    import rpm
    def evr(v):
        e, _, rest = v.partition(":") if ":" in v else ("", "", v)
        ver, _, rel = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return (e or None, ver, rel)
    def cmp(a, b):
        return rpm.labelCompare(evr(a), evr(b))
elif kind == "rpmvercmp":
    from rpm import labelCompare
    def cmp(a, b):
        # rpmvercmp on bare strings: compare them as versions with equal epoch and release.
        return labelCompare((None, a, ""), (None, b, ""))
out = []
for line in sys.stdin:
    a, b = json.loads(line)
    r = cmp(a, b)
    out.append((r > 0) - (r < 0))
json.dump(out, sys.stdout)
"""


def _system_python_has(module: str) -> bool:
    if not shutil.which(SYSTEM_PYTHON):
        return False
    proc = subprocess.run([SYSTEM_PYTHON, "-c", f"import {module}"], capture_output=True)
    return proc.returncode == 0


def _batch(kind: str, module: str, pairs: Sequence[tuple[str, str]]) -> list[int]:
    if not _system_python_has(module):
        pytest.fail(
            f"{SYSTEM_PYTHON} cannot import {module}: install python3-{module.split('_')[0]} "
            "(make test does this as root)"
        )
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-c", _BATCH, kind], input=data, capture_output=True, text=True, check=True
    )
    result: list[int] = json.loads(proc.stdout)
    return result


def apt_compare(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """``apt_pkg.version_compare`` on every pair, as -1/0/1, in one subprocess."""
    return _batch("apt", "apt_pkg", pairs)


def rpm_label_compare(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """``rpm.labelCompare`` on ``[epoch:]version[-release]`` strings, as -1/0/1.

    A missing release is passed as the empty string (what regsweep's rpm scheme means by it).
    """
    return _batch("rpm", "rpm", pairs)


def rpm_vercmp(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """rpmvercmp on bare version strings (no epoch/release split), as -1/0/1."""
    return _batch("rpmvercmp", "rpm", pairs)


def dpkg_compare(a: str, b: str) -> int:
    """``dpkg --compare-versions``: the authority itself, one process per pair (use sparingly)."""
    if subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0:
        return -1
    if subprocess.run(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0:
        return 0
    return 1
