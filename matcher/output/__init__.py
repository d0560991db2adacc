"""Output sinks: where records go, in the format the user chose.

Every command that writes findings (``scan``, ``crawl``, ``match``) hands its records to a
``Sink``: ``begin()`` once, ``write(record)`` for each record in order (a ``summary``
record last, for ``scan`` and ``crawl``), ``end()`` once, which finishes the document;
``end(complete=False)`` when the run was cut short, which the document then says.
``Format`` is the closed set of formats:

========== ===================================================================================
ndjson     the contract (``../shared/OUTPUT.md``): one record per line, written as it comes
table      a table for people, printed at the end (vulnerabilities and misconfigurations)
sarif      one SARIF 2.1.0 log with one run for the whole invocation: a rule per advisory and
           per check, a result per finding located at the package's file in the image
cyclonedx  one CycloneDX 1.6 JSON BOM for the whole invocation: each image a ``container``
           component holding its packages, and the vulnerabilities that affect them
========== ===================================================================================

One document per run, whatever the number of images, because that is what the tools that
read these formats take in one upload (GitHub code scanning wants one run per tool and
category, Dependency-Track one BOM per project); each finding names its image, so a
consumer can split them. The document formats stream: results and components are written
as they come, and only what must follow them (rules, vulnerabilities) is kept, the
latter spooled to a temporary file, so memory does not grow with the registry.

A new format is one module here with a ``Sink`` subclass, a ``Format`` member and a case
in ``sink_type``.
"""

from __future__ import annotations

from typing import BinaryIO

from regsweep.matcher.output.base import Format, Sink, tool_version

__all__ = ["Format", "Sink", "open_sink", "sink_type", "tool_version"]


def sink_type(fmt: Format | str) -> type[Sink]:
    """The ``Sink`` class of format ``fmt`` (imported only when asked for)."""
    match Format(fmt):
        case Format.NDJSON:
            from regsweep.matcher.output.ndjson import NdjsonSink

            return NdjsonSink
        case Format.TABLE:
            from regsweep.matcher.output.table import TableSink

            return TableSink
        case Format.SARIF:
            from regsweep.matcher.output.sarif import SarifSink

            return SarifSink
        case Format.CYCLONEDX:
            from regsweep.matcher.output.cyclonedx import CycloneDxSink

            return CycloneDxSink


def open_sink(fmt: Format | str, out: BinaryIO) -> Sink:
    """A sink of format ``fmt`` writing to ``out`` (not begun yet)."""
    return sink_type(fmt)(out)
