"""S3 on loopback for the sandbox: moto's server, a real HTTP S3 API (never for production)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox.chain import STATE_DIR
from sandbox.procs import die_with_parent

ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _answers(port: int) -> bool:
    try:
        httpx.get(url(port) + "/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def up(port: int = 9000, timeout_s: float = 30, *, tied: bool = False) -> tuple[str, bool]:
    """Start moto's S3 server on `port` unless something answers there already; a `tied`
    server dies with this process. One that never answers is stopped before raising."""
    if _answers(port):
        return url(port), False
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = (STATE_DIR / f"s3-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent if tied else None,
    )
    (STATE_DIR / f"s3-{port}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _answers(port):
            return url(port), True
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {log.name}")
        time.sleep(0.1)
    down(port)
    raise RuntimeError(f"moto server did not answer on port {port}")


def down(port: int = 9000) -> bool:
    pid_file = STATE_DIR / f"s3-{port}.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"moto.server" not in cmdline:
        return False
    os.killpg(pid, signal.SIGTERM)
    return True
