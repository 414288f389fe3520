"""``python -m pysozu``: the same command line as the ``pysozu`` console script."""

from __future__ import annotations

import sys

from pysozu.cli import main

if __name__ == "__main__":
    sys.exit(main())
