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

from audio_oracles.requester import launch
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.db import escrows, jobs
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import settings_env, wait_for, worker_process
from tests.integration.exchange_world import exchange_world
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
    with exchange_world(fresh_chain, s3_url, pg_url, redis_url, tmp_path) as world:
        ctx, settings, requester = world["ctx"], world["settings"], world["requester"]
        cvat_url = settings.cvat_url
        # Each task creation takes a second, so the kill lands mid-way through packing.
        world["cvat"].state.faults.add(
            Fault("POST", r"^/api/tasks/?$", status=0, delay_s=1.0, times=99)
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
        print(f"recovery: kill -9 mid-packing -> ready in {recovery:.1f} s")
        assert recovery < tasks.STALLED_S + 45  # the stall, then the rest of the packing
        with ctx.sessions() as s:
            escrow = s.execute(select(escrows)).one()
            indexes = sorted(s.execute(select(jobs.c.clip_index)).scalars())
        assert indexes == list(range(len(indexes))) and len(indexes) > before
        with Client(cvat_url) as client:
            client.login(("admin", "admin-password"))
            names = [t.name for t in client.projects.retrieve(escrow.cvat_project_id).get_tasks()]
        assert sorted(names) == [f"clip-{i:04d}" for i in indexes]
