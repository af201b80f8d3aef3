"""Many escrows in one stack: ten escrows go through the same two oracles, Celery workers,
CVAT double, bucket and chain one after another, then three are launched at once and worked
interleaved. Each gets its own CVAT jobs, one storeResults, its payout and its cleanup, and
nothing is left behind: no event waiting or dead, no assignment open."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from audio_oracles.requester import launch
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs
from exchange_oracle.db import events as exchange_events
from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.storage import UrlPolicy
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows as recorded
from recording_oracle.db import events as recording_events
from recording_oracle.db import results as scored
from sandbox import accounts
from sandbox.reputation import pay_and_complete, read_results
from tests.integration.conftest import wait_for
from tests.integration.escrows import key
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import annotate, escrow_status

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(900)]
SEQUENTIAL, AT_ONCE = 10, 3
WORKERS = 140  # bot workers 140, 141, ...: one per job of an escrow, the same in every escrow


@pytest.fixture
def one_file(job_data: JobData, tmp_path: Path) -> Path:
    """The shared job cut down to one data file (and the ground truth for honeypots)."""
    root = tmp_path / "one-file"
    (root / "media").mkdir(parents=True)
    for name in ("talk0.mp3", "gt.wav"):
        shutil.copy(job_data.root / "media" / name, root / "media" / name)
    shutil.copy(job_data.root / "gt.tsv", root / "gt.tsv")
    return root


def _launch(m: dict[str, Any], data: Path) -> str:
    launched = launch(m["requester"], manifest(clip_duration=8), Decimal(2), data)
    assert launched.notified, launched.notify_error
    return launched.escrow_address


def _jobs_of(ctx: ExchangeContext, escrow: str) -> list[Any]:
    with ctx.sessions() as s:
        return list(
            s.execute(
                select(jobs)
                .join(escrows, escrows.c.id == jobs.c.escrow_id)
                .where(escrows.c.escrow_address == escrow)
                .order_by(jobs.c.clip_index)
            ).all()
        )


def _listed(m: dict[str, Any], escrow: str) -> list[Any]:
    exchange: ExchangeContext = m["exchange"]
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 180, f"{escrow} listed")
    listed = _jobs_of(exchange, escrow)
    assert listed and all(j.status == "free" and j.cvat_job_id for j in listed)
    return listed


def _finish(m: dict[str, Any], escrow: str) -> None:
    """Accepted and stored on chain, job_completed at the reputation stand-in, which pays;
    the exchange oracle cleans up and tells the recording oracle."""
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 120, "recorded")
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "recorded", 60, "exchange told")
    wait_for(
        lambda: any(
            r.escrow_address == escrow and r.event_type == "job_completed"
            for r in m["reputation"].rows()
        ),
        60,
        "job_completed at the reputation oracle",
    )
    paid = pay_and_complete(
        OracleSettings(**m["common"], private_key=key(accounts.REPUTATION_ORACLE)),
        Chain(m["chain"], key(accounts.REPUTATION_ORACLE)),
        escrow,
    )
    assert paid.notify_error is None and paid.tx_hash
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "completed", 60, "cleaned up")
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "cleaned", 60, "told")


def _check(m: dict[str, Any], escrow: str, listed: list[Any], done: list[str]) -> None:
    """The escrow's own jobs, each done once by its worker and accepted; one storeResults
    whose hash is the results archive's; paid and Complete."""
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    with exchange.sessions() as s:
        mine = s.execute(
            select(assignments.c.id, assignments.c.status, jobs.c.cvat_job_id)
            .join(jobs, jobs.c.id == assignments.c.job_id)
            .join(escrows, escrows.c.id == assignments.c.escrow_id)
            .where(escrows.c.escrow_address == escrow)
        ).all()
    assert {a.id for a in mine} == set(done)
    assert {a.cvat_job_id for a in mine} == {j.cvat_job_id for j in listed}
    assert all(a.status == "completed" for a in mine)
    assert all(j.status == "completed" for j in _jobs_of(exchange, escrow))
    with recording.sessions() as s:
        rows = s.execute(
            select(scored)
            .join(recorded, recorded.c.id == scored.c.escrow_id)
            .where(recorded.c.escrow_address == escrow)
        ).all()
    assert {r.assignment_id for r in rows} == set(done)
    assert all(r.passed and r.iteration == 1 and (r.value or 0) < 0.05 for r in rows), rows
    chain = Chain(m["chain"])
    state = chain.read_escrow(escrow)
    assert state.status == "Complete"
    stored = chain.escrow_contract(escrow).events.IntermediateStorage().get_logs(from_block=0)
    assert len(stored) == 1, stored  # one storeResults
    assert stored[0].args.hash == state.intermediate_results_hash
    meta = read_results(state.intermediate_results_url, UrlPolicy(allow_private=True)).meta
    assert {r["assignment_id"] for r in meta["results"]} == set(done)
    assert len(meta["jobs"]) == len(listed)


