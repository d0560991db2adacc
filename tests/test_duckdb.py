"""The NDJSON output loads into DuckDB as-is, every record kind queryable by its fields."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec

from regsweep.matcher import records as r

REPO = Path(__file__).resolve().parent.parent


def test_every_record_kind_loads_into_duckdb_and_answers_queries(tmp_path: Path) -> None:
    """A real ``regsweep match`` stream plus one record of every other kind, read with
    ``read_json(format='newline_delimited')``: kinds, nested fields and timestamps query."""
    db = tmp_path / "adv.lmdb"
    regsweep = str(Path(sys.executable).parent / "regsweep")
    subprocess.run(
        [regsweep, "db", "build", "--db", str(db), str(REPO / "tests/data/advisories/osv")],
        check=True,
        capture_output=True,
    )
    matched = subprocess.run(
        [regsweep, "match", "--db", str(db), "-i", str(REPO / "scripts/demo/packages.ndjson")],
        check=True,
        capture_output=True,
    ).stdout
    image = r.ImageRef(
        ref="oci:demo/debian:11", digest="sha256:" + "1" * 64, platform="linux/amd64"
    )
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    others = [
        r.ImageRecord(image=image, os=r.OsInfo(family="debian", version="11"), scanned_at=now),
        r.PackageRecord(image=image, package=r.Package(name="zlib1g", version="1", type="deb")),
        r.MisconfigurationRecord(
            image=image,
            check=r.Check(
                id="RS-IMG-001", title="Image runs as root", severity="HIGH", category="user"
            ),
            evidence="User is unset",
        ),
        r.ErrorRecord(
            image=image, ref=image.ref, stage="layer", error="digest_mismatch", message="m"
        ),
        r.SummaryRecord(started_at=now, finished_at=now, images=1, errors=1),
    ]
    out = tmp_path / "out.ndjson"
    out.write_bytes(matched + b"".join(msgspec.json.encode(x) + b"\n" for x in others))

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
    }
    assert kinds["vulnerability"] == matched.count(b"\n") > 0
    ids = {
        row[0]
        for row in con.execute(
            f"select advisory.id from {rel} where kind = 'vulnerability' "
            "and package.ecosystem = 'Debian:11'"
        ).fetchall()
    }
    assert "DSA-5044-1" in ids
    # ``check`` is an SQL keyword: the contract's field name needs quoting in SQL.
    misconf = f"""select "check".id from {rel} where kind = 'misconfiguration'"""
    assert con.execute(misconf).fetchall() == [("RS-IMG-001",)]
    assert con.execute(f"select stage, retryable from {rel} where kind = 'error'").fetchall() == [
        ("layer", False)
    ]
    started = con.execute(f"select started_at from {rel} where kind = 'summary'").fetchone()
    assert started is not None and started[0].year == 2026
