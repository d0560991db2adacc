"""Build regsweep: map the repo's folders onto the ``regsweep.*`` namespace, compile Cython.

The repo root shows the architecture (``crawler/``, ``matcher/``, ``cli/``); the installed
package is ``regsweep.crawler``, ``regsweep.matcher`` and ``regsweep.cli`` so that nothing
generic like ``cli`` lands at the top of site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
FOLDERS = {"crawler": "crawler", "matcher": "matcher", "cli": "cli"}


def _packages() -> tuple[list[str], dict[str, str]]:
    # ``regsweep`` itself is an implicit namespace package (PEP 420): it has no code of its own.
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for top, folder in FOLDERS.items():
        for init in sorted((HERE / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(HERE / folder)
            dotted = ".".join(("regsweep", top, *rel.parts))
            packages.append(dotted)
            package_dir[dotted] = init.parent.relative_to(HERE).as_posix()
    return packages, package_dir


def _extensions() -> list[Extension]:
    # REGSWEEP_BUILD_ONLY=dpkg,rpm builds just those modules: several engineers (and helpers)
    # rebuild one scheme at a time without racing on the others' generated C files. Every
    # scheme runs on _api, their shared Python-facing half: name it as well when _api.pyx or
    # _spec.pxd changed.
    only = {s for s in os.environ.get("REGSWEEP_BUILD_ONLY", "").split(",") if s}
    exts = []
    for pyx in sorted(HERE.glob("matcher/**/*.pyx")):
        rel = pyx.relative_to(HERE).with_suffix("")
        if only and rel.name not in only:
            continue
        module = ".".join(("regsweep", *rel.parts))
        exts.append(
            Extension(
                module,
                [rel.with_suffix(".pyx").as_posix()],
                extra_compile_args=["-O3"],
            )
        )
    return exts


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.pyi", "*.pxd", "py.typed", "data/*"]},
    ext_modules=cythonize(
        _extensions(),
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        # The repo folders are not named ``regsweep/``, so package-relative cimports cannot be
        # resolved; shared .pxd files of types and inline functions only (_keybuf, _spec) are
        # cimported by bare name from here instead. Nothing cimports a module's own objects:
        # the schemes reach _api's at run time through a capsule (see _spec.pxd).
        include_path=["matcher/versions/compiled"],
        annotate=bool(os.environ.get("REGSWEEP_ANNOTATE")),
    ),
    zip_safe=False,
)
