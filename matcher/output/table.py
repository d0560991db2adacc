"""A table for people: every vulnerability and misconfiguration, printed when the run ends."""

from __future__ import annotations

import io
from typing import BinaryIO

from regsweep.matcher.output.base import Sink
from regsweep.matcher.records import (
    SEVERITY_RANK,
    ErrorRecord,
    ImageRecord,
    MisconfigurationRecord,
    Record,
    ResolvedRecord,
    Severity,
    SummaryRecord,
    Suppression,
    VulnerabilityRecord,
)

_COLUMNS = ("image", "package / check", "id", "severity", "fixed / evidence", "status")
_ORDER = {s.value: SEVERITY_RANK[s] for s in Severity}
Row = tuple[str, str, str, str, str, str]


class TableSink(Sink):
    """Collects one row per finding; ``end`` prints them sorted by image, then worst first."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out)
        self.rows: list[Row] = []
        self.images = self.vulnerabilities = self.misconfigurations = self.errors = 0
        self.summary: SummaryRecord | None = None

    def write(self, record: Record) -> None:
        if isinstance(record, VulnerabilityRecord):
            adv, pkg = record.advisory, record.package
            ref = record.image.ref if record.image else ""
            self.rows.append(
                (
                    ref,
                    f"{pkg.name} {pkg.version}",
                    adv.id,
                    adv.severity.value,
                    ", ".join(adv.fixed),
                    _status(adv.status, record.suppressed),
                )
            )
            self.vulnerabilities += record.suppressed is None
        elif isinstance(record, MisconfigurationRecord):
            m = record
            self.rows.append(
                (
                    m.image.ref,
                    m.check.title,
                    m.check.id,
                    m.check.severity.value,
                    m.evidence or "",
                    _status(m.check.category, m.suppressed),
                )
            )
            self.misconfigurations += m.suppressed is None
        elif isinstance(record, ImageRecord):
            self.images += 1
        elif isinstance(record, ErrorRecord):
            self.errors += 1
        elif isinstance(record, ResolvedRecord):
            # A finding that no longer holds (``rematch --changes``): a row saying why, not
            # counted among the vulnerabilities.
            adv, pkg = record.advisory, record.package
            self.rows.append(
                (
                    record.image.ref,
                    f"{pkg.name} {pkg.version}",
                    adv.id,
                    adv.severity.value,
                    ", ".join(adv.fixed),
                    f"resolved: {record.reason.value}",
                )
            )
        elif isinstance(record, SummaryRecord):
            self.summary = record

    def end(self, complete: bool = True) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        s = self.summary
        images, vulns, misconfigs, errors = (
            (s.images, s.vulnerabilities, s.misconfigurations, s.errors)
            if s is not None
            else (self.images, self.vulnerabilities, self.misconfigurations, self.errors)
        )
        title = (
            f"{images} images, {vulns} vulnerabilities, "
            f"{misconfigs} misconfigurations, {errors} errors"
        )
        table = Table(title=title if complete else f"INCOMPLETE (interrupted): {title}")
        for col in _COLUMNS:
            table.add_column(col)
        for row in sorted(self.rows, key=lambda r: (r[0], -_ORDER.get(r[3], 0), r[2])):
            # Text, not markup: evidence and names come from images ("[/x]" is no style).
            table.add_row(*(Text(cell) for cell in row))
        # On a terminal, its width; into a file or a pipe, as wide as the rows need (up to a
        # limit): an advisory id cut to "CVE-2024-0…" is useless in a saved report.
        width = None
        if not self.out.isatty():
            widest = [len(c) for c in _COLUMNS]
            for row in self.rows:
                widest = [max(w, len(x)) for w, x in zip(widest, row, strict=True)]
            width = min(max(80, sum(widest) + 3 * len(widest) + 1), 400)
        # Rich writes text; the sink's stream is binary like every other sink's.
        text = io.TextIOWrapper(self.out, encoding="utf-8", write_through=True)
        try:
            Console(file=text, width=width).print(table)
            text.flush()
        finally:
            text.detach()
        self.out.flush()


def _status(text: str, why: Suppression | None) -> str:
    # A finding written by --show-suppressed says so where its status would be.
    return text if why is None else f"suppressed: {why.kind}"
