"""`chain up|down` and `storage up|down`: idempotent starts, and stops of only what they began."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from sandbox.chain import CHAIN_ID, chain_id_at, rpc_url
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audio_oracles.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def test_chain_up_is_idempotent_and_down_stops_it() -> None:
    port = str(free_port())
    try:
        first = cli("chain", "up", "--port", port)
        assert first.returncode == 0, first.stderr
        assert (
            first.stdout.startswith("started")
            and "0x5FbDB2315678afecb367f032d93F642f64180aa3" in first.stdout
        )
        again = cli("chain", "up", "--port", port)
        assert again.stdout.startswith("already running")
        assert chain_id_at(rpc_url(int(port))) == CHAIN_ID
    finally:
        down = cli("chain", "down", "--port", port)
    assert down.stdout.strip() == "stopped"
    assert chain_id_at(rpc_url(int(port))) is None
    assert "no chain started" in cli("chain", "down", "--port", port).stdout


def test_chain_up_refuses_a_port_serving_something_else() -> None:
    from fastapi import FastAPI

    from tests.integration.conftest import serve

    with serve(FastAPI()) as url:
        proc = cli("chain", "up", "--port", url.rsplit(":", 1)[1])
    assert proc.returncode == 1
    assert "is in use by something that is not an Ethereum node" in proc.stderr


def test_storage_up_is_idempotent_and_down_stops_it() -> None:
    port = str(free_port())
    try:
        assert cli("storage", "up", "--port", port).stdout.startswith("started")
        assert cli("storage", "up", "--port", port).stdout.startswith("already running")
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        assert cli("storage", "down", "--port", port).stdout.strip() == "stopped"
