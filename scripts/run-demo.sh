#!/usr/bin/env bash
# `make run`: the main job on embedded defaults. Until the scan path lands this shows what
# exists: the compiled version schemes ordering real-world versions from each ecosystem.
set -euo pipefail
bin=${1:-.venv/bin}
rs="$bin/regsweep"
"$rs" --version
demo() {  # scheme, then versions in arbitrary order
  local scheme=$1; shift
  echo "== $scheme: sorted oldest first"
  "$rs" versions sort "$scheme" "$@" | sed 's/^/   /'
}
demo dpkg 1.1.1n-0+deb11u4 1:1.2 1.1.1n-0+deb11u3 1.1.1n~rc1-1 1.1.1w-0+deb11u1 1.1.1n-0+deb11u3+b1
demo rpm 1:1.1.1k-12.el8_9 1.1.1k-7.el8_6 3.0.7-25.el9 1.1.1k-12.el8_9~beta 1.1.1k-12.el8_9^post
demo apk 1.1.1k-r0 1.1.1l-r0 1.1.1k_rc1-r0 1.1.1k-r10 1.1.1k_p1-r0
demo pep440 2.0 2.0rc1 2.0.post1 2.0.dev3 1!0.1 2.0+local.7 1.9.10
demo semver v1.2.3 v1.2.3-rc.1 v1.2.3-rc.1.2 v1.10.0 v0.0.0-20210101000000-abcdef123456
demo maven 1.0-SNAPSHOT 1.0 1.0-alpha-1 1.0-rc1 1.0.1 1.0-sp1
demo gem 1.0.0 1.0.0.pre 1.0.0.rc1 0.9.9 1.0.1
echo "== dpkg: 1:1.0 vs 2.0 → $("$rs" versions compare dpkg 1:1.0 2.0)   (epoch wins)"
echo "== an invalid version is a usage error (exit 2):"
"$rs" versions compare dpkg '1:' 1.0 || echo "   exit $?"
