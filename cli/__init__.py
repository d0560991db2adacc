"""The ``regsweep`` command line: it parses options (defined once in ``common``), wires the
library (``crawler.crawl``, ``crawler.analyze``, ``matcher.judge``, ``matcher.output``),
writes output and handles signals. No pipeline logic lives here."""
