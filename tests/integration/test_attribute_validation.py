"""Attributes scored on honeypots, through the whole stack: the ground truth gives each
span's gender, the manifest scores it (target 0.8); a careful worker is accepted and a
worker who picks one value for every segment, with a perfect transcript, is rejected
with the reason naming the metric, the value, the target and the honeypot count."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from audio_oracles.requester import launch
from audio_pipeline.segments import format_time
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs
from recording_oracle.context import RecordingContext
from recording_oracle.db import results as scored
from tests.integration.conftest import wait_for
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import annotate, assignment_status, escrow_status

pytestmark = pytest.mark.integration


def _with_gender_truth(job_data: JobData, folder: Path) -> None:
    shutil.copytree(job_data.root, folder)
    lines = ["filename\tstart\tstop\tlabel\ttext\tspan_id\tgender"]
    lines += [
        f"gt.wav\t{format_time(s.start_ms / 1000)}\t{format_time(s.end_ms / 1000)}\tspeech\t"
        f"{s.text}\tgt{i}\t{s.attributes['gender']}"
        for i, s in enumerate(job_data.truth["gt.wav"])
    ]
    (folder / "gt.tsv").write_text("\n".join(lines) + "\n")


def _one_value(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**s, "attributes": {**s["attributes"], "gender": "other"}} for s in segments]


def test_a_worker_who_picks_one_value_for_everything_is_rejected_on_it(
    market: dict[str, Any],
    job_data: JobData,
    tmp_path: Path,
) -> None:
    m = market
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    _with_gender_truth(job_data, tmp_path / "job")
    job = manifest()
    job["annotation"]["validation"]["attributes"] = {"gender": {"target": 0.8}}
    launched = launch(m["requester"], job, Decimal(20), tmp_path / "job")
    assert launched.notified, launched.notify_error
    escrow = launched.escrow_address
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    first = [
        annotate(m, 90 + i, escrow, job_data.truth, change=_one_value if i == 0 else None)
        for i in range(n_jobs)
    ]
    wait_for(lambda: assignment_status(exchange, first[0]) == "rejected", 60, "one value rejected")
    with exchange.sessions() as s:
        reason = s.execute(
            select(assignments.c.reject_reason).where(assignments.c.id == first[0])
        ).scalar_one()
    assert reason.startswith("gender accuracy 0.00 < 0.80 on ") and "honeypot segment" in reason
    assert "WER" not in reason  # the transcript itself was perfect
    assert all(assignment_status(exchange, a) == "completed" for a in first[1:])
    with recording.sessions() as s:
        rows = {r.assignment_id: r for r in s.execute(select(scored)).all()}
    for assignment_id in first[1:]:
        (gender,) = rows[assignment_id].attributes
        assert gender["name"] == "gender" and gender["accuracy"] == 1.0 and gender["honeypots"]
    (bad,) = rows[first[0]].attributes
    assert bad["accuracy"] == 0.0 and not rows[first[0]].passed
