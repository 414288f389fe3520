"""``python -m pysozu``: the same command line as the ``pysozu`` console script."""

from __future__ import annotations

import sys

from pysozu.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:  # a worker process of a main process (not a user verb)
        from pysozu.worker_process import main as worker_main

        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(main())
