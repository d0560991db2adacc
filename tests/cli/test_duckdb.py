"""A real scan's NDJSON loads into DuckDB as-is, every record kind queryable by its fields."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec

from regsweep.matcher.changes import changes, group_by_image
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.records import ImageRecord, Record, VulnerabilityRecord
from tests import paths
from tests.example import advisory_index, example_image

REPO = paths.REPO
REGSWEEP = str(Path(sys.executable).parent / "regsweep")


def test_every_record_kind_of_a_real_scan_loads_into_duckdb(tmp_path: Path) -> None:
    """``regsweep scan --packages`` of the example image (two platforms) plus a scan of a
    missing layout (an error record), and the ``resolved`` records ``matcher.changes``
    writes for its amd64 image's findings once that tag points at another image, read
    with ``read_json(format='newline_delimited')``: all seven kinds, nested fields and
    timestamps answer SQL queries."""
    db = advisory_index(tmp_path / "adv.lmdb")
    layout = example_image(tmp_path / "image")
    scan = subprocess.run(
        [REGSWEEP, "scan", "--db", str(db), "--packages", f"oci:{layout}:latest",
         f"oci:{tmp_path / 'missing'}"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    out = tmp_path / "out.ndjson"
    lines = [msgspec.json.decode(x) for x in scan.stdout.splitlines()]
    decoder = msgspec.json.Decoder(Record)
    records = [decoder.decode(x) for x in scan.stdout.splitlines()]
    amd64 = next(
        g for g in group_by_image(records).values() if g[-1].image.platform == "linux/amd64"
    )  # type: ignore[union-attr]
    at = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    with AdvisoryIndex(db) as index:
        before = changes(None, amd64, known=index.has_advisory, at=at).current
        image = amd64[-1]
        assert isinstance(image, ImageRecord) and before is not None
        moved = msgspec.structs.replace(image.image, digest="sha256:" + "e" * 64)
        gone = changes(
            before, [ImageRecord(image=moved)], known=index.has_advisory, at=at, packages=[]
        ).resolved
    vulns = [r for r in amd64 if isinstance(r, VulnerabilityRecord) and r.suppressed is None]
    assert len(gone) == len(vulns) > 0
    out.write_bytes(scan.stdout + b"".join(msgspec.json.encode(r) + b"\n" for r in gone))

    con = duckdb.connect()
    rel = f"read_json('{out}', format='newline_delimited', union_by_name=true)"
    kinds = dict(con.execute(f"select kind, count(*) from {rel} group by kind").fetchall())
    assert set(kinds) == {
        "vulnerability",
        "image",
        "package",
        "misconfiguration",
        "error",
        "summary",
        "resolved",
    }
    assert kinds["image"] == 2 and kinds["summary"] == 1
    assert kinds["vulnerability"] == sum(1 for x in lines if x["kind"] == "vulnerability")
    dsa = con.execute(
        f"select package.name, advisory.fixed[1] from {rel} "
        "where kind = 'vulnerability' and advisory.id = 'DSA-5044-1'"
    ).fetchall()
    assert dsa == [("firefox-esr", "91.5.0esr-1~deb11u1")]
    # ``check`` is an SQL keyword: the contract's field name needs quoting in SQL.
    ids = {
        r[0]
        for r in con.execute(
            f"select \"check\".id from {rel} where kind = 'misconfiguration'"
        ).fetchall()
    }
    assert "RS-IMG-002" in ids
    eol = con.execute(
        f"select image.platform, os.eol_date from {rel} where kind = 'image' order by 1"
    ).fetchall()
    # DuckDB reads the RFC 3339 dates as DATE values: typed, not strings.
    assert [(p, str(d)) for p, d in eol] == [
        ("linux/amd64", "2026-08-31"),
        ("linux/arm64", "2021-11-01"),
    ]
    assert con.execute(f"select stage from {rel} where kind = 'error'").fetchall() == [
        ("manifest",)
    ]
    owned = con.execute(
        f"select package.owner from {rel} where kind = 'package' and package.name = 'PyYAML'"
    ).fetchall()
    assert owned == [("python3-yaml",)]
    resolved = con.execute(
        f"select reason, count(*), min(resolved_at), min(image.digest) from {rel} "
        "where kind = 'resolved' group by reason"
    ).fetchall()
    assert [(r, n, str(t)[:19], d) for r, n, t, d in resolved] == [
        ("package_gone", len(gone), "2026-12-01 12:30:00", image.image.digest)
    ]
    assert con.execute(
        f"select package.name from {rel} where kind = 'resolved' and advisory.id = 'DSA-5044-1'"
    ).fetchall() == [("firefox-esr",)]
    finished = con.execute(f"select finished_at from {rel} where kind = 'summary'").fetchone()
    assert finished is not None and finished[0].year >= 2026
