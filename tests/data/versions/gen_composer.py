"""Regenerate ``composer_golden.json``: Composer's own verdicts on Packagist-shaped versions.

Run from the repo root (needs ``php`` and Composer's ``composer/semver`` library, both from
Debian's ``composer`` package, listed in ``.ci/apt-packages.txt``)::

    .venv/bin/python tests/data/versions/gen_composer.py

For every string, PHP is asked for ``Composer\\Semver\\VersionParser::normalize`` (or null
when it throws); then, on pairs of strings it accepts, for ``version_compare`` of the two
normalized forms, which is Composer's order. Pairs: every string against its neighbours in
PHP's own sort order (the close calls, both orientations) plus seeded random pairs.
``test_composer.py`` checks regsweep against this file even where ``php`` is missing.

Strings (each source used when present, so that a rerun elsewhere still works):

* version shapes Packagist packages are released with, from a seeded generator: Symfony's
  ``v6.3.0-BETA1``, Drupal's ``10.0.0-rc3``, Magento's ``2.4.6-p3``, ``-alpha.1``/``-RC.2``
  dotted numbers, WordPress plugins' four-part versions, branch aliases ``4.4.x-dev``,
  date versions, leading zeros, build metadata;
* the versions in Packagist records of ``../shared/data/advisories/osv`` (GHSA, CC-BY-4.0)
  and both sides of the osv-scalibr Packagist vectors (Apache-2.0);
* the adversarial strings below.

Version strings are facts, not creative text; the sources' licences are noted all the same.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
SHARED = REPO.parent / "shared" / "data"
OUT = HERE / "composer_golden.json"
SEED = 20261128
AUTOLOAD = "/usr/share/php/Composer/Semver/autoload.php"

# fmt: off
ADVERSARIAL = [
    # prefixes, padding, whitespace
    "1", "1.0", "1.0.0", "1.0.0.0", "v1", "V1.0", "v1.0.0", "vv1.0", "v", "", " ", " 1.0 ",
    "\t1.0\n", "1.0\x0b", "\x001.0", "1.0\f", "01.02.03", "1.0.0.0.0", "1.2.3.4", "00000.1",
    "12345", "123456", "12345.1", "123456.1", "99999.0.0.0", "1.",  "1.0.", "1.0-", "1.0_",
    ".1", "-1", "1..0", "1.0..", "1.0.0.0.",
    # stability words, every spelling and case
    "1.0-dev", "1.0dev", "1.0.dev", "1.0_dev", "1.0-DEV", "1.0.-dev", "1.0_-dev", "1.0--dev",
    "1.0-alpha", "1.0-a", "1.0a", "1.0-ALPHA1", "1.0-alpha.1", "1.0-alpha-1", "1.0-alpha1.2",
    "1.0-beta", "1.0-b", "1.0b2", "1.0-Beta2", "1.0-beta.2", "1.0-beta2-3", "1.0-b.2.1",
    "1.0-RC", "1.0-rc", "1.0RC1", "1.0-Rc1", "1.0-RC.1", "1.0-rc10", "1.0-RC1-dev",
    "1.0-RC1.dev", "1.0-RC1dev", "1.0-RCdev", "1.0-rc-dev", "1.0-patch", "1.0-pl", "1.0-p",
    "1.0-p1", "1.0-pl2", "1.0-patch3", "1.0-P1", "1.0-p1-dev", "1.0-pdev", "1.0-bdev",
    "1.0-adev", "1.0-betadev", "1.0-stable", "1.0-stable2", "1.0-stable2-dev", "1.0-stabledev",
    "1.0-Stable", "1.0-STABLE2", "1.0-STABLE-dev", "1.0-beta-", "1.0-beta1.", "1.0-beta..1",
    "1.0-beta1-.2", "1.0-.beta", "1.0-foo", "1.0-pre1", "1.0-preview", "1.0-alpha_1",
    "1.0-beta1_dev", "1.0-dev1", "1.0-devel", "1.0-ab", "1.0-alphabeta", "1.0.0-beta.11",
    "1.0.0-beta.2", "1.0.0-beta.2.1", "1.0.0-beta2.1", "2.4.6-p3", "2.4.6-p10", "2.4.6",
    # build metadata
    "1.0.0+build", "1.0.0+1", "1.0+a+b", "1.0+", "+1.0", "1.0+a b", "1.0-beta+exp.sha",
    "1.0,1", "1.0,1+x", "1.x-dev+abc", "1.0+\u00e9",
    # branches and branch aliases
    "dev-master", "dev-main", "DEV-foo", "dev-", "master", "trunk", "default", "Master",
    "foo-dev", "1.x-dev", "1.X-dev", "1.*-dev", "1.x.dev", "1.xdev", "1.x-DEV", "2.1.x-dev",
    "v2.1.x-dev", "V2.1.X-dev", "4.4.x-dev", "1.2.3.x-dev", "1.2.3.4.x-dev", "1.x.3-dev",
    "1.xx-dev", "x-dev", "1234567.1-dev", "1234567.1.1-dev", "2.1.x -dev", "1.0.x-dev",
    "dev", "-dev", "1.x", "1.2.x",
    # dates
    "20230101", "2023-01-01", "2023.01.01", "2023:01:01", "2023-01-01-12", "20230101123",
    "2023010112345678901", "20230101123456789012", "202301", "20230", "2023-1-01",
    "2023-01-01.123", "2023-01-01.1234", "v20230101", "20230101-beta1", "20230101.RC1-dev",
    "2023-01-01-dev", "2023--01", "2023-01-", "123456", "1234567", "12345-01", "2023-0101",
    "2023.0101", "202301.01.01", "2023.01.01.01.01",
    # huge numbers (PHP longs saturate)
    "9223372036854775807", "9223372036854775808", "1.9223372036854775806",
    "1.9223372036854775807", "1.9223372036854775808", "1.99999999999999999999",
    "1.0-beta99999999999999999999", "1.0-beta9223372036854775807", "1.0.00000000000000000001",
    # constraint syntax and junk
    "1.0@dev", "1.0@beta", "1.0+@dev", "1.0 as 2.0", ">=1.0", "^1.0", "~1.0", "1.0.*",
    "1.0 || 2.0", "latest", "*", "1.2.3#abc", "1.0~rc1", "1:1.0", "\u00e91.0",
]

SUFFIXES = [
    "", "", "", "", "", "", "-alpha", "-alpha1", "-alpha.2", "-ALPHA3", "-a1", "-beta",
    "-beta1", "-beta.2", "-BETA1", "-b2", "-RC1", "-rc.2", "-RC", "-rc3", "-p1", "-p3",
    "-pl1", "-patch2", "-dev", "-beta1-dev", "-RC1-dev", ".x-dev", "+build.7", "-beta2.1",
]
# fmt: on


def synthesized(rnd: random.Random) -> list[str]:
    """Version strings in the shapes Packagist packages are released with."""
    out: list[str] = []
    nums = [0, 0, 1, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 20, 21, 46, 99, 100, 2023]
    for _ in range(900):
        parts = rnd.choice([1, 2, 2, 3, 3, 3, 3, 3, 4, 4])
        ns = [str(rnd.choice(nums)) for _ in range(parts)]
        if rnd.random() < 0.05:
            i = rnd.randrange(parts)
            ns[i] = "0" + ns[i]
        suffix = rnd.choice(SUFFIXES)
        if suffix == ".x-dev" and parts == 4:
            suffix = "-dev"
        out.append(rnd.choice(["", "", "", "v"]) + ".".join(ns) + suffix)
    # Near neighbours of the same release: the orderings that matter for "fixed in".
    for base in ("1.0.0", "v5.4.21", "2.4.6", "10.0", "4.4.46", "0.9.2", "1.2.3.4"):
        out += [base + s for s in SUFFIXES if not (s == ".x-dev" and base.count(".") == 3)]
    for _ in range(60):
        y, m, d = rnd.randint(2005, 2026), rnd.randint(1, 12), rnd.randint(1, 28)
        out.append(rnd.choice([f"{y}{m:02}{d:02}", f"{y}-{m:02}-{d:02}", f"{y}.{m:02}.{d:02}"]))
    return out


def shared_versions() -> list[str]:
    """Packagist versions of the OSV records and vector files under ``../shared``."""
    found: set[str] = set()
    osv = SHARED / "advisories" / "osv"
    if osv.is_dir():
        for path in sorted(osv.rglob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for aff in rec.get("affected", []):
                if aff.get("package", {}).get("ecosystem") != "Packagist":
                    continue
                found.update(v for v in aff.get("versions", []) if isinstance(v, str))
                for rng in aff.get("ranges", []):
                    for event in rng.get("events", []):
                        found.update(v for v in event.values() if isinstance(v, str))
    vectors = SHARED / "vectors" / "osv-scalibr" / "packagist-versions.txt"
    if vectors.is_file():
        for line in vectors.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and not line.startswith("//"):
                found.update((parts[0], parts[2]))
    return sorted(found)


PHP_SCRIPT = r"""
require $argv[1];
$parser = new Composer\Semver\VersionParser();
$versions = json_decode(stream_get_contents(STDIN), true);
$norm = [];
foreach ($versions as $v) {
    try { $norm[$v] = $parser->normalize($v); } catch (Exception $e) { $norm[$v] = null; }
}
$valid = array_values(array_filter($versions, function ($v) use ($norm) {
    return $norm[$v] !== null;
}));
$sorted = $valid;
usort($sorted, function ($a, $b) use ($norm) { return version_compare($norm[$a], $norm[$b]); });
// A seeded Park-Miller generator keeps the random pairs reproducible.
$seed = (int)$argv[2];
function rnd($n) { global $seed; $seed = ($seed * 48271) % 2147483647; return $seed % $n; }
$pairs = [];
$seen = [];
$add = function ($a, $b) use (&$pairs, &$seen, $norm) {
    $k = $a . "\0" . $b;
    if ($a === $b || isset($seen[$k])) return;
    $seen[$k] = true;
    $pairs[] = [$a, $b, version_compare($norm[$a], $norm[$b])];
};
for ($i = 0; $i + 1 < count($sorted); $i++) {
    if ($i % 2) $add($sorted[$i], $sorted[$i + 1]); else $add($sorted[$i + 1], $sorted[$i]);
    if ($i + 2 < count($sorted) && $i % 3 === 0) $add($sorted[$i], $sorted[$i + 2]);
}
$target = count($pairs) + (int)$argv[3];
while (count($pairs) < $target) $add($valid[rnd(count($valid))], $valid[rnd(count($valid))]);
echo json_encode(["php" => PHP_VERSION, "versions" => $norm, "pairs" => $pairs]);
"""


def _semver_library_version() -> str:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "php-composer-semver"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


def main() -> int:
    rnd = random.Random(SEED)
    versions = list(dict.fromkeys([*ADVERSARIAL, *shared_versions(), *synthesized(rnd)]))
    proc = subprocess.run(
        ["php", "-r", PHP_SCRIPT, AUTOLOAD, str(SEED), "2500"],
        input=json.dumps(versions),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    golden = {
        "about": (
            "Composer's verdicts, generated by tests/data/versions/gen_composer.py; do not edit. "
            "versions: string -> VersionParser::normalize(string), null when it throws; "
            "pairs: [a, b, version_compare(normalize(a), normalize(b))]. Strings: Packagist "
            "release shapes, GHSA (CC-BY-4.0) and osv-scalibr (Apache-2.0) Packagist versions, "
            "and adversarial ones."
        ),
        "php": result["php"],
        "composer_semver": _semver_library_version(),
        "versions": result["versions"],
        "pairs": result["pairs"],
    }
    # One entry per line: reviewable diffs when the generator changes.
    lines = ["{"]
    lines += [
        f"{json.dumps(k)}: {json.dumps(golden[k])}," for k in ("about", "php", "composer_semver")
    ]
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
    print(f"{OUT}: {len(items)} versions, {len(pairs)} pairs (PHP {golden['php']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
