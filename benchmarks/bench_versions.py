"""Version-scheme speed: regsweep's compiled compare beside the peers, on the same pairs.

    python -m benchmarks.bench_versions [--pairs N] [--no-write]

For each scheme, pairs are drawn (seeded) from real version strings: ``apt-cache dumpavail``
and the fixed versions of ``../shared/data`` advisories where present, plus realistic
generated ones (``regsweep.matcher.benchmark.corpus``). Every rate is a Python loop
``for a, b in pairs: f(a, b)`` so that the call overhead is counted the same way for everyone:

* ``compiled``, ``pure``, ``key`` and ``key compare``: what ``regsweep bench versions``
  prints (``regsweep.matcher.benchmark.measure_scheme``): ``versions.<scheme>.compare``
  (Cython), the pure reference module's, ``key_many`` over the corpus (versions keyed per
  second), and ``ka < kb`` on precomputed keys (what the interval index does);
* peers: ``apt_pkg.version_compare`` and ``rpm.labelCompare`` (run by ``/usr/bin/python3``
  on the same pairs file), ``packaging.version.Version`` (parse both, compare) and univers.

Targets (issue "Foundation"): dpkg compare >= 1.0x apt_pkg; key compare >= 3x apt_pkg;
pep440 >= 20x packaging; every scheme >= 50x univers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import SHARED, best_of, write_section
from regsweep.matcher import benchmark, versions
from regsweep.matcher.versions import Scheme

SYSTEM_PYTHON = "/usr/bin/python3"
DATA = SHARED / "data"

# ----------------------------------------------------------------------------- corpora


def _vector_tokens(path: Path) -> Iterator[str]:
    """Both sides of every ``A OP B`` line of a vector file."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            yield parts[0]
            yield parts[2]


def _osv_event_versions(folder: Path, *, yaml_files: bool = False) -> Iterator[str]:
    """``introduced``/``fixed``/``last_affected`` versions and ``versions`` lists of OSV files."""
    if not folder.is_dir():
        return
    if yaml_files:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        files = sorted(folder.rglob("*.yaml"))
        docs: Iterable[dict[str, object]] = (yaml.load(f.read_text(), Loader=loader) for f in files)
    else:
        docs = (json.loads(f.read_bytes()) for f in sorted(folder.rglob("*.json")))
    for doc in docs:
        for aff in doc.get("affected", []) or []:  # type: ignore[union-attr]
            yield from (v for v in aff.get("versions", []) or [] if isinstance(v, str))
            for rng in aff.get("ranges", []) or []:
                for ev in rng.get("events", []) or []:
                    for kind in ("introduced", "fixed", "last_affected"):
                        v = ev.get(kind)
                        if isinstance(v, str) and v != "0":
                            yield v


