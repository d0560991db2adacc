"""Regenerate ``semver_golden.json``: node-semver's verdicts on real and adversarial versions.

Run from the repo root (needs ``node`` and ``npm``, and the npm registry)::

    .venv/bin/python tests/data/versions/gen_semver.py

It installs ``semver`` (the parser npm itself uses) into a temporary folder, gathers
version strings, and asks node for

* each string's validity, strict and loose (``new SemVer(v, {loose})``), and how loose
  mode reads it (its normalised ``.version``), and
* ``semver.compare(a, b, true)`` (loose) on pairs of loose-valid strings: every string
  against its neighbours in node's own sort order (the close calls) plus random pairs.

Sources of the strings (each used when present, so that a rerun elsewhere still works):

* ``../shared/data/advisories/osv``: the versions (all of odd shape, 600 plain ``x.y.z``)
  in ``SEMVER``/``ECOSYSTEM`` ranges and ``versions`` lists of the Go (golang/vulndb,
  CC-BY-4.0), crates.io (RustSec, CC0-1.0), Docker Hardened Images (Apache-2.0) and GHSA
  sample (CC-BY-4.0) records;
* npm and NuGet version strings from the package lists this workplace ships
  (``/work/.library/env/packages/{npm,nuget}.tsv``), a seeded sample;
* the adversarial strings below.

Version strings are facts, not creative text; the sources' licences are noted all the same.
Strings holding a numeric pre-release identifier of 2**53 or more are left out of the pairs:
node-semver compares those as JavaScript doubles (``1.0.0-99999999999999999`` "equals"
``1.0.0-99999999999999998``), which is not SemVer 2.0.0; ``test_semver.py`` checks those
cases against the spec instead.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

NODE_SEMVER = "7.8.6"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
OSV = REPO.parent / "shared" / "data" / "advisories" / "osv"
PACKAGES = Path("/work/.library/env/packages")
OUT = HERE / "semver_golden.json"
SEED = 20240611

# fmt: off
ADVERSARIAL = [
    # prefixes and whitespace (node loose: any run of v, = and whitespace)
    "v1.2.3", "=1.2.3", "v=1.2.3", "=v1.2.3", " v 1.2.3 ", "\t1.2.3\n", "vv1.2.3", "V1.2.3",
    "v", "=", "", " ", "vx1.2.3",
    # component counts (ours: any count, missing = 0; node: exactly three)
    "0", "1", "1.2", "1.2.0", "1.2.0.0", "1.2.3.4", "4.3.0.1", "1.0.0.0.0.1", "v1", "v1.2",
    "1.2-beta", "1-rc.1",
    # leading zeros (node strict refuses, loose reads numerically)
    "01.2.3", "1.02.3", "1.2.03", "00.00.00", "1.2.3-01", "1.2.3-00", "1.2.3-0", "1.2.3-beta.01",
    "1.2.3-0a", "1.2.3-a0", "1.2.3-00a",
    # huge numbers
    "9007199254740991.0.0", "9007199254740992.0.0", "90071992547409910.0.0",
    "1.9007199254740991.0", "1.2.9007199254740991", "1.0.0-9007199254740991",
    "99999999999999999999999999999.0.0", "1.2.3-99999999999999999",
    # pre-release shapes
    "1.2.3-", "1.2.3--", "1.2.3---", "1.2.3-a-", "1.2.3--a", "1.2.3-a.-", "1.2.3-.a", "1.2.3-a.",
    "1.2.3-a..b", "1.2.3-+b", "1.2.3-a+", "1.2.3-a+b", "1.2.3-a+b.c", "1.2.3-a+b..c",
    "1.2.3-a_b", "1.2.3-a b", "1.2.3-α", "1.2.3beta", "1.2.3.beta", "1.2.3-beta.1.x.2",
    "1.2.3-A", "1.2.3-a", "1.2.3-Z", "1.2.3-z", "1.2.3-1", "1.2.3-1.a", "1.2.3-a.1",
    "1.2.3-alpha", "1.2.3-alpha.1", "1.2.3-alpha.beta", "1.2.3-beta", "1.2.3-beta.2",
    "1.2.3-beta.11", "1.2.3-rc.1", "1.2.3-rc1", "1.2.3-rc10", "1.2.3-RC1", "1.2.3-0.0",
    "1.2.3-0.a", "1.2.3-a.0", "1.2.3-1-1", "1.2.3-1--1",
    # build metadata
    "1.2.3+", "1.2.3+a", "1.2.3+a.b", "1.2.3+a..b", "1.2.3+a+b", "1.2.3+-", "1.2.3+0",
    "1.2.3+01", "1.2.3-a+01", "2.0.0+incompatible", "v2.0.0+incompatible",
    # Go pseudo-versions
    "v0.0.0-20210101000000-abcdef123456", "v1.2.4-0.20210101000000-abcdef123456",
    "v1.2.3-pre.0.20210101000000-abcdef123456", "v2.0.0-20190101000000-000000000000+incompatible",
    # junk
    "1..2", "1.2.", ".1.2", "1.2.3.", "a.b.c", "1.2.x", "1.2.*", "x", "latest", "1.2.3 4",
    "1.2.3\x00", "１.2.3", "1.2.3~rc1", "1.2.3^1", "1:1.2.3",
]
# fmt: on


def osv_versions() -> list[str]:
    """Every version string in the OSV records under ``../shared`` that use SemVer."""
    found: set[str] = set()
    if not OSV.is_dir():
        return []
    for folder in ("go", "crates", "dhi", "ghsa-samples"):
        for path in sorted((OSV / folder).rglob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for aff in rec.get("affected", []):
                eco = aff.get("package", {}).get("ecosystem", "")
                if eco.split(":")[0] in ("Maven", "Packagist", "PyPI", "SwiftURL"):
                    continue
                for rng in aff.get("ranges", []):
                    if rng.get("type") not in ("SEMVER", "ECOSYSTEM"):
                        continue
                    for event in rng.get("events", []):
                        for kind in ("introduced", "fixed", "last_affected", "limit"):
                            if kind in event:
                                found.add(event[kind])
                found.update(aff.get("versions", []))
    return sorted(found)


def package_list_versions(rnd: random.Random) -> list[str]:
    """A seeded sample of npm and NuGet version strings from the workplace package lists."""
    out: list[str] = []
    npm = PACKAGES / "npm.tsv"
    if npm.is_file():
        plain, fancy = set(), set()
        with npm.open(encoding="utf-8") as f:
            next(f)
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) > 1 and cols[1]:
                    (plain if re.fullmatch(r"\d+\.\d+\.\d+", cols[1]) else fancy).add(cols[1])
        out += rnd.sample(sorted(fancy), min(500, len(fancy)))
        out += rnd.sample(sorted(plain), min(150, len(plain)))
    nuget = PACKAGES / "nuget.tsv"
    if nuget.is_file():
        served: set[str] = set()
        with nuget.open(encoding="utf-8") as f:
            next(f)
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) > 4:
                    served.update(w for w in cols[4].split() if re.match(r"\d", w))
        out += rnd.sample(sorted(served), min(150, len(served)))
    return out


NODE_SCRIPT = r"""
const semver = require(process.argv[1]);
const SemVer = semver.SemVer;
const versions = JSON.parse(require("fs").readFileSync(0, "utf8"));
function parse(v, loose) { try { return new SemVer(v, { loose }) } catch (e) { return null } }
const out = { versions: {}, pairs: [] };
const loose = [];
for (const v of versions) {
  const s = parse(v, false), l = parse(v, true);
  // node's own reading of the string, normalised: the test checks it is ours too.
  // (true when it is the string itself, to keep the file small).
  const reading = l === null ? null : l.version === v ? true : l.version;
  out.versions[v] = [s !== null, l !== null, reading];
  if (l) loose.push(v);
}
// Leave out strings whose numeric pre-release identifiers exceed 2**53 - 1: node compares
// them as doubles (see the generator's docstring).
const safe = loose.filter(v => !new SemVer(v, { loose: true }).prerelease.some(
  id => typeof id === "string" && /^[0-9]+$/.test(id)));
