"""The exchange oracle's own services failing under a running build, with real Celery
workers: every PostgreSQL connection dropped (pg_terminate_backend) mid-packing, and the
Redis broker stopped for 10 s and started again empty. The build finishes with no
operator, nothing doubled or missing, and the recovery time is printed."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import select

from audio_oracles.requester import launch
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.db import jobs
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import free_port, wait_for, worker_process
from tests.integration.exchange_world import (
    escrow_status,
    exchange_world,
    jobs_listed,
    resume_until_ready,
)
from tests.integration.jobdata import JobData, manifest

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _start(world: dict[str, Any], job_data: JobData, task_s: float = 0.5) -> None:
    # Each task creation takes a while, so a fault lands mid-way through packing.
    world["cvat"].state.faults.add(
        Fault("POST", r"^/api/tasks/?$", status=0, delay_s=task_s, times=99)
    )
    launched = launch(world["requester"], manifest(clip_duration=6), Decimal(5), job_data.root)
    prepared = prepare_escrow(world["ctx"].build, 1338, launched.escrow_address)
    for name in prepared.pending:
        tasks.analyze_file.delay(prepared.escrow_id, name)


def _finished_cleanly(ctx: Any) -> None:
    with ctx.sessions() as s:
        indexes = sorted(s.execute(select(jobs.c.clip_index)).scalars())
    assert indexes == list(range(len(indexes))) and indexes  # none doubled, none missing


def test_every_database_connection_dropped_mid_packing(
    fresh_chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, job_data: JobData
) -> None:
    with exchange_world(fresh_chain, s3_url, pg_url, redis_url, tmp_path) as world:
        ctx = world["ctx"]
        with worker_process(tasks.app, "exchange_oracle.tasks", world["settings"]):
            _start(world, job_data, task_s=2.0)
            wait_for(lambda: jobs_listed(ctx) >= 1, 90, "packing under way")
            admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
            database = admin.rsplit("/", 1)[1]
            dropped_total = 0
            with psycopg.connect(admin, autocommit=True) as conn:
                for _ in range(3):  # every connection but this one, three times in 2 s
                    dropped_total += len(conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    ).fetchall())  # fmt: skip
                    time.sleep(1)
            assert escrow_status(ctx) == "packing" and dropped_total  # mid-way, connections cut
            recovery = resume_until_ready(ctx)
        print(f"recovery: PostgreSQL connections dropped mid-packing -> ready in {recovery:.1f} s")
        _finished_cleanly(ctx)
        assert recovery < 60  # the rest of the packing, at most one capped retry


@contextmanager
def _own_redis(port: int, folder: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(folder)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _answers(url), 10, "redis up")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_the_broker_stopped_for_ten_seconds_and_started_again_empty(
    fresh_chain: str, s3_url: str, pg_url: str, tmp_path: Path, job_data: JobData
) -> None:
    """Work queued in Redis when it stops is gone when it comes back empty: the resume
    sweep finds the files whose analysis never began, and the build goes on."""
    port = free_port()
    with _own_redis(port, tmp_path / "redis") as broker:
        with exchange_world(fresh_chain, s3_url, pg_url, broker, tmp_path) as world:
            ctx = world["ctx"]
            _start(world, job_data)  # queued: no worker has taken anything yet
            assert redis.Redis.from_url(broker).dbsize() > 0
            redis.Redis.from_url(broker).shutdown(nosave=True)
            time.sleep(10)
            with _own_redis(port, tmp_path / "redis-again"):
                back = time.monotonic()
                assert redis.Redis.from_url(broker).dbsize() == 0  # the queue is lost
                with worker_process(tasks.app, "exchange_oracle.tasks", world["settings"]):
                    resume_until_ready(ctx)
                    recovery = time.monotonic() - back
            _finished_cleanly(ctx)
        print(f"recovery: Redis down 10 s, back empty -> ready {recovery:.1f} s after")
        assert recovery < tasks.STALLED_S + 40  # a stall to notice, then the whole build
