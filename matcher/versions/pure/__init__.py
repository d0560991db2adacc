"""Pure-Python reference implementations of the version schemes (same API, same keys)."""
