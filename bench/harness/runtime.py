"""The log, and the clean-up: every process, database and file a run makes is undone."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

log_lock = threading.Lock()


def log(message: str) -> None:
    with log_lock:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Cleanup:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        # (name, how to drop it): registered by database.create_database.
        self.databases: list[tuple[str, Callable[[], None]]] = []
        self.keep_db = False
        self._workdir: Path | None = None
        self._at_exit: list[Callable[[], object]] = []

    @property
    def workdir(self) -> Path:
        """The run's temporary directory (Lua data, server logs), made on first use, so that
        importing the harness (the unit tests do) leaves nothing behind."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="healthcare-bench-"))
        return self._workdir

    def spawn(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # Own process group, so the whole tree (granian's workers) goes with one signal.
        process = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # Stragglers of the group (a worker whose parent died first).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process in self.processes:
            self.processes.remove(process)

    def on_exit(self, undo: Callable[[], object]) -> None:
        """Something else to undo when the run ends (after the processes stop)."""
        self._at_exit.append(undo)

    def run(self) -> None:
        for process in list(self.processes):
            self.stop(process)
        for undo in reversed(self._at_exit):
            undo()
        self._at_exit.clear()
        if not self.keep_db:
            for name, drop in self.databases:
                try:
                    drop()
                    log(f"dropped database {name}")
                except Exception as error:
                    log(f"could not drop {name}: {error}")
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


CLEANUP = Cleanup()


def on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
