"""The recording oracle's worker killed with SIGKILL at two set steps of one escrow's last
event: part-way through scoring the jobs, and with its storeResults transaction sent but not
yet mined. Another worker takes the event over once the killed one's lease lapses, scores
each job once, and the escrow is recorded with exactly one storeResults."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from web3 import Web3

from audio_oracles.requester import launch
from exchange_oracle.db import escrows
from oracle_core.chain import Chain
from recording_oracle import tasks as recording_tasks
from recording_oracle.db import escrows as recorded
from recording_oracle.db import events as recording_events
from recording_oracle.db import results
from sandbox import accounts
from tests.integration.conftest import wait_for
from tests.integration.jobdata import JobData, manifest, one_file_job
from tests.integration.market import annotate, escrow_status
from tests.integration.test_many_escrows import _jobs_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.recording_process,
    pytest.mark.timeout(600),
]


def _listed_escrow(m: dict[str, Any], root: Path, clip_s: int) -> str:
    escrow = launch(m["requester"], manifest(clip_duration=clip_s), Decimal(2), root)
    address = escrow.escrow_address
    wait_for(lambda: escrow_status(m["exchange"], escrows, address) == "ready", 120, "listed")
    return address


def _scored(m: dict[str, Any]) -> int:
    with m["recording"].sessions() as s:
        return int(s.execute(select(func.count()).select_from(results)).scalar_one())


def _results_tx(m: dict[str, Any], escrow: str) -> str | None:
    with m["recording"].sessions() as s:
        return s.execute(
            select(recorded.c.results_tx).where(recorded.c.escrow_address == escrow)
        ).scalar()


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """A tight poll (5 ms): the step to catch lasts tens of milliseconds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _take_over(m: dict[str, Any], escrow: str) -> float:
    """A new worker, and what beat does (sweep_inbox) every 2 s, until the escrow is
    recorded; seconds from the kill."""
    killed = time.monotonic()
    m["recording_worker"].start()
    while escrow_status(m["recording"], recorded, escrow) != "recorded":
        assert time.monotonic() < killed + 120, "the escrow was not recorded"
        recording_tasks.sweep_inbox.delay()
        time.sleep(2)
    return time.monotonic() - killed


def _one_store_results(m: dict[str, Any], escrow: str) -> None:
    chain = Chain(m["chain"])
    stored = chain.escrow_contract(escrow).events.IntermediateStorage().get_logs(from_block=0)
    assert len(stored) == 1
    assert stored[0].args.hash == chain.read_escrow(escrow).intermediate_results_hash
    with m["recording"].sessions() as s:
        pending = s.execute(
            select(func.count())
            .select_from(recording_events.inbox)
            .where(recording_events.inbox.c.status == "pending")
        ).scalar_one()
    assert pending == 0


def test_killed_mid_scoring_the_next_worker_scores_the_rest_once(
    market: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    m = market
    escrow = _listed_escrow(m, job_data.root, clip_s=5)  # every file: many jobs to score
    count = len(_jobs_of(m["exchange"], escrow))
    assert count >= 4
    worker = m["recording_worker"]
    for n in range(count):
        annotate(m, 200 + n, escrow, job_data.truth)
    _until(lambda: _scored(m) > 0, 120, "the first job scored")
    os.kill(worker.proc.pid, signal.SIGSTOP)  # frozen where it stands, then killed
    part = _scored(m)
    worker.kill()
    assert escrow_status(m["recording"], recorded, escrow) == "validating"
    assert 0 < part < count, f"the kill was meant to land mid-scoring ({part} of {count})"
    recovery = _take_over(m, escrow)
    print(
        f"recovery: recording worker killed mid-scoring ({part}/{count} jobs) -> recorded "
        f"{recovery:.1f} s after"
    )
    assert _scored(m) == count  # each job scored once (assignment_id is the key)
    _one_store_results(m, escrow)
    assert recovery < 30


def test_killed_with_store_results_pending_the_next_worker_waits_for_it(
    market: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    m = market
    root = one_file_job(job_data, tmp_path / "one-file")
    escrow = _listed_escrow(m, root, clip_s=8)
    w3 = Web3(Web3.HTTPProvider(m["chain"]))
    me = accounts.account(accounts.RECORDING_ORACLE).address
    nonce = w3.eth.get_transaction_count(me)
    worker = m["recording_worker"]
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        for n in range(len(_jobs_of(m["exchange"], escrow))):
            annotate(m, 220 + n, escrow, job_data.truth)
        _until(lambda: _results_tx(m, escrow) is not None, 120, "storeResults sent")
        _until(lambda: w3.eth.get_transaction_count(me, "pending") > nonce, 10, "in the pool")
        worker.kill()
        killed = time.monotonic()
        worker.start()
        # The killed worker's lease lapses within 15 s; the new one takes the event, finds
        # the transaction pending and waits on it: nothing else is sent.
        while time.monotonic() < killed + 25:
            recording_tasks.sweep_inbox.delay()
            time.sleep(2)
        assert w3.eth.get_transaction_count(me, "pending") == nonce + 1
        assert escrow_status(m["recording"], recorded, escrow) == "uploaded"
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    mined = time.monotonic()
    wait_for(lambda: escrow_status(m["recording"], recorded, escrow) == "recorded", 60, "stored")
    print(
        "recovery: recording worker killed with storeResults pending -> recorded "
        f"{time.monotonic() - mined:.1f} s after it was mined"
    )
    assert w3.eth.get_transaction_count(me) == nonce + 1  # one storeResults, never two
    _one_store_results(m, escrow)
