"""The marketplace for tests: both oracles on PostgreSQL with Celery workers, the CVAT
double, S3, the local chain and an inbox standing in for the reputation oracle; and the
helpers that drive work through it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select

from audio_oracles.requester import RequesterSettings
from audio_pipeline.clips import TimeMap
from exchange_oracle import tasks as exchange_tasks
from exchange_oracle.app import create_app as create_exchange
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs
from exchange_oracle.db import metadata as exchange_db
from recording_oracle import tasks as recording_tasks
from recording_oracle.app import create_app as create_recording
from recording_oracle.config import RecordingSettings
from recording_oracle.context import RecordingContext
from recording_oracle.db import metadata as recording_db
from sandbox import accounts
from sandbox.annotators import perfect, sloppy
from sandbox.cvat_double import create_app as create_cvat
from sandbox.human_app import TokenIssuer
from tests.integration.conftest import (
    free_port,
    serve,
    settings_env,
    use_broker,
    worker_process,
)
from tests.integration.escrows import key, register_oracles
from tests.integration.receivers import event_db, inbox_app_on
from tests.integration.workers import Worker


@pytest.fixture
def market(
    request: pytest.FixtureRequest,
    fresh_chain: str,
    s3_url: str,
    pg_url: str,
    pg_url_recording: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    issuer = TokenIssuer()
    common = dict(
        rpc_url=fresh_chain,
        storage_endpoint_url=s3_url,
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
        celery_broker_url=redis_url,
    )
    cvat_port, exchange_port = free_port(), free_port()
    exchange = ExchangeContext(
        ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=f"http://127.0.0.1:{cvat_port}",
            database_url=pg_url,
            human_app_public_key=issuer.public_key_pem,
            public_url=f"http://127.0.0.1:{exchange_port}",
        )
    )
    recording = RecordingContext(
        RecordingSettings(
            **common,
            private_key=key(accounts.RECORDING_ORACLE),
            storage_bucket="recording",
            database_url=pg_url_recording,
            max_iterations=3,
        )
    )
    for db, ctx in ((exchange_db, exchange), (recording_db, recording)):
        db.drop_all(ctx.engine)
        db.create_all(ctx.engine)
    use_broker(exchange_tasks.app, redis_url)
    use_broker(recording_tasks.app, redis_url)
    exchange_tasks.use(exchange)
    recording_tasks.use(recording)
    cvat_app = create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{cvat_port}")
    # A test marked `recording_process` gets the recording oracle's worker in its own process,
    # as m["recording_worker"], to kill; the others keep it in this one (quicker to start).
    recording_worker: Any = None
    if request.node.get_closest_marker("recording_process"):
        recording_worker = Worker(
            recording_tasks.app, "recording_oracle.tasks", settings_env(recording.settings)
        )
        recording_in_process: Any = nullcontext()
    else:
        recording_in_process = start_worker(
            recording_tasks.app, pool="solo", perform_ping_check=False, loglevel="WARNING"
        )
    with (
        serve(cvat_app, cvat_port),
        serve(create_exchange(exchange), exchange_port) as exchange_url,
        serve(create_recording(recording)) as recording_url,
        event_db(f"sqlite:///{tmp_path / 'reputation.db'}") as (rep_tables, rep_sessions),
        inbox_app_on(
            fresh_chain, rep_tables, rep_sessions, {"job_completed": ("recording_oracle",)}
        ) as reputation,
        worker_process(exchange_tasks.app, "exchange_oracle.tasks", exchange.settings),
        recording_in_process,
    ):
        if recording_worker is not None:
            recording_worker.start()
        register_oracles(
            fresh_chain,
            {
                accounts.EXCHANGE_ORACLE: exchange_url,
                accounts.RECORDING_ORACLE: recording_url,
                accounts.REPUTATION_ORACLE: reputation.url,
            },
        )
        requester = RequesterSettings(
            **common,
            private_key=key(accounts.JOB_LAUNCHER),
            storage_bucket="requester",
            exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
            recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
            reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
        )
        yield {
            "chain": fresh_chain,
            "cvat_app": cvat_app,  # its state.faults make CVAT fail or stall on chosen requests
            "exchange": exchange,
            "exchange_url": exchange_url,
            "recording": recording,
            "recording_url": recording_url,
            "reputation": reputation,
            "requester": requester,
            "issuer": issuer,
            "common": common,
            "recording_worker": recording_worker,
        }
        if recording_worker is not None:
            recording_worker.stop()
    for db, ctx in ((exchange_db, exchange), (recording_db, recording)):
        db.drop_all(ctx.engine)
        ctx.engine.dispose()


def escrow_status(ctx: ExchangeContext | RecordingContext, table: Any, address: str) -> str:
    with ctx.sessions() as s:
        status = s.execute(select(table.c.status).where(table.c.escrow_address == address)).scalar()
    return str(status)


def annotate(
    m: dict[str, Any],
    worker: int,
    escrow: str,
    truth: Any,
    *,
    bad: bool = False,
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> str:
    """A bot takes an assignment through the worker API and does it in CVAT (`bad`: a
    sloppy one; `change`: what it does to the exact segments)."""
    token = m["issuer"].issue(accounts.account(worker).address)
    headers = {"Authorization": f"Bearer {token}"}
    url = m["exchange_url"]
    httpx.post(f"{url}/register", json={}, headers=headers).raise_for_status()
    reply = httpx.post(
        f"{url}/assignment", json={"escrow_address": escrow, "chain_id": 1338}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assignment_id = str(reply.json()["assignment_id"])
    ctx: ExchangeContext = m["exchange"]
    with ctx.sessions() as s:
        job = s.execute(
            select(jobs, escrows.c.cvat_project_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .join(escrows, escrows.c.id == jobs.c.escrow_id)
            .where(assignments.c.id == assignment_id)
        ).one()
    segments = perfect(TimeMap.from_dict(job.time_map), truth)
    if change:
        segments = change(segments)
    cvat = ctx.cvat()
    try:
        cvat.put_segments(
            job.cvat_job_id, job.cvat_project_id, sloppy(segments) if bad else segments
        )
        cvat.set_state(job.cvat_job_id, "completed")  # CVAT's webhook tells the oracle
    finally:
        cvat.close()
    return assignment_id


def assignment_status(ctx: ExchangeContext, assignment_id: str) -> str:
    with ctx.sessions() as s:
        return str(
            s.execute(
                select(assignments.c.status).where(assignments.c.id == assignment_id)
            ).scalar()
        )
