"""One request must never take an oracle down: each oracle runs as its own uvicorn process
here, as in production, and is sent what an attacker would send before any authentication.
After each attack the process is still there and still answering."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.human_app import TokenIssuer
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration
DEEP = b"[" * 100_000 + b"]" * 100_000


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture(scope="module", params=["exchange_oracle", "recording_oracle"])
def oracle(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chain_url: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    module = request.param
    port = free_port()
    folder = tmp_path_factory.mktemp(module)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}",
        "CELERY_BROKER_URL": "memory://",
        "RPC_URL": chain_url,
        "HUMAN_APP_PUBLIC_KEY": TokenIssuer().public_key_pem,
        "BODY_DEADLINE_S": "1",
        "HEADER_TIMEOUT_S": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--http", "oracle_core.http_server:HttpTools"],
        env=env, cwd=folder,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{module} did not start")
        time.sleep(0.2)
    yield url, proc
    proc.terminate()
    proc.wait(timeout=20)


def _alive(url: str, proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, "the oracle process died"
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/webhook", "/assignment", "/cvat-webhook"])
def test_a_hundred_thousand_nested_brackets_get_400_and_the_process_lives(
    oracle: tuple[str, subprocess.Popen[bytes]], path: str
) -> None:
    url, proc = oracle
    reply = httpx.post(f"{url}{path}", content=DEEP, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert "deeper than 64" in reply.json()["message"]
    _alive(url, proc)


def test_an_oversized_body_is_refused_before_it_is_read(
    oracle: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = oracle
    before = _rss_kb(proc.pid)
    assert _raw(url, f"Content-Length: {2 * 1024**3}\r\n\r\n{{").startswith("HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB, sent without a length
            yield b" " * 1024**2

    streamed = httpx.post(f"{url}/webhook", content=chunks(), timeout=30)
    assert streamed.status_code == 413 and "bytes" in streamed.json()["message"]
    assert _rss_kb(proc.pid) - before < 64 * 1024  # never held the whole body
    _alive(url, proc)


def test_a_body_that_trickles_in_is_cut_off(oracle: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = oracle
    reply = _raw(url, "Content-Length: 100\r\n\r\n{")  # the deadline is 1 s here
    assert reply.startswith("HTTP/1.1 408")
    _alive(url, proc)


def _trickled(url: str, first: bytes = b"") -> float:
    """Send `first` (whole requests), then a request's header lines one every 0.3 s for up
    to 10 s; the seconds until the server closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        if first:
            sock.sendall(first)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for n in range(33):
                time.sleep(0.3)
                sock.sendall(f"X-Slow-{n}: y\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        raise AssertionError("the headers trickled for 10 s and the connection stayed open")


def test_headers_that_trickle_in_are_cut_off(oracle: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = oracle
    assert _trickled(url) < 3  # the header deadline is 1 s here
    assert _trickled(url, first=b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") < 3  # kept alive
    _alive(url, proc)


def test_the_pure_python_protocol_has_the_header_deadline_too() -> None:
    from fastapi import FastAPI

    from oracle_core.http_server import H11
    from sandbox.servers import serve_in_thread

    class Quick(H11):
        header_timeout_s = 1.0

    app = FastAPI()
    app.get("/health")(lambda: {"ok": True})
    with serve_in_thread(app, http=Quick) as url:
        assert _trickled(url) < 3
        assert _trickled(url, first=b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") < 3
        assert httpx.get(f"{url}/health").json() == {"ok": True}


def _raw(url: str, rest: str) -> str:
    """A POST /webhook whose head ends with `rest`, and the first bytes of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}{rest}".encode())
        return sock.recv(4096).decode()
