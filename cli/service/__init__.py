"""The long-running service: ``regsweep serve``."""
