"""Where the suite's files are, said once: test modules live at different depths."""

from __future__ import annotations

from pathlib import Path

#: The repository's root.
REPO = Path(__file__).resolve().parent.parent
#: The test data (real advisories, analyzer inputs, version vectors).
DATA = REPO / "tests" / "data"
