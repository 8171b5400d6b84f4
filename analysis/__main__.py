"""Entry point of ``python -m analysis``: the command line of :mod:`analysis.report.cli`."""

import sys

from analysis.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
