"""Regenerate ``pep440-legacy-golden.txt``: packaging 21.3's order of non-PEP 440 versions.

Run from the repo root (needs PyPI, to install ``packaging==21.3``)::

    .venv/bin/python tests/data/versions/gen_pep440_legacy.py

packaging 22 dropped ``LegacyVersion``; 21.3 is the last release whose ``parse()`` falls
back to it, and the order pip-audit and osv used for PyPI strings that are not PEP 440.
The script installs 21.3 into a temporary ``--target`` folder, runs a child interpreter with
that folder first on its path, and writes what ``parse(a)`` vs ``parse(b)`` says for

* every pair of the real non-PEP 440 strings;
* every adversarial string against its neighbours in 21.3's own order (the close calls),
  against seeded random partners, and against the PEP 440 anchors below (which checks
  that both sides agree on which strings are legacy: legacy sorts before ``0.dev0``).

Sources of the strings:

* the ``versions`` lists and ``ECOSYSTEM`` range events of the PyPA advisory database
  (pypa/advisory-database, CC-BY-4.0) in ``../shared/data/advisories/osv/pypi``, keeping
  those that current ``packaging`` rejects (``0.3m1``, ``2013-09-11T19-27-10`` ...), used
  when that folder is present;
* the hand-written adversarial strings below, and seeded random ones.

Only strings regsweep accepts for the legacy fallback are written (printable ASCII, no
whitespace), so every line has the ``A OP B`` shape ``read_vectors`` reads.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
OSV = REPO.parent / "shared" / "data" / "advisories" / "osv" / "pypi"
OUT = HERE / "pep440-legacy-golden.txt"

# PEP 440 versions around the legacy/PEP 440 border; 0.dev0 is the smallest PEP 440 version.
ANCHORS = ["0.dev0", "0", "0.0.0", "1.0", "1.0.post1", "1!0.dev0", "v0"]


def _words(text: str) -> list[str]:
    """The whitespace-separated words of ``text`` (none of these strings holds a space)."""
    return text.split()


ADVERSARIAL = [
    # Replacement map: pre/preview/rc -> c, dev -> @, "-" -> "final-".
    *_words(r"""
        1.0-pre-x 1.0-preview-x 1.0-rc-x 1.0-c-x 1.0-dev-x 1.0-@ 1.0@ 1.0-PRE-X
        1.0-Preview-X 1.0-RC-x 1.0-DEV-x 1.0.prex 1.0.rcx 1.0.devx 1.0-prerelease
        1.0-previews 1.0-rcs 1.0-devel 1.0pre-1x 1.0dev-1x
    """),
    # "-" before a pre-release tag is dropped, trailing zeros of a number series too.
    *_words(r"""
        1.0-final 1.0-final-1 1.0final 1.0.final 1.0-FINAL final 1.0-finale 1.0-fin
        1.0-finalz 1.0--1x 1.0--- 1.0- 1.0-- 1.0-a-b 1.0-a-x 1.0-beta-2.x 1.0-alpha-x 1.0-_
        1.0-foo 1.0-zzz 1.0-g 1.0-f 1.0-0-x 1.0-0.0-x 1.0.0-0-final 1.0-00000000-x
        1.0-000000000-x -1 - -- -a -final *final *final-
    """),
    # Empty components and dots.
    *_words(r"""
        . .. ... 1..0 .1 1. 1.0. 1..2.3 .1.0 1... .x x.
    """),
    # Zeros and padding: eight-digit pads, nine-digit runs are not padded nor dropped.
    *_words(r"""
        1.0.0.0x 1.00000000.x 1.000000000.x 0.0.0-x 00000000x 000000000x 0x 00x 1.0.0-0.0-x
        1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0x 123456789x 99999999x
        100000000x 12345678x 1234567x 01234567x 1x.123456789012345678901234567890
        1x.99999999999999999999999999999999999999
    """),
    # Characters the split leaves as their own parts.
    *_words(r"""
        1.0+foo+bar 1.0_foo 1.0~rc1 1.0~~ 1.0^1 1:2.0 2.0!x 1!x 1.0#1 1.0* 1.0/2 1.0\x [1.0]
        (1) 1.0; 1.0,1 1.0" 1.0' 1.0` 1.0{} 1.0|x 1.0$ 1.0% 1.0& 1.0= 1.0? 1.0<2 1.0>2 ~ ! *
        @ _ + 1.0+_+ 1.0+ 1.0++ 1.0+_foobar 1.0+foo&asd 1.0+1+1 1.0+a+ 1.0+a..b 1!2!3
        1.0_-_1 1.0:_:1
    """),
    # Letters only, any case.
    *_words(r"""
        a Z abc ABC aBc trunk latest master HEAD dev pre rc preview c DEV Pre RC post rev r
        v vv1.0 v1.0.x V1.0-X x1.0 zzzz fin finalfinal b beta alpha ALPHA
    """),
    # PEP 440-like shapes that are not PEP 440.
    *_words(r"""
        1.0a1b2 1.0rc1.x 1.0-r1-x 1.0.post1.post2 1.0.dev1.dev2 1.0a.b 1.0-r-x 2.0.0-final
        2.0.0.final 2.0.0final 2.0.0-final1 1.0-1-1 1.0-1.1 1.0-1a 1.0.post-1a 1.0a1-a
        1.0-1-final 1.0-2-final 1.0-1-rc1 1.0rc1-1-x 1e10 1.0e-3 0x1F 1_000 1,000
    """),
    # Git hashes, dates and timestamps.
    *_words(r"""
        4e2565483d0ffcadc719bd44893fb7f609bb5f12 deadbeef 0abc 00abc DEADBEEF 2019-09-12
        2019.09.12-x 20190912T1200 2013-01-21T20:33:09+0100 2013-09-11T19-27-10
        2013-09-11t19-27-10
    """),
]

_TOKENS = _words("""
    0 1 2 00 01 10 123 00000000 123456789 . - _ + ! ~ : @ * a A alpha b beta c rc RC pre
    preview post rev r dev DEV final FINAL fin x z v
