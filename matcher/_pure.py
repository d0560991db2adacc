"""The one switch between the compiled (Cython) modules and their pure-Python references.

``REGSWEEP_PURE_PYTHON`` set to anything but empty or ``0`` in the environment before
``regsweep.matcher`` is imported makes the version schemes (``versions``), the identity table
(``identity``) and the interval-table queries (``index.table``) use their pure-Python
references, which have the same API and behaviour; the test suite runs under both. It is
read once, here, so those modules can never disagree about which half they run.

This module imports nothing but ``os``: the modules that consult it are low-level ones.
"""

from __future__ import annotations

import os

__all__ = ["PURE_PYTHON"]

#: True when ``REGSWEEP_PURE_PYTHON`` asks for the pure-Python references.
PURE_PYTHON: bool = os.environ.get("REGSWEEP_PURE_PYTHON", "") not in ("", "0")
