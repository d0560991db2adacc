"""The ``regsweep`` command line: commands, output writers, logging setup."""