def _apt_versions() -> Iterator[str]:
    try:
        out = subprocess.run(
            ["apt-cache", "dumpavail"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return
    for line in out.splitlines():
        if line.startswith("Version: "):
            yield line[9:].strip()


def _alpine_versions() -> Iterator[str]:
    folder = DATA / "advisories" / "alpine-secdb"
    if folder.is_dir():
        for f in folder.rglob("*.yaml"):
            yield from re.findall(r"^\s+([0-9][^\s:]*-r\d+):\s*$", f.read_text(), re.M)
    yield from _vector_tokens(DATA / "vectors" / "osv-scalibr" / "alpine-versions.txt")


def corpus(scheme: str, rng: random.Random) -> tuple[list[str], int]:
    """Distinct real version strings for ``scheme`` that it accepts, topped up with generated
    ones as ``regsweep bench versions`` does; and how many are real."""
    osv = DATA / "advisories" / "osv"
    vec = DATA / "vectors"
    real: Iterable[str]
    match scheme:
        case "dpkg":
            real = [*_apt_versions(), *_osv_event_versions(osv / "debian")]
        case "rpm":
            real = [*_vector_tokens(vec / "osv-scalibr" / "redhat-versions.txt")]
        case "apk":
            real = [*_alpine_versions()]
        case "pep440":
            real = [*_osv_event_versions(osv / "pypi", yaml_files=True)]
        case "semver":
            real = [*_osv_event_versions(osv / "crates"), *_osv_event_versions(osv / "go")]
        case "maven":
            real = [*_vector_tokens(vec / "osv-scalibr" / "maven-versions.txt")]
        case "gem":
            real = [*_vector_tokens(vec / "osv-scalibr" / "rubygems-versions.txt")]
        case "composer":
            real = [*_vector_tokens(vec / "osv-scalibr" / "packagist-versions.txt")]
        case _:
            raise ValueError(scheme)
    # Real strings first; generated ones only fill a thin corpus.
    return benchmark.corpus(Scheme(scheme), real, rng)


# ----------------------------------------------------------------------------- peers

_SYSTEM_LOOP = r"""
import json, sys, time
kind, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = [tuple(p) for p in json.load(open(path))]
if kind == "apt":
    import apt_pkg
    apt_pkg.init_system()
    f = apt_pkg.version_compare
    args = pairs
else:
    import rpm
    f = rpm.labelCompare
    def evr(v):
        e, _, rest = v.partition(":") if ":" in v else ("", "", v)
        ver, _, rel = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return (e or None, ver, rel)
    args = [(evr(a), evr(b)) for a, b in pairs]
best = 1e9
for _ in range(repeat):
    t0 = time.perf_counter()
    for a, b in args:
        f(a, b)
    best = min(best, time.perf_counter() - t0)
print(len(pairs) / best)
"""


def system_python_rate(kind: str, pairs: list[tuple[str, str]]) -> float | None:
    """Pairs/s of apt_pkg or python3-rpm, timed inside ``/usr/bin/python3`` on the same pairs."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(pairs, fh)
    try:
        proc = subprocess.run(
            [SYSTEM_PYTHON, "-c", _SYSTEM_LOOP, kind, fh.name, "3"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    finally:
        Path(fh.name).unlink(missing_ok=True)
    return float(proc.stdout) if proc.returncode == 0 else None


def debian_module(name: str) -> Any:
    """Debian's ``apt_pkg`` or ``rpm`` imported into *this* interpreter, so both sides of a
    ratio pay the same call overhead (the venv's CPython and Debian's differ by ~20 ns a
    call). They are built for the same CPython ABI (3.11): adding Debian's dist-packages to
    the path is enough. None where the package is not installed."""
    dist = "/usr/lib/python3/dist-packages"
    if dist not in sys.path:
        sys.path.append(dist)
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


UNIVERS_CLASS = {
    "dpkg": "DebianVersion",
    "rpm": "RpmVersion",
    "apk": "AlpineLinuxVersion",
    "pep440": "PypiVersion",
    "semver": "SemverVersion",
    "maven": "MavenVersion",
    "gem": "RubygemsVersion",
    # SemVer with a stripped "v": a speed peer only (it misorders Composer's suffixes).
    "composer": "ComposerVersion",
}


def _parse_both_rate(parse: Callable[[str], object], pairs: list[tuple[str, str]]) -> float:
    def run() -> None:
        for a, b in pairs:
            parse(a) < parse(b)  # type: ignore[operator]  # noqa: B015 - the comparison is the work

    return len(pairs) / best_of(run, repeat=5)


def _valid_for(
    parse: Callable[[str], object], pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    out = []
    for a, b in pairs:
        try:
            parse(a)
            parse(b)
        except Exception:  # noqa: BLE001 - any peer failure just drops the pair from its run
            continue
        out.append((a, b))
    return out


# ----------------------------------------------------------------------------- main


def _loop_rate(f: Callable[[str, str], int], pairs: list[tuple[str, str]]) -> float:
    def run() -> None:
        for a, b in pairs:
            f(a, b)

    return len(pairs) / best_of(run, repeat=5)


def bench_scheme(scheme: str, n_pairs: int, rng: random.Random) -> dict[str, float | int | None]:
    """Measure one scheme; returns rates in pairs/s (None where a peer is unavailable)."""
    compiled = versions.module(scheme)
    strings, n_real = corpus(scheme, rng)
    pairs = benchmark.draw_pairs(strings, n_pairs, rng)
    ours = benchmark.measure_scheme(Scheme(scheme), strings, pairs, real=n_real, repeat=5)
    res: dict[str, float | int | None] = {
        "strings": ours.strings,
        "compiled": ours.compare_per_s,
        "pure": ours.pure_compare_per_s,
        "keying": ours.key_per_s,
        "key": ours.key_compare_per_s,
    }
    if scheme == "dpkg":
        apt = debian_module("apt_pkg")
        if apt is not None:
            apt.init_system()
            res["apt_pkg"] = _loop_rate(apt.version_compare, pairs)
        res["system"] = system_python_rate("apt", pairs)
    if scheme == "rpm":
        rpm = debian_module("rpm")
        if rpm is not None:
            # labelCompare takes (e, v, r) tuples: split once, outside the timed loop.
            evrs = [(_evr(a), _evr(b)) for a, b in pairs]
            res["python3-rpm"] = _loop_rate(rpm.labelCompare, evrs)  # type: ignore[arg-type]
        res["system"] = system_python_rate("rpm", pairs)
    if scheme == "pep440":
        from packaging.version import Version

        # packaging refuses the legacy strings PyPI advisories carry: both sides are timed
        # on the pairs it accepts, so the ratio compares like with like.
        sub = _valid_for(Version, pairs[: n_pairs // 10])
        res["packaging"] = _parse_both_rate(Version, sub)
        res["compiled_vs_packaging"] = _loop_rate(compiled.compare, sub)
    try:
        univers = importlib.import_module("univers.versions")
    except ImportError:
        res["univers"] = None
    else:
        cls = getattr(univers, UNIVERS_CLASS[scheme])
        sub = _valid_for(cls, pairs[: max(2000, n_pairs // 50)])
        res["univers"] = _parse_both_rate(cls, sub) if sub else None
        res["compiled_vs_univers"] = _loop_rate(compiled.compare, sub) if sub else None
    return res


def _evr(v: str) -> tuple[str | None, str, str]:
    e, _, rest = v.partition(":") if ":" in v else ("", "", v)
    ver, _, rel = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return (e or None, ver, rel)


def _fmt_rate(r: float | int | None) -> str:
    return "n/a" if r is None else f"{r / 1e6:.2f} M/s"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table with ratios, and record it in RESULTS.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=300_000, help="pairs per scheme")
    ap.add_argument("--scheme", action="append", help="only these schemes (repeatable)")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args(argv)
    schemes = args.scheme or ["dpkg", "rpm", "apk", "pep440", "semver", "maven", "gem", "composer"]

    rows = []
    checks = []
    for scheme in schemes:
        rng = random.Random(20261128)
        r = bench_scheme(scheme, args.pairs, rng)
        peer_name = next((p for p in ("apt_pkg", "python3-rpm", "packaging") if p in r), None)
        peer = r.get(peer_name) if peer_name else None
        system = r.get("system")
        uni = r["univers"]
        c, k = float(r["compiled"] or 0), float(r["key"] or 0)
        # Each ratio divides rates measured on the same pairs (a peer may refuse some).
        cp = float(r.get("compiled_vs_packaging") or c)
        cu = float(r.get("compiled_vs_univers") or c)
        rows.append(
            f"| {scheme} | {r['strings']} | {_fmt_rate(c)} | {_fmt_rate(r['pure'])} | "
            f"{_fmt_rate(r['keying'])} | {_fmt_rate(k)} | "
            + (f"{peer_name} {_fmt_rate(peer)} (**{cp / float(peer):.2f}×**)" if peer else "—")
            + " | "
            + (f"{_fmt_rate(system)} ({c / float(system):.2f}×)" if system else "—")
            + " | "
            + (f"{_fmt_rate(uni)} (**{cu / float(uni):.0f}×**)" if uni else "n/a")
            + " |"
        )
        print(rows[-1], flush=True)
        if scheme == "dpkg" and peer:
            checks.append(f"dpkg compare / apt_pkg = {c / float(peer):.2f}× (target ≥ 1.0×)")
            checks.append(f"key compare / apt_pkg = {k / float(peer):.2f}× (target ≥ 3×)")
        if scheme == "pep440" and peer:
            checks.append(f"pep440 compare / packaging = {cp / float(peer):.1f}× (target ≥ 20×)")
        if uni:
            checks.append(f"{scheme} compare / univers = {cu / float(uni):.0f}× (target ≥ 50×)")

    table = "\n".join(
        [
            "| scheme | distinct strings | compiled compare | pure compare | key (versions "
            "keyed) | key compare | native peer, same interpreter (ratio) | native peer in "
            "/usr/bin/python3 (ratio) | univers (ratio) |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    body = (
        "## Version schemes (`bench_versions`)\n\n"
        f"Command: `python -m benchmarks.bench_versions --pairs {args.pairs}` — rates are "
        "Python-loop calls `for a, b in pairs: f(a, b)` over the same seeded pairs of real "
        "version strings (best of 5); peers timed the same way: apt_pkg and python3-rpm "
        "imported into the same interpreter (and, for reference, inside Debian's "
        "`/usr/bin/python3`, a faster PGO build); packaging and univers parse both versions "
        "per call.\n\n"
        f"{table}\n\n" + "\n".join(f"- {c}" for c in checks)
    )
    print("\n".join(checks))
    if not args.no_write:
        write_section("bench_versions", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
