"""Cython implementations of the version schemes: one extension module per scheme."""
