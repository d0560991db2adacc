"""Judgements: version schemes, advisory ingest, the LMDB index, matching, configuration
checks, the judge step and the output formats.

Nothing here imports ``regsweep.crawler``: the matcher only sees plain msgspec Structs, the
facts model of ``facts`` (``ImageFacts``, ``Problem``), the image config of ``imageconfig``
and the records of ``records``.

* ``versions/``: the version schemes (compiled, with pure-Python references).
* ``advisories/``: feeds (OSV, secdb, Wolfi) → ``advisories.model.Advisory``. A new feed is
  a reader here, detected in ``advisories/sources.py``.
* ``index/``: the LMDB advisory index and its interval tables; ``match``: the matcher.
* ``checks/``: image configuration checks.
* ``judge``: an image's facts → records and a tally; ``stream``: package records → matches.
* ``output/``: the output formats (NDJSON, table, SARIF, CycloneDX); a new one is a ``Sink``
  there.
"""
