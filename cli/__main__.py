"""``python -m regsweep.cli``: the same as the ``regsweep`` console script."""

from regsweep.cli.main import main

main()