const sorted = safe.slice().sort((a, b) => semver.compare(a, b, true));
// A seeded Park-Miller generator (exact in doubles) keeps the random pairs reproducible.
let seed = Number(process.argv[2]);
function rand(n) { seed = (seed * 48271) % 2147483647; return seed % n; }
const seen = new Set();
function add(a, b) {
  const k = a + "\u0000" + b;
  if (a === b || seen.has(k)) return;
  seen.add(k);
  out.pairs.push([a, b, semver.compare(a, b, true)]);
}
for (let i = 0; i + 1 < sorted.length; i++) {
  // Neighbours in sorted order, in both orientations, are the close calls.
  if (i % 2) add(sorted[i], sorted[i + 1]); else add(sorted[i + 1], sorted[i]);
  if (i + 2 < sorted.length && i % 3 === 0) add(sorted[i], sorted[i + 2]);
}
const target = out.pairs.length + Number(process.argv[3]);
while (out.pairs.length < target) add(safe[rand(safe.length)], safe[rand(safe.length)]);
out.node_semver = require(process.argv[1] + "/package.json").version;
process.stdout.write(JSON.stringify(out));
"""


def main() -> int:
    rnd = random.Random(SEED)
    real = osv_versions()
    # Plain x.y.z strings are most of the real data and alike: keep a sample of them, and
    # every string with a pre-release, build metadata or an odd shape.
    plain = [v for v in real if re.fullmatch(r"\d+\.\d+\.\d+", v)]
    real = [v for v in real if v not in set(plain)] + rnd.sample(plain, min(600, len(plain)))
    listed = package_list_versions(rnd)
    versions = list(dict.fromkeys([*ADVERSARIAL, *real, *listed]))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                tmp,
                f"semver@{NODE_SEMVER}",
            ],
            check=True,
        )
        module = os.path.join(tmp, "node_modules", "semver")
        proc = subprocess.run(
            ["node", "-e", NODE_SCRIPT, module, str(SEED), "1500"],
            input=json.dumps(versions),
            capture_output=True,
            text=True,
            check=True,
        )
    result = json.loads(proc.stdout)
    golden = {
        "about": (
            "node-semver verdicts, generated by tests/data/versions/gen_semver.py; do not edit. "
            "versions: string -> [valid strict, valid loose, loose reading normalised (true: the "
            "string itself; null: invalid)]; "
            "pairs: [a, b, compare(a, b, loose)]. "
            "Strings from OSV records (golang/vulndb CC-BY-4.0, RustSec CC0-1.0, Docker Hardened "
            "Images Apache-2.0, GHSA CC-BY-4.0), npm and NuGet version lists, and adversarial."
        ),
        "node_semver": result["node_semver"],
        "versions": result["versions"],
        "pairs": result["pairs"],
    }
    # One entry per line: reviewable diffs when the generator changes.
    lines = ["{"]
    lines += [f"{json.dumps(k)}: {json.dumps(golden[k])}," for k in ("about", "node_semver")]
    lines.append('"versions": {')
    items = list(golden["versions"].items())
    lines += [
        f"{json.dumps(k)}: {json.dumps(v)}{',' if i < len(items) - 1 else ''}"
        for i, (k, v) in enumerate(items)
    ]
    lines.append("},")
    lines.append('"pairs": [')
    pairs = golden["pairs"]
    lines += [f"{json.dumps(p)}{',' if i < len(pairs) - 1 else ''}" for i, p in enumerate(pairs)]
    lines.append("]}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(items)} versions, {len(pairs)} pairs (node-semver {golden['node_semver']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
