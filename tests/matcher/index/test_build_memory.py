"""The index build's memory per advisory, counted by tracemalloc (exact, not timed).

A full osv.dev export is several hundred thousand records, and ``db update`` must build it
within 1 GB (``benchmarks.bench_feeds``). What the build holds until it writes the tables
grows with the records: the version keys of every ``versions`` list (osv.dev lists a
package's versions in every advisory of it, so most repeat), the exact rows, the alias
table. Holding each distinct key once, the exact rows in two columns rather than a tuple
each, and the aliases in lists rather than sets took the build from 1.9 to 1.1 KB per
advisory on these samples (and the 390,000-record corpus from 1.14 GB to 675 MB RSS).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from regsweep.matcher import advisories
from regsweep.matcher.index import catalog, store
from tests import paths
from tests.feeds import write_osv_mirror

#: Between what the build takes now (1.14 KB) and what it took before (1.87 KB).
KB_PER_ADVISORY = 1.5


def test_the_build_holds_little_per_advisory(tmp_path: Path) -> None:
    names = [f.name for f in catalog.CATALOG]
    mirror = tmp_path / "mirror"
    write_osv_mirror(mirror, [paths.DATA / "advisories" / "osv"], replicas=200, only=names)
    records, stats = advisories.load(sorted(mirror.glob("*/all.zip")))
    loaded = list(records)  # read before counting: only the build's own memory is measured
    tracemalloc.start()
    try:
        meta = store.build(tmp_path / "adv.lmdb", loaded, stats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert meta.advisories > 4000 and meta.exact_versions > 10_000
    assert peak / meta.advisories / 1024 < KB_PER_ADVISORY