""")


def _osv_strings() -> list[str]:
    """Every version string of the PyPI advisories that current packaging rejects."""
    if not OSV.is_dir():
        print(f"note: {OSV} not found; adversarial strings only", file=sys.stderr)
        return []
    import yaml

    found: set[str] = set()
    for path in sorted(OSV.rglob("*.yaml")):
        record = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for affected in record.get("affected") or []:
            found.update(str(v) for v in affected.get("versions") or [])
            for rng in affected.get("ranges") or []:
                if rng.get("type") == "ECOSYSTEM":
                    for event in rng.get("events") or []:
                        found.update(str(v) for v in event.values())
    out = []
    for v in sorted(found):
        try:
            Version(v)
        except InvalidVersion:
            out.append(v)
    return out


def _acceptable(v: str) -> bool:
    """What regsweep takes for the legacy fallback: printable ASCII without whitespace."""
    return bool(v) and all("!" <= c <= "~" for c in v)


_CHILD = r"""
import functools, json, sys, warnings
warnings.simplefilter("ignore")  # LegacyVersion's DeprecationWarning
import packaging
from packaging.version import LegacyVersion, parse
assert packaging.__version__ == "21.3", packaging.__version__
strings, pairs = json.load(sys.stdin)
parsed = [parse(s) for s in strings]
def cmp(i, j):
    a, b = parsed[i], parsed[j]
    return (a > b) - (a < b)
order = sorted(range(len(strings)), key=functools.cmp_to_key(cmp))
json.dump({
    "legacy": [isinstance(p, LegacyVersion) for p in parsed],
    "order": order,
    "cmp": [cmp(i, j) for i, j in pairs],
}, sys.stdout)
"""


def _run_21_3(target: Path, strings: list[str], pairs: list[tuple[int, int]]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps([strings, pairs]),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(proc.stdout)


def main() -> None:
    rnd = random.Random(440)
    real = [v for v in _osv_strings() if _acceptable(v)]
    generated = sorted(
        {"".join(rnd.choice(_TOKENS) for _ in range(rnd.randint(1, 7))) for _ in range(200)}
    )
    adversarial = [v for v in dict.fromkeys(ADVERSARIAL + generated) if v not in real]
    strings = real + adversarial + ANCHORS
    index = {s: i for i, s in enumerate(strings)}
    assert all(_acceptable(s) and not re.search(r"\s", s) for s in strings)

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                tmp,
                "packaging==21.3",
            ],
            check=True,
        )
        # First pass: 21.3's own order, to find each string's neighbours.
        order = _run_21_3(Path(tmp), strings, [])["order"]
        pairs: set[tuple[int, int]] = set()
        nreal = len(real)
        for i in range(nreal):
            for j in range(i + 1, nreal):
                pairs.add((i, j))
        position = {s: p for p, s in enumerate(order)}
        for s in adversarial + real:
            i = index[s]
            p = position[i]
            for q in (p - 2, p - 1, p + 1, p + 2):
                if 0 <= q < len(order):
                    pairs.add((i, order[q]))
            for _ in range(8):
                pairs.add((i, rnd.randrange(len(strings))))
            for anchor in ("0.dev0", "0", "1.0"):
                pairs.add((i, index[anchor]))
        # Random orientation, so that both "<" and ">" lines occur.
        oriented = sorted((i, j) if rnd.random() < 0.5 else (j, i) for i, j in pairs if i != j)
        result = _run_21_3(Path(tmp), strings, oriented)
    # The real strings were picked as "not PEP 440" by current packaging; 21.3 must agree.
    assert all(result["legacy"][index[s]] for s in real)

    ops = {-1: "<", 0: "=", 1: ">"}
    header = [
        "# Generated by tests/data/versions/gen_pep440_legacy.py; do not edit by hand.",
        "# Expected: packaging 21.3 (the last release with LegacyVersion), parse(A) vs parse(B).",
        "# Strings: the non-PEP 440 versions of the PyPA advisory database",
        "# (pypa/advisory-database 2024-10-10 snapshot, CC-BY-4.0), hand-written and seeded",
        "# random adversarial strings, and PEP 440 anchors (legacy sorts below 0.dev0).",
        f"# {len(real)} real + {len(adversarial)} adversarial strings, {len(oriented)} pairs.",
        "# Format: A OP B with OP in < = >.",
    ]
    lines = [
        f"{strings[i]} {ops[r]} {strings[j]}"
        for (i, j), r in zip(oriented, result["cmp"], strict=True)
    ]
    OUT.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(lines)} pairs)")


if __name__ == "__main__":
    main()
