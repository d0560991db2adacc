"""The suite's common inputs, made the way users make them: the ``make run`` example image
(real dpkg, apk, Python and npm metadata, deterministic digests) and an advisory index of
the bundled real feed samples, built by ``regsweep db build``. Said once here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import paths

REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def example_image(layout: Path) -> Path:
    """Write the example OCI layout (Debian amd64 + Alpine arm64) to ``layout``."""
    subprocess.run(
        [sys.executable, str(paths.REPO / "scripts/make-example-image.py"), str(layout)],
        check=True,
    )
    return layout


def advisory_index(path: Path) -> Path:
    """Build an index of ``tests/data/advisories`` (OSV and secdb samples) at ``path``."""
    adv = paths.DATA / "advisories"
    subprocess.run(
        [REGSWEEP, "db", "build", "--db", str(path), str(adv / "osv"), str(adv / "secdb")],
        check=True,
        capture_output=True,
    )
    return path
