"""The benchmark: `make bench` (full) or `.venv/bin/python bench/run.py --quick`.

A thin entry point: the harness is the package bench/harness/, one module per phase (see its
__init__ and bench/README.md). Run it with the project's venv.
"""

from __future__ import annotations

import sys

from harness.main import main

if __name__ == "__main__":
    try:
        if "--bulk" in sys.argv:  # the bulk import against COPY (harness/bulk.py)
            from harness.bulk import main as bulk

            sys.exit(bulk(sys.argv[1:]))
        if any(arg.startswith("--instructions") for arg in sys.argv):  # per request, callgrind
            from harness.instructions import main as instructions

            sys.exit(instructions(sys.argv[1:]))
        if any(arg.startswith("--against") for arg in sys.argv):  # an earlier commit's API
            from harness.regression import main as against

            sys.exit(against(sys.argv[1:]))
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped and databases dropped", file=sys.stderr)
        sys.exit(130)
