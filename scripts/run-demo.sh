#!/usr/bin/env bash
# `make run`: the main job on embedded defaults. It builds an advisory index from the real
# feed samples bundled in tests/data/advisories (Debian DSAs, Alpine secdb, PyPI, Go,
# crates.io …), writes the example OCI image layout (scripts/make-example-image.py: a Debian
# amd64 and an Alpine arm64 image made of real dpkg, apk, Python and npm metadata) and scans
# every platform of it, printing the NDJSON records on stdout. On stderr it then shows the
# compiled version schemes at work.
set -euo pipefail
bin=${1:-.venv/bin}
rs="$bin/regsweep"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
db="$repo/build/demo/advisories.lmdb"

"$rs" --version >&2
echo "== building the advisory index from the bundled feed samples" >&2
"$rs" db build --db "$db" "$repo/tests/data/advisories/osv" "$repo/tests/data/advisories/secdb"
image="$repo/build/demo/example-image"
rm -rf "$image"
"$bin/python" "$here/make-example-image.py" "$image"
echo "== scanning oci:$image:latest (NDJSON records on stdout)" >&2
"$rs" scan --db "$db" "oci:$image:latest"

echo "== version schemes: the same versions, sorted oldest first" >&2
demo() {  # scheme, then versions in arbitrary order
  local scheme=$1; shift
  printf '   %-9s' "$scheme" >&2
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
demo composer 2.4.6-p3 2.4.6 v2.4.6-RC1 2.4.6-beta2 2.4.6-dev 2.4.7
