"""The metrics' directory for granian's workers, chosen before they start.

Kept apart from ``metrics.py`` on purpose: prometheus-client decides at import time whether
its values live in memory-mapped files (``PROMETHEUS_MULTIPROC_DIR`` set) or in the process
alone, and granian forks its workers from ``healthcare serve``'s process. So the variable
must be set before anything imports prometheus-client there; importing ``metrics.py`` first
would leave every worker counting for itself, and a scrape would add up nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import MutableMapping
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_directory(environ: MutableMapping[str, str]) -> Path | None:
    """Before the workers start: an empty directory for their metric files, named in
    ``environ`` (which the workers inherit). The operator's own, emptied, if set; else a new
    temporary one, returned so that the caller removes it at the end."""
    if chosen := environ.get(MULTIPROC_VARIABLE):
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's values are not this run's
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="healthcare-metrics-"))
    environ[MULTIPROC_VARIABLE] = str(created)
    return created
