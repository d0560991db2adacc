"""Judgements: version schemes, advisory ingest, the LMDB index, matching, configuration checks.

Nothing here imports ``regsweep.crawler``: the matcher only sees plain msgspec Structs.
"""
