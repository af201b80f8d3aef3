"""One exchange oracle on PostgreSQL and Redis with its CVAT double, S3 and the local chain,
for tests that run its real Celery workers (builds killed, CVAT down)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from audio_oracles.requester import RequesterSettings
from exchange_oracle import tasks
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import metadata
from sandbox import accounts
from sandbox.cvat_double import create_app as create_cvat
from tests.integration.conftest import free_port, serve
from tests.integration.escrows import key, register_oracles


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
        if tasks.app.conf.broker_url != redis_url:
            # A new broker: the connections this process pooled for the last one must go,
            # or what it sends would still reach the old one.
            tasks.app._pool = None
            tasks.app.amqp._producer_pool = None
            tasks.app.conf.broker_url = redis_url
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
