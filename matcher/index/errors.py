"""Errors of the advisory index: one base, so callers can catch every index failure at once."""

from __future__ import annotations


class AdvisoryIndexError(Exception):
    """Base of every error raised by the advisory index (build, open, query)."""


class TableError(AdvisoryIndexError, ValueError):
    """A byte string that is not an interval table this code can read (corrupt or foreign)."""
