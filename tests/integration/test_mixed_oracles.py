"""An escrow that names HUMAN's exchange oracle with our recording oracle: HUMAN's oracle
sends `job_finished` with no data and leaves its layout in its bucket (gt.tsv,
assignments.json, task_clips.json, annotation_meta.json, assignments/<job>-<assignment>.tsv,
shaped as its `core/tasks/audio_transcription/meta.py` and `validators/audio.py` write
them); ours reads it, scores, rejects by HUMAN's assignment ids, and stores results the
reputation oracle can pay from. (Our exchange oracle writing that layout for HUMAN's
recording oracle is checked in test_validation_loop.)"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from audio_oracles.requester import launch
from oracle_core.storage import ObjectStorage, UrlPolicy
from oracle_core.webhooks import SIGNATURE_HEADER, sign
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows as recorded
from recording_oracle.db import events as recording_events
from sandbox import accounts
from sandbox.reputation import payouts_by_rule, read_results
from tests.integration.conftest import wait_for
from tests.integration.escrows import key
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import escrow_status

pytestmark = pytest.mark.integration
BUCKET = "human-exchange"


def _gt_rows(job_data: JobData) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((job_data.root / "gt.tsv").read_text()), delimiter="\t"))


def _seconds(t: str) -> float:
    h, m, s = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _clip(clip_id: str, row: int, gt: dict[str, str]) -> dict[str, Any]:
    """A clip as HUMAN's exchange oracle packs it: the ground-truth cue, 0.7 s of pause,
    then a data region; float seconds, as it writes them."""
    start, stop = _seconds(gt["start"]), _seconds(gt["stop"])
    cue = stop - start
    return {
        "id": clip_id,
        "clip_filename": f"{clip_id}.wav",
        "clip_dur": cue + 0.7 + 3.0,
        "placed": [
            {"index": 0, "source_filename": "gt.wav", "source_start": start,
             "source_stop": stop, "clip_start": 0.0, "clip_stop": cue, "kind": "gt",
             "input_ids": [f"gt.wav:{row}"]},
            {"index": 1, "source_filename": "talk0.mp3", "source_start": 0.0,
             "source_stop": 3.0, "clip_start": cue + 0.7, "clip_stop": cue + 3.7,
             "kind": "ds", "input_ids": ["talk0.mp3:0"]},
        ],
    }  # fmt: skip


def _annotation(text: str, stop: float) -> bytes:
    """HUMAN's plain annotator TSV (plus the attribute this manifest asks for)."""
    header = "start\tstop\tlabel\ttranscription\tgender\n"
    return f"{header}0:00:00\t0:00:{stop:09.6f}\tspeech\t{text}\tmale\n".encode()


def _job_finished(m: dict[str, Any], escrow: str, when: str) -> None:
    """As HUMAN's Python oracle sends it: a timestamp, no event data, signed over the
    ASCII-escaped compact JSON, posted as UTF-8."""
    doc = {"escrow_address": escrow, "chain_id": 1338, "timestamp": when,
           "event_type": "job_finished"}  # fmt: skip
    body = json.dumps(doc, separators=(",", ":")).encode()
    reply = httpx.post(
        f"{m['recording_url']}/webhook",
        content=body,
        headers={SIGNATURE_HEADER: sign(body, key(accounts.EXCHANGE_ORACLE))},
    )
    assert reply.status_code == 200, reply.text


def test_humans_exchange_oracle_with_our_recording_oracle(
    market: dict[str, Any], job_data: JobData, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = market
    recording: RecordingContext = m["recording"]
    monkeypatch.setattr(recording.settings, "exchange_oracle_storage_url", f"{s3_url}/{BUCKET}")
    launched = launch(m["requester"], manifest(), Decimal(20), job_data.root)
    escrow = launched.escrow_address
    store = ObjectStorage(s3_url, "sandbox", "sandbox-secret")
    store.ensure_bucket(BUCKET, public_read=True)
    data, results_dir = f"{escrow}@1338", f"{escrow}@1338-results"
    gt = _gt_rows(job_data)
    clips = [_clip("a" * 32, 0, gt[0]), _clip("b" * 32, 1, gt[1])]
    store.put(BUCKET, f"{data}/gt.tsv", (job_data.root / "gt.tsv").read_bytes())
    store.put(BUCKET, f"{data}/assignments.json", json.dumps(clips).encode())
    task_clips = {"1000": "a" * 32, "1001": "b" * 32}  # CVAT task id -> clip
    store.put(BUCKET, f"{data}/task_clips.json", json.dumps(task_clips).encode())
    careful, sloppy = accounts.account(120).address, accounts.account(121).address

    def publish(jobs: list[tuple[int, int, str, str, str]]) -> None:
        meta = {"jobs": [
            {"job_id": job, "task_id": task, "annotator_wallet_address": wallet,
             "assignment_id": assignment, "start_frame": 0, "stop_frame": 9999,
             "assignment_bounty": "10"}
            for job, task, wallet, assignment, _ in jobs
        ]}  # fmt: skip
        for job, _, _, assignment, text in jobs:
            clip = clips[job - 2000]
            cue = clip["placed"][0]["clip_stop"]
            store.put(
                BUCKET, f"{results_dir}/assignments/{job}-{assignment}.tsv", _annotation(text, cue)
            )
        store.put(BUCKET, f"{results_dir}/annotation_meta.json", json.dumps(meta).encode())

    publish([
        (2000, 1000, careful, "peer-1", gt[0]["text"]),
        (2001, 1001, sloppy, "peer-2", "something else entirely"),
    ])  # fmt: skip
    _job_finished(m, escrow, "2026-12-02 10:00:00.000001+00:00")

    def rejected() -> list[Any]:
        with recording.sessions() as s:
            rows = s.execute(
                select(recording_events.outbox).where(
                    recording_events.outbox.c.event_type == "submission_rejected"
                )
            ).all()
        return [json.loads(r.body) for r in rows]

    wait_for(rejected, 60, "submission_rejected to HUMAN's exchange oracle")
    (sent,) = rejected()
    assert [a["assignment_id"] for a in sent["event_data"]["assignments"]] == ["peer-2"]
    assert sent["event_data"]["assignments"][0]["reason"].startswith("WER")

    # HUMAN's oracle reassigns the job; the redo is right. A new job_finished (new timestamp).
    publish([
        (2000, 1000, careful, "peer-1", gt[0]["text"]),
        (2001, 1001, careful, "peer-3", gt[1]["text"]),
    ])  # fmt: skip
    _job_finished(m, escrow, "2026-12-02 10:05:00.000001+00:00")
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")

    state = m["recording"].chain.read_escrow(escrow)
    results = read_results(state.intermediate_results_url, UrlPolicy(allow_private=True))
    finals = {r["id"]: r for r in results.meta["results"]}
    paid_to = [finals[j["final_result_id"]]["assignment_id"] for j in results.meta["jobs"]]
    assert sorted(paid_to) == ["peer-1", "peer-3"]
    assert payouts_by_rule(results.meta, state.reserved_funds) == {careful: state.reserved_funds}
