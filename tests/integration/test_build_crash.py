"""A Celery worker killed (SIGKILL) while packing an escrow: the beat task that resumes
stalled builds hands the escrow to another worker, which finishes it with no duplicate
CVAT task and no clip missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cvat_sdk import Client
from sqlalchemy import func, select

from audio_oracles.requester import RequesterSettings, launch
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs, metadata
from sandbox import accounts
from sandbox.cvat_double import create_app as create_cvat
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import free_port, serve, settings_env, wait_for, worker_process
from tests.integration.escrows import key, register_oracles
from tests.integration.jobdata import JobData, manifest

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _worker(settings: ExchangeSettings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "exchange_oracle.tasks", "worker", "--pool",
         "solo", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
        env={**os.environ, **settings_env(settings)},
    )  # fmt: skip


def test_a_worker_killed_mid_build_is_replaced_without_duplicates(
    fresh_chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, job_data: JobData
) -> None:
    port = free_port()
    cvat_app = create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{port}")
    # Each task creation takes a second, so the kill lands mid-way through packing.
    cvat_app.state.faults.add(Fault("POST", r"^/api/tasks/?$", status=0, delay_s=1.0, times=99))
    common = dict(
        rpc_url=fresh_chain,
        storage_endpoint_url=s3_url,
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
    )
    with serve(cvat_app, port=port) as cvat_url:
        settings = ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=cvat_url,
            database_url=pg_url,
            celery_broker_url=redis_url,
            public_url="http://127.0.0.1:1",
        )
        ctx = ExchangeContext(settings)
        metadata.drop_all(ctx.engine)
        metadata.create_all(ctx.engine)
        register_oracles(fresh_chain)
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
        launched = launch(requester, manifest(clip_duration=6), Decimal(5), job_data.root)

        def listed() -> int:
            with ctx.sessions() as s:
                return int(s.execute(select(func.count()).select_from(jobs)).scalar_one())

        def status() -> str:
            with ctx.sessions() as s:
                return str(s.execute(select(escrows.c.status)).scalar_one())

        doomed = _worker(settings)
        try:
            while not tasks.app.control.ping(timeout=0.5):
                assert doomed.poll() is None, "the worker did not start"
            prepared = prepare_escrow(ctx.build, 1338, launched.escrow_address)
            for name in prepared.pending:
                tasks.analyze_file.delay(prepared.escrow_id, name)
            wait_for(lambda: listed() >= 2, 60, "packing under way")
        finally:
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
        killed = time.monotonic()
        before = listed()
        assert status() == "packing"
        time.sleep(1.5)
        assert listed() == before  # nobody is packing now
        with worker_process(tasks.app, "exchange_oracle.tasks", settings):
            # What beat does every 10 s, with the default stall: the killed packer's
            # heartbeat stopped, so another worker takes the build within seconds.
            deadline = time.monotonic() + 120
            while status() != "ready" and time.monotonic() < deadline:
                tasks.resume_builds.delay()
                time.sleep(2)
            assert status() == "ready", "the build finished by another worker"
        recovery = time.monotonic() - killed
        print(f"kill -9 mid-packing -> ready in {recovery:.1f} s")
        assert recovery < tasks.STALLED_S + 45  # the stall, then the rest of the packing
        with ctx.sessions() as s:
            escrow = s.execute(select(escrows)).one()
            indexes = sorted(s.execute(select(jobs.c.clip_index)).scalars())
        assert indexes == list(range(len(indexes))) and len(indexes) > before
        with Client(cvat_url) as client:
            client.login(("admin", "admin-password"))
            names = [t.name for t in client.projects.retrieve(escrow.cvat_project_id).get_tasks()]
        assert sorted(names) == [f"clip-{i:04d}" for i in indexes]
        metadata.drop_all(ctx.engine)
        ctx.engine.dispose()
