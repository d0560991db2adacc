"""Regenerate ``pep440-pypi-sample.txt``: real PEP 440 versions for the differential tests.

Run from the repo root (needs ``../shared/data``)::

    .venv/bin/python tests/data/versions/gen_pep440_sample.py

The sample is drawn (seeded) from the ``versions`` lists of the PyPA advisory database
(pypa/advisory-database, CC-BY-4.0) in ``../shared/data/advisories/osv/pypi``: every
string that is not in ``packaging``'s normal form or has an epoch or a local part, a share
of those with pre/post/dev parts or many components, and a share of plain ones. The file
holds no expected results: ``test_pep440.py`` asks the installed ``packaging`` at test time.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
OSV = HERE.parent.parent.parent.parent / "shared" / "data" / "advisories" / "osv" / "pypi"
OUT = HERE / "pep440-pypi-sample.txt"

_BLOCK = re.compile(r"^( *)versions:\n((?:\1 *- .*\n)+)", re.M)
_ITEM = re.compile(r"""^ *- (?:'([^']*)'|"([^"\\]*)"|(.*?))[ \t]*$""", re.M)


def main() -> None:
    found: set[str] = set()
    for path in sorted(OSV.rglob("*.yaml")):
        for block in _BLOCK.finditer(path.read_text(encoding="utf-8")):
            for m in _ITEM.finditer(block.group(2)):
                found.add(next(g for g in m.groups() if g is not None))
    odd, shaped, plain = [], [], []
    for v in sorted(found):
        try:
            parsed = Version(v)
        except InvalidVersion:
            continue
        if str(parsed) != v or parsed.epoch or parsed.local:
            odd.append(v)
        elif parsed.is_prerelease or parsed.is_postrelease or len(parsed.release) > 3:
            shaped.append(v)
        else:
            plain.append(v)
    rnd = random.Random(440)
    sample = sorted(odd + rnd.sample(shaped, min(900, len(shaped))) + rnd.sample(plain, 900))
    header = [
        "# Real PEP 440 versions from the PyPA advisory database (pypa/advisory-database,",
        "# 2024-10-10 snapshot, CC-BY-4.0), sampled by tests/data/versions/gen_pep440_sample.py.",
        f"# {len(odd)} not in normal form or with epoch/local, the rest seeded samples.",
        "# One version a line; the expected order comes from packaging at test time.",
    ]
    OUT.write_text("\n".join(header + sample) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(sample)} versions)")


if __name__ == "__main__":
    main()
