"""The chain stops answering (its node paused with SIGSTOP for 10 s) as the last job is
submitted, while the oracles pass the finished work on and the recording oracle reads the
escrow, scores it and stores its results on chain: whichever of those calls the pause
catches waits, and once the node runs again the escrow is recorded with exactly one
storeResults."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from audio_oracles.requester import launch
from exchange_oracle.db import escrows
from oracle_core.chain import Chain
from recording_oracle.db import escrows as recorded
from sandbox import chain as local_chain
from tests.integration.conftest import CHAIN_PORT, wait_for
from tests.integration.jobdata import JobData, manifest, one_file_job
from tests.integration.market import annotate, escrow_status
from tests.integration.test_many_escrows import _jobs_of

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(600)]


def _node_pid() -> int:
    pid_file = local_chain._pid_file(CHAIN_PORT)
    if not pid_file.exists():
        pytest.skip("the chain was not started by this suite (no pid file to pause)")
    return int(pid_file.read_text())


def test_a_paused_chain_delays_the_results_and_doubles_nothing(
    market: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    m = market
    root = one_file_job(job_data, tmp_path / "one-file")
    launched = launch(m["requester"], manifest(clip_duration=8), Decimal(2), root)
    escrow = launched.escrow_address
    wait_for(lambda: escrow_status(m["exchange"], escrows, escrow) == "ready", 120, "listed")
    count = len(_jobs_of(m["exchange"], escrow))
    pid = _node_pid()
    for n in range(count):
        annotate(m, 160 + n, escrow, job_data.truth)
    os.kill(pid, signal.SIGSTOP)  # as the last job is exported and scored
    try:
        time.sleep(10)
        assert escrow_status(m["recording"], recorded, escrow) != "recorded"
    finally:
        os.kill(pid, signal.SIGCONT)
    back = time.monotonic()
    wait_for(lambda: escrow_status(m["recording"], recorded, escrow) == "recorded", 120, "stored")
    recovery = time.monotonic() - back
    print(
        f"recovery: chain paused 10 s after the last submission -> recorded {recovery:.1f} s after"
    )
    chain = Chain(m["chain"])
    stored = chain.escrow_contract(escrow).events.IntermediateStorage().get_logs(from_block=0)
    assert len(stored) == 1  # one storeResults, however many tries
    assert stored[0].args.hash == chain.read_escrow(escrow).intermediate_results_hash
    assert recovery < 30
