"""ASGI apps on real loopback sockets in threads, for the demo, tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    port: int | None = None,
    log_level: str = "warning",
    start_timeout_s: float = 20,
    http: Any = None,
) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 in a daemon thread (with the oracles' header
    deadline unless `http` names another protocol); yields its base URL."""
    import uvicorn

    from oracle_core.http_server import HttpTools

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level=log_level, http=http or HttpTools
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"a server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
