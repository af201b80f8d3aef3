"""CVAT down while an escrow is packed, with real Celery workers: an outage that ends is
ridden out with no operator; one that outlasts CVAT_OUTAGE_LIMIT_S fails the escrow and
tells the launcher why (escrow_failed), instead of leaving it in `packing` for ever."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from audio_oracles.requester import launch
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, events, jobs
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import wait_for, worker_process
from tests.integration.exchange_world import exchange_world
from tests.integration.jobdata import JobData, manifest

pytestmark = [pytest.mark.integration, pytest.mark.faults]
DOWN = 10**6  # as many requests as come: CVAT answers nothing but 503


def _cvat_down(cvat_app: Any) -> list[Fault]:
    faults = [Fault(m, r".*", status=503, times=DOWN) for m in ("GET", "POST", "PATCH", "PUT")]
    for fault in faults:
        cvat_app.state.faults.add(fault)
    return faults


def _start_build(world: dict[str, Any], job_data: JobData) -> tuple[int, str]:
    launched = launch(world["requester"], manifest(clip_duration=6), Decimal(5), job_data.root)
    prepared = prepare_escrow(world["ctx"].build, 1338, launched.escrow_address)
    for name in prepared.pending:
        tasks.analyze_file.delay(prepared.escrow_id, name)
    return prepared.escrow_id, launched.escrow_address


def _escrow(ctx: ExchangeContext) -> Any:
    with ctx.sessions() as s:
        return s.execute(select(escrows)).one()


def test_cvat_down_past_the_limit_fails_the_escrow_and_tells_the_launcher(
    fresh_chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, job_data: JobData
) -> None:
    with exchange_world(
        fresh_chain,
        s3_url,
        pg_url,
        redis_url,
        tmp_path,
        cvat_outage_limit_s=3.0,
        cvat_retry_deadline_s=0.5,
    ) as world:
        ctx = world["ctx"]
        _cvat_down(world["cvat"])
        with worker_process(tasks.app, "exchange_oracle.tasks", world["settings"]):
            started = time.monotonic()
            _start_build(world, job_data)
            wait_for(lambda: _escrow(ctx).status == "failed", 60, "the escrow failed")
            took = time.monotonic() - started
        escrow = _escrow(ctx)
        assert "CVAT could not be reached for" in escrow.failure_reason
        assert "CVAT_OUTAGE_LIMIT_S=3 s" in escrow.failure_reason
        assert "503" in escrow.failure_reason  # the last error CVAT gave
        with ctx.sessions() as s:
            sent = s.execute(select(events.outbox)).all()
            assert s.execute(select(jobs)).all() == []
        (failed,) = [json.loads(r.body) for r in sent if r.event_type == "escrow_failed"]
        assert failed["event_data"]["reason"] == escrow.failure_reason
        print(f"recovery: CVAT down, limit 3 s -> escrow_failed after {took:.1f} s")
        assert took < 3.0 + tasks.RETRY_CAP_S + 10  # the limit, one capped wait, the build


def test_an_outage_shorter_than_the_limit_is_ridden_out_with_no_operator(
    fresh_chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, job_data: JobData
) -> None:
    with exchange_world(
        fresh_chain, s3_url, pg_url, redis_url, tmp_path, cvat_retry_deadline_s=0.5
    ) as world:
        ctx = world["ctx"]
        outage = _cvat_down(world["cvat"])
        with worker_process(tasks.app, "exchange_oracle.tasks", world["settings"]):
            _start_build(world, job_data)
            wait_for(lambda: _escrow(ctx).outage_since is not None, 60, "CVAT found down")
            time.sleep(5)
            for fault in outage:  # CVAT is back
                fault.times = 0
            back = time.monotonic()
            wait_for(lambda: _escrow(ctx).status == "ready", 90, "the escrow listed")
            recovery = time.monotonic() - back
        escrow = _escrow(ctx)
        assert escrow.outage_since is None and escrow.failure_reason is None
        with ctx.sessions() as s:
            assert s.execute(select(jobs)).all()
        print(f"recovery: CVAT down ~5 s -> ready {recovery:.1f} s after it came back")
        assert recovery < tasks.RETRY_CAP_S + 20  # at most one capped wait, then the build
