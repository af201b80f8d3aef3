"""One exchange oracle on PostgreSQL and Redis with its CVAT double, S3 and the local chain,
for tests that run its real Celery workers (builds killed, CVAT down)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from audio_oracles.requester import RequesterSettings
from exchange_oracle import tasks
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs, metadata
from sandbox import accounts
from sandbox.cvat_double import create_app as create_cvat
from tests.integration.conftest import free_port, serve, settings_env, use_broker
from tests.integration.escrows import key, register_oracles
from tests.integration.workers import Worker


@contextmanager
def exchange_world(
    chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, **settings: Any
) -> Iterator[dict[str, Any]]:
    port = free_port()
    cvat_app = create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{port}")
    common = dict(
        rpc_url=chain,
        storage_endpoint_url=s3_url,
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
    )
    with serve(cvat_app, port=port) as cvat_url:
        exchange = ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=cvat_url,
            database_url=pg_url,
            celery_broker_url=redis_url,
            public_url="http://127.0.0.1:1",
            **settings,
        )
        ctx = ExchangeContext(exchange)
        metadata.drop_all(ctx.engine)
        metadata.create_all(ctx.engine)
        register_oracles(chain)
        use_broker(tasks.app, redis_url)
        tasks.use(ctx)
        requester = RequesterSettings(
            **common,
            private_key=key(accounts.JOB_LAUNCHER),
            storage_bucket="requester",
            exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
            recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
            reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
        )
        try:
            yield {"ctx": ctx, "settings": exchange, "requester": requester, "cvat": cvat_app}
        finally:
            metadata.drop_all(ctx.engine)
            ctx.engine.dispose()


def escrow_status(ctx: ExchangeContext) -> str:
    """The status of the world's one escrow."""
    with ctx.sessions() as s:
        return str(s.execute(select(escrows.c.status)).scalar_one())


def jobs_listed(ctx: ExchangeContext) -> int:
    with ctx.sessions() as s:
        return int(s.execute(select(func.count()).select_from(jobs)).scalar_one())


def resume_until_ready(ctx: ExchangeContext, timeout_s: float = 120) -> float:
    """What beat does every 10 s (dispatch stalled build steps), until the escrow is ready;
    returns the seconds it took."""
    started = time.monotonic()
    while escrow_status(ctx) != "ready" and time.monotonic() < started + timeout_s:
        tasks.resume_builds.delay()
        time.sleep(2)
    assert escrow_status(ctx) == "ready", "the build did not finish"
    return time.monotonic() - started


def start_worker(settings: ExchangeSettings) -> Worker:
    """An exchange-oracle Celery worker to kill (SIGKILL) mid-build, once it answers."""
    return Worker(tasks.app, "exchange_oracle.tasks", settings_env(settings)).start()
