"""NDJSON: the output contract, one record per line (``../shared/OUTPUT.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import msgspec

from regsweep.matcher.output.base import Sink
from regsweep.matcher.records import (
    SCHEMA_VERSION,
    Advisory,
    ImageRef,
    Package,
    Record,
    VulnerabilityRecord,
)

_FLUSH = 1 << 20
_VULN_HEAD = b'{"kind":"vulnerability","schema_version":%d,"image":' % SCHEMA_VERSION
# The fields after ``advisory`` of a finding that is not suppressed.
_VULN_TAIL = b',"suppressed":null}\n'


class NdjsonSink(Sink):
    """Records out through one reusable buffer (``encode_into``), flushed in large writes."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out)
        self.buf = bytearray()
        self.enc = msgspec.json.Encoder()
        #: Records written so far.
        self.count = 0
        # id(advisory) -> (advisory, its JSON). The matcher hands the same Advisory object
        # to every package it affects; keeping the object in the value pins its id.
        self._adv_json: dict[int, tuple[Advisory, bytes]] = {}

    def write(self, record: Record) -> None:
        if type(record) is VulnerabilityRecord and record.suppressed is None:
            self.write_matches(record.image, record.package, (record.advisory,))
            return
        self.enc.encode_into(record, self.buf, len(self.buf))
        self.buf += b"\n"
        self.count += 1
        if len(self.buf) >= _FLUSH:
            self.flush()

    def write_matches(
        self, image: ImageRef | None, package: Package, advisories: Sequence[Advisory]
    ) -> None:
        """One ``vulnerability`` record per advisory, byte-identical to encoding
        ``VulnerabilityRecord``s, with the image and package encoded once and each
        advisory once per run: a package is often hit by dozens of advisories."""
        enc = self.enc.encode
        head = b"".join((_VULN_HEAD, enc(image), b',"package":', enc(package), b',"advisory":'))
        cache = self._adv_json
        if len(cache) > 1 << 18:
            cache.clear()
        parts: list[bytes] = []
        for adv in advisories:
            hit = cache.get(id(adv))
            if hit is None or hit[0] is not adv:
                hit = cache[id(adv)] = (adv, enc(adv))
            parts += (head, hit[1], _VULN_TAIL)
        # One join, one append: records differ only in their advisory.
        self.buf += b"".join(parts)
        self.count += len(advisories)
        if len(self.buf) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        self.out.write(self.buf)
        self.out.flush()
        self.buf.clear()

    def end(self, complete: bool = True) -> None:
        # A cut-short NDJSON stream says so by its missing ``summary`` record.
        self.flush()


def encode_lines(records: Sequence[Record]) -> list[bytes]:
    """``records`` as NDJSON lines (each ending in a newline), for line-oriented outputs."""
    enc = msgspec.json.Encoder()
    return [enc.encode(r) + b"\n" for r in records]
