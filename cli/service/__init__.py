"""`regsweep serve`: the long-running service (scheduler, push scans, rematch, HTTP API, output)."""
