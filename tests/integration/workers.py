"""Celery workers in their own processes, as in production: configured only through the
environment, and there to be stopped, or killed with SIGKILL mid-task by the fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any


class Worker:
    """One oracle's worker (`module` is its Celery app's module), found by its own name, so
    a ping is answered by this process and not by the other oracle's worker on the broker."""

    def __init__(self, app: Any, module: str, env: dict[str, str]) -> None:
        self.app, self.module, self.env = app, module, env
        self.name = f"{module.split('.')[0]}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", self.module, "worker", "--pool", "solo",
             "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle",
             "--without-gossip", "-n", self.name],
            env={**os.environ, **self.env},
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self.app.control.ping(destination=[self.name], timeout=0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.module} worker did not start")
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when the machine loses the process."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
