"""A rejection racing the next worker (issue 15, item 5), over the whole stack: the recording
oracle rejects sloppy work (`submission_rejected`) while another worker asks for a job in a
tight loop, takes the freed job the instant it is listed again and redoes it at once. The
redo is what the recording oracle scores: nothing puts the pre-segments back under it.

CVAT is slow for the exchange oracle's Celery worker, which handles the rejection: its next
write of the rejected job's annotations is answered after 3 s (requests from this process,
the worker API's and the bots', are not slowed). With the reset made while the job is
locked and before it is listed again, that only delays the listing. Were the job listed
first and reset afterwards (the parent of f96f34f), the reset would land on the racer's
redo, which would be scored as pre-segments only (WER 1.00) and rejected."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from audio_oracles.requester import launch
from audio_pipeline.clips import TimeMap
from exchange_oracle.context import ExchangeContext
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, escrows, jobs
from oracle_core.chain import Chain
from oracle_core.storage import UrlPolicy
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows as recorded
from recording_oracle.db import results as scored
from sandbox import accounts
from sandbox.annotators import perfect
from sandbox.cvat_double.app import Fault
from sandbox.reputation import read_results
from tests.integration.conftest import wait_for
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import annotate, assignment_status, escrow_status

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(600)]
CVAT_STALL_S = 3.0
SLOPPY, HONEST, RACER = 160, 161, 170  # bot workers (accounts)
IN_PROCESS = "X-Test-In-Process"  # on CVAT requests from this process, not the Celery worker


@dataclass
class Race:
    polls: int = 0
    last_refused: float = 0.0
    asked: float = 0.0  # when the request that got the job was sent
    granted: float = 0.0
    redone: float = 0.0
    assignment_id: str = ""
    cvat_job_id: int = 0
    error: BaseException | None = None


def _take_the_instant_it_is_freed(
    m: dict[str, Any],
    escrow: str,
    redo: dict[int, list[dict[str, Any]]],
    project_id: int,
    race: Race,
    give_up: threading.Event,
) -> None:
    """A worker asks for a job of the escrow again and again; the moment it gets one, it
    saves its (perfect) annotation of that clip in CVAT and submits."""
    ctx: ExchangeContext = m["exchange"]
    token = m["issuer"].issue(accounts.account(RACER).address)
    body = {"escrow_address": escrow, "chain_id": 1338}
    try:
        with httpx.Client(
            base_url=m["exchange_url"], headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            client.post("/register", json={}).raise_for_status()
            cvat = ctx.cvat()  # signed in before the race, as the annotator's page is
            try:
                while not give_up.is_set():
                    race.asked = time.monotonic()
                    reply = client.post("/assignment", json=body)
                    race.polls += 1
                    if reply.status_code == 200:
                        break
                    assert reply.status_code in (400, 503), reply.text
                    race.last_refused = time.monotonic()
                else:
                    return
                race.granted = time.monotonic()
                race.assignment_id = str(reply.json()["assignment_id"])
                with ctx.sessions() as s:
                    race.cvat_job_id = s.execute(
                        select(jobs.c.cvat_job_id)
                        .join(assignments, assignments.c.job_id == jobs.c.id)
                        .where(assignments.c.id == race.assignment_id)
                    ).scalar_one()
                cvat.put_segments(race.cvat_job_id, project_id, redo[race.cvat_job_id])
                cvat.set_state(race.cvat_job_id, "completed")
                race.redone = time.monotonic()
            finally:
                cvat.close()
    except BaseException as exc:  # reported by the test's thread
        race.error = exc


def test_a_worker_taking_a_rejected_job_the_instant_it_is_freed_keeps_their_redo(
    market: dict[str, Any], job_data: JobData, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = market
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    untagged = exchange.cvat

    def tagged() -> Cvat:
        cvat = untagged()
        cvat.client.api_client.set_default_header(IN_PROCESS, "1")
        return cvat

    monkeypatch.setattr(exchange, "cvat", tagged)  # the worker API's, and the bots'
    launched = launch(m["requester"], manifest(), Decimal(20), job_data.root)
    assert launched.notified, launched.notify_error
    escrow = launched.escrow_address
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 180, "jobs listed")
    with exchange.sessions() as s:
        listed = s.execute(select(jobs).order_by(jobs.c.id)).all()
        project_id = s.execute(select(escrows.c.cvat_project_id)).scalar_one()
    assert len(listed) >= 2
    redo = {j.cvat_job_id: perfect(TimeMap.from_dict(j.time_map), job_data.truth) for j in listed}

    # Round 1: the first job is done sloppily, the others exactly.
    sloppy_one = annotate(m, SLOPPY, escrow, job_data.truth, bad=True)
    others = [annotate(m, HONEST + i, escrow, job_data.truth) for i in range(len(listed) - 1)]
    with exchange.sessions() as s:
        rejected_job = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == sloppy_one)
        ).scalar_one()
    # A slow CVAT for the Celery worker: its next write of that job's annotations takes 3 s.
    stall = Fault(
        "PUT",
        rf"^/api/jobs/{rejected_job}/annotations$",
        status=0,
        delay_s=CVAT_STALL_S,
        unless_header=IN_PROCESS,
    )
    m["cvat_app"].state.faults.add(stall)

    # The racer polls from before the export until the rejected job is listed again.
    race, give_up = Race(), threading.Event()
    racer = threading.Thread(
        target=_take_the_instant_it_is_freed,
        args=(m, escrow, redo, project_id, race, give_up),
        daemon=True,
    )
    racer.start()
    racer.join(timeout=180)
    give_up.set()
    racer.join(timeout=30)
    if race.error is not None:
        raise race.error
    assert race.assignment_id, f"the racer got no job in {race.polls} requests"
    assert assignment_status(exchange, sloppy_one) == "rejected"
    assert all(assignment_status(exchange, a) == "completed" for a in others)
    assert race.cvat_job_id == rejected_job
    assert stall.times == 0  # the rejection's reset was the slow write
    # Refused until the job was freed, it asked again at once and got it.
    assert race.polls > 1 and race.last_refused > 0
    gap_s = race.asked - race.last_refused
    print(f"racer: {race.polls} requests, asked again {gap_s * 1000:.1f} ms after the last "
          f"refusal, got the job {race.granted - race.asked:.3f} s later, redid it in "
          f"{race.redone - race.granted:.3f} s")  # fmt: skip
    assert gap_s < 0.1

    # The recording oracle scores the redo (iteration 2): accepted, no error.
    def redo_scored() -> bool:
        with recording.sessions() as s:
            return (
                s.execute(
                    select(func.count())
                    .select_from(scored)
                    .where(scored.c.assignment_id == race.assignment_id)
                ).scalar_one()
                > 0
            )

    wait_for(redo_scored, 120, "the redo scored")
    with recording.sessions() as s:
        result = s.execute(select(scored).where(scored.c.assignment_id == race.assignment_id)).one()
    assert result.passed and result.iteration == 2, (result.value, result.reasons)
    assert result.metric == "wer" and result.value is not None and result.value < 0.05
    said = {seg["transcription"] for seg in redo[rejected_job]}
    assert said and said <= {seg["transcription"] for seg in result.segments}

    # No extra iteration: the escrow is recorded with the redo as the job's final result.
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "recorded", 60, "exchange told")
    with recording.sessions() as s:
        assert s.execute(select(recorded.c.iteration)).scalar_one() == 2
    chain = Chain(m["chain"])
    state = chain.read_escrow(escrow)
    stored = chain.escrow_contract(escrow).events.IntermediateStorage().get_logs(from_block=0)
    assert len(stored) == 1 and stored[0].args.hash == state.intermediate_results_hash
    meta = read_results(state.intermediate_results_url, UrlPolicy(allow_private=True)).meta
    ids = {r["assignment_id"]: r["id"] for r in meta["results"]}
    finals = {j["final_result_id"] for j in meta["jobs"]}
    assert ids[race.assignment_id] in finals and ids[sloppy_one] not in finals
    assert len(finals) == len(listed)
    # And CVAT still holds the redo: nothing reset the job after the racer took it.
    cvat = exchange.cvat()
    try:
        kept = cvat.intervals(rejected_job)
    finally:
        cvat.close()
    assert len(kept) == len(redo[rejected_job]) and all(i["source"] == "manual" for i in kept)
