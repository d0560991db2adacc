"""The sink interface and the format names (``regsweep.matcher.output`` says the rest)."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from regsweep.matcher.records import Advisory, ImageRef, Package, Record, VulnerabilityRecord


class Format(enum.StrEnum):
    """The output formats (``--format``)."""

    NDJSON = "ndjson"
    TABLE = "table"
    SARIF = "sarif"
    CYCLONEDX = "cyclonedx"


class Sink(ABC):
    """Receives a run's records in order (see the module doc)."""

    #: Whether the format describes every package (a BOM): the commands then make
    #: ``package`` records even without ``--packages``.
    wants_packages: bool = False

    def __init__(self, out: BinaryIO) -> None:
        #: The byte stream the document is written to (left open by ``end``).
        self.out = out

    def begin(self) -> None:  # noqa: B027 - most formats have no header to write
        """Start the document."""

    @abstractmethod
    def write(self, record: Record) -> None:
        """Take one record."""

    def write_many(self, records: Iterable[Record]) -> None:
        """Take records in order."""
        for r in records:
            self.write(r)

    def write_matches(
        self, image: ImageRef | None, package: Package, advisories: Sequence[Advisory]
    ) -> None:
        """One ``vulnerability`` record per advisory that matched ``package``."""
        for adv in advisories:
            self.write(VulnerabilityRecord(image=image, package=package, advisory=adv))

    def flush(self) -> None:  # noqa: B027 - documents reach the output only when they end
        """Make the records written so far reach the output: called per image (and per
        ``match`` batch), so that a consumer of a pipe sees them as they are known and a
        crash loses nothing already judged."""

    @abstractmethod
    def end(self, complete: bool = True) -> None:
        """Finish the document and flush it (the output stream stays open). ``complete``
        False: the run was cut short (a signal): the document says so, in its format's way,
        so that nobody takes it for the whole inventory."""


def tool_version() -> str:
    """regsweep's installed version (the documents name the tool that wrote them)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regsweep")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        return "0+unknown"
