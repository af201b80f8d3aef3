"""Real services for integration tests: a hardhat chain with HUMAN's contracts (own port)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from sandbox import chain as local_chain

CHAIN_PORT = int(os.environ.get("TEST_CHAIN_PORT", "18545"))


@pytest.fixture(scope="session")
def chain_url() -> Iterator[str]:
    url, started = local_chain.up(CHAIN_PORT)
    yield url
    if started:
        local_chain.stop_node(CHAIN_PORT)


@pytest.fixture
def fresh_chain(chain_url: str) -> Iterator[str]:
    """The chain as it was before the test: evm_snapshot before, evm_revert after."""
    w3 = Web3(Web3.HTTPProvider(chain_url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield chain_url
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


# -- PostgreSQL, Redis, HTTP servers ---------------------------------------------------------
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import psycopg  # noqa: E402
import redis  # noqa: E402

from sandbox import servers  # noqa: E402

PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("TEST_PG_DB", "audio_oracles_test")  # its own, to run two suites at once
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextmanager
def _database(name: str) -> Iterator[str]:
    """A database of our own on the machine's PostgreSQL, dropped afterwards."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with _database(PG_DB) as url:
        yield url


@pytest.fixture(scope="session")
def pg_url_recording() -> Iterator[str]:
    """The recording oracle's own database (each oracle has one)."""
    with _database(f"{PG_DB}_recording") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


free_port = servers.free_port
serve = servers.serve_in_thread


def wait_for(predicate: object, timeout_s: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """moto's S3 server on a loopback port, in this process (a real HTTP S3 API)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def job_data(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The shared speech job (tests/integration/jobdata.py), made once per run."""
    from tests.integration.jobdata import make_job_data

    return make_job_data(tmp_path_factory.mktemp("job"))


@pytest.fixture
def job_folder(job_data: object) -> object:
    return job_data.root  # type: ignore[attr-defined]


def use_broker(app: Any, url: str) -> None:
    """Point this process's Celery app at `url`. When the broker changes, the connections
    pooled for the last one go too, or what this process sends would still reach it (or
    fail on it, if that server is gone)."""
    if app.conf.broker_url != url:
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.broker_url = url


def settings_env(settings: object) -> dict[str, str]:
    """Settings as the environment variables that reproduce them in another process."""
    return settings.to_env()  # type: ignore[attr-defined, no-any-return]


@contextmanager
def worker_process(app: object, module: str, settings: object) -> Iterator[None]:
    """A Celery worker for `module` in its own process while the block runs. (Two workers
    in one test process lose ETA retries.)"""
    from tests.integration.workers import Worker

    worker = Worker(app, module, settings_env(settings)).start()
    try:
        yield
    finally:
        worker.stop()


# The worker API's world (an oracle with one listed escrow), for the worker API's tests.
from tests.integration.market import market  # noqa: E402, F401
from tests.integration.worker_world import issuer, oracle  # noqa: E402, F401