def _nothing_stuck(m: dict[str, Any]) -> None:
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]

    def settled() -> bool:
        for ctx, tables in ((exchange, exchange_events), (recording, recording_events)):
            with ctx.sessions() as s:
                waiting = s.execute(
                    select(func.count())
                    .select_from(tables.outbox)
                    .where(tables.outbox.c.status != "delivered")
                ).scalar_one()
                unhandled = s.execute(
                    select(func.count())
                    .select_from(tables.inbox)
                    .where(tables.inbox.c.status != "done")
                ).scalar_one()
            if waiting or unhandled:
                return False
        return True

    wait_for(settled, 60, "every event delivered and handled")
    with exchange.sessions() as s:
        open_work = s.execute(
            select(func.count())
            .select_from(assignments)
            .where(assignments.c.status.not_in(("completed",)))
        ).scalar_one()
        cvat_ids = s.execute(select(jobs.c.cvat_job_id)).scalars().all()
    assert open_work == 0
    assert len(cvat_ids) == len(set(cvat_ids))
    cvat = exchange.cvat()
    try:  # every escrow is cleaned up: no CVAT project left
        projects, _ = cvat.client.api_client.projects_api.list()
    finally:
        cvat.close()
    assert projects.count == 0


def test_ten_escrows_one_after_another_then_three_at_once(
    market: dict[str, Any], job_data: JobData, one_file: Path
) -> None:
    m = market
    took: list[float] = []
    seen_cvat_jobs: set[int] = set()
    for n in range(SEQUENTIAL):
        started = time.monotonic()
        escrow = _launch(m, one_file)
        listed = _listed(m, escrow)
        ready = time.monotonic()
        assert not seen_cvat_jobs & {j.cvat_job_id for j in listed}
        seen_cvat_jobs |= {j.cvat_job_id for j in listed}
        done = [annotate(m, WORKERS + i, escrow, job_data.truth) for i in range(len(listed))]
        annotated = time.monotonic()
        _finish(m, escrow)
        took.append(time.monotonic() - started)
        _check(m, escrow, listed, done)
        print(f"escrow {n + 1}/{SEQUENTIAL}: {len(listed)} job(s) in {took[-1]:.1f} s (launched "
              f"and listed {ready - started:.1f}, annotated {annotated - ready:.1f}, scored, "
              f"stored, paid and cleaned {started + took[-1] - annotated:.1f})")  # fmt: skip
    _nothing_stuck(m)

    started = time.monotonic()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        at_once = list(pool.map(lambda _: _launch(m, one_file), range(AT_ONCE)))
        listed_of = dict(zip(at_once, pool.map(lambda e: _listed(m, e), at_once), strict=True))
    every = [j.cvat_job_id for e in at_once for j in listed_of[e]]
    assert len(every) == len(set(every)) and not seen_cvat_jobs & set(every)
    # Interleaved: the first job of each escrow, then the second of each, and so on.
    done_of: dict[str, list[str]] = {e: [] for e in at_once}
    for i in range(max(len(v) for v in listed_of.values())):
        for e in at_once:
            if i < len(listed_of[e]):
                done_of[e].append(annotate(m, WORKERS + i, e, job_data.truth))
    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(lambda e: _finish(m, e), at_once))
    for e in at_once:
        _check(m, e, listed_of[e], done_of[e])
    print(f"{AT_ONCE} escrows at once: {time.monotonic() - started:.1f} s")
    _nothing_stuck(m)
    with m["exchange"].sessions() as s:
        assert s.execute(select(func.count()).select_from(escrows)).scalar_one() == (
            SEQUENTIAL + AT_ONCE
        )
    print(f"sequential: {sum(took):.1f} s, {sum(took) / len(took):.1f} s per escrow")
