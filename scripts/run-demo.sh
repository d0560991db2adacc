#!/usr/bin/env bash
# `make run`: the main job on embedded defaults, as far as it exists today. It builds an
# advisory index from the real feed samples bundled in tests/data/advisories (Debian DSAs,
# Alpine secdb, PyPI, Go, crates.io …) and matches a bundled inventory of package records
# against it, printing NDJSON vulnerability records on stdout. The image scan that will
# produce such inventories from OCI layouts is the next issue; until then the inventory is
# scripts/demo/packages.ndjson. It also shows the compiled version schemes at work.
set -euo pipefail
bin=${1:-.venv/bin}
rs="$bin/regsweep"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
db="$repo/build/demo/advisories.lmdb"

"$rs" --version >&2
echo "== building the advisory index from the bundled feed samples" >&2
"$rs" db build --db "$db" "$repo/tests/data/advisories/osv" "$repo/tests/data/advisories/secdb"
echo "== matching scripts/demo/packages.ndjson (NDJSON vulnerability records on stdout)" >&2
"$rs" match --db "$db" -i "$here/demo/packages.ndjson"

echo "== version schemes: the same versions, sorted oldest first" >&2
demo() {  # scheme, then versions in arbitrary order
  local scheme=$1; shift
  printf '   %-7s' "$scheme" >&2
  "$rs" versions sort "$scheme" "$@" | tr '\n' ' ' >&2
  echo >&2
}
demo dpkg 1.1.1n-0+deb11u4 1:1.2 1.1.1n-0+deb11u3 1.1.1n~rc1-1 1.1.1w-0+deb11u1 1.1.1n-0+deb11u3+b1
demo rpm 1:1.1.1k-12.el8_9 1.1.1k-7.el8_6 3.0.7-25.el9 1.1.1k-12.el8_9~beta 1.1.1k-12.el8_9^post
demo apk 1.1.1k-r0 1.1.1l-r0 1.1.1k_rc1-r0 1.1.1k-r10 1.1.1k_p1-r0
demo pep440 2.0 2.0rc1 2.0.post1 2.0.dev3 1!0.1 2.0+local.7 1.9.10
demo semver v1.2.3 v1.2.3-rc.1 v1.2.3-rc.1.2 v1.10.0 v0.0.0-20210101000000-abcdef123456
demo maven 1.0-SNAPSHOT 1.0 1.0-alpha-1 1.0-rc1 1.0.1 1.0-sp1
demo gem 1.0.0 1.0.0.pre 1.0.0.rc1 0.9.9 1.0.1
