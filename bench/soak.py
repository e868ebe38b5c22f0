"""`make soak`: mixed load at half the measured capacity, /metrics scraped throughout.

A thin entry point, as run.py is: the soak is bench/harness/endurance.py (see
bench/README.md, "The soak"). Run it with the project's venv.
"""

from __future__ import annotations

import sys

from harness.endurance import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        sys.exit(130)
