"""A requester's existing annotations become the jobs' starting segments: an SRT for one
recording and a TextGrid for the other are read when the escrow is built, placed on the
clips in clip time with source `file` and their text as the transcription, in place of
the VAD's pre-segments there; honeypots get suggestions too, their answers garbled, so
they look like the data and accepting everything fails them. A broken file fails the
escrow naming it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import jiwer
import pytest
from sqlalchemy import select

from audio_oracles.requester import launch
from audio_pipeline.clips import TimeMap
from exchange_oracle.assignments import reset_in_cvat
from exchange_oracle.build import BuildContext, BuildFailed, build_escrow
from exchange_oracle.completion import annotations_of
from exchange_oracle.db import escrows, events, jobs
from tests.integration.jobdata import JobData, manifest
from tests.integration.test_build import world  # noqa: F401 (its fixture)

pytestmark = pytest.mark.integration


def _srt(said: list[Any]) -> str:
    def stamp(ms: int) -> str:
        return f"00:{ms // 60_000:02d}:{ms % 60_000 // 1000:02d},{ms % 1000:03d}"

    return "\n".join(
        f"{n}\n{stamp(s.start_ms)} --> {stamp(s.end_ms)}\n{s.text}\n"
        for n, s in enumerate(said, start=1)
    )


def _textgrid(said: list[Any], end_s: float) -> str:
    items = "".join(
        f"        intervals [{n}]:\n            xmin = {s.start_ms / 1000}\n"
        f'            xmax = {s.end_ms / 1000}\n            text = "{s.text}"\n'
        for n, s in enumerate(said, start=1)
    )
    return (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\n'
        f"xmax = {end_s}\ntiers? <exists>\nsize = 1\nitem []:\n    item [1]:\n"
        f'        class = "IntervalTier"\n        name = "words"\n        xmin = 0\n'
        f"        xmax = {end_s}\n        intervals: size = {len(said)}\n{items}"
    )


def _with_pre(job_data: JobData, tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    shutil.copytree(job_data.root, folder)
    (folder / "pre").mkdir()
    return folder


def test_suggestions_become_the_starting_segments_and_honeypots_stay_blind(
    world: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    ctx: BuildContext = world["ctx"]
    folder = _with_pre(job_data, tmp_path)
    truth = job_data.truth
    (folder / "pre" / "talk0.srt").write_text(_srt(truth["talk0.mp3"]))
    last = truth["talk1.mp3"][-1].end_ms / 1000 + 1
    (folder / "pre" / "talk1.TextGrid").write_text(_textgrid(truth["talk1.mp3"], last))
    # A file for the ground-truth recording too: it must never reach a honeypot.
    (folder / "pre" / "gt.srt").write_text(_srt(truth["gt.wav"]))
    launched = launch(world["requester"], manifest(), Decimal(10), folder)
    assert build_escrow(ctx, 1338, launched.escrow_address) >= 1
    cvat = ctx.cvat()
    with ctx.sessions() as s:
        rows = s.execute(
            select(jobs, escrows.c.cvat_project_id)
            .join(escrows, escrows.c.id == jobs.c.escrow_id)
            .order_by(jobs.c.clip_index)
        ).all()
    expected = {(f, s.text) for f in ("talk0.mp3", "talk1.mp3") for s in truth[f]}
    answers = {s.text for s in truth["gt.wav"]}
    found, seeded = set(), []
    try:
        for row in rows:
            tmap = TimeMap.from_dict(row.time_map)
            segments = annotations_of(cvat, row.cvat_project_id, row)
            for seg in segments:
                assert seg.transcription not in answers  # honeypots give nothing away
                # Every segment is a suggestion: honeypots look like the data around them.
                assert seg.source == "file", seg
                where = tmap.place(round(seg.start * 1000), round(seg.end * 1000))
                assert where is not None
                if where.source == "gt.wav":
                    seeded.append(seg.transcription)
                    continue
                said = next(x for x in truth[where.source] if x.text == seg.transcription)
                # At the cue's own time in its recording (a clip's edge may cut it short).
                assert where.start_ms >= said.start_ms - 1 and where.end_ms <= said.end_ms + 1
                found.add((where.source, seg.transcription))
        # A job handed to a worker (or back after a rejection) starts from the same.
        first = rows[0]
        before = annotations_of(cvat, first.cvat_project_id, first)
        reset_in_cvat(cvat, first, None)
        assert annotations_of(cvat, first.cvat_project_id, first) == before
        # A honeypot's suggestion is its answer garbled: accepted as it is, it fails.
        assert seeded
        for text in seeded:
            answer = max(answers, key=lambda a: len(set(a.split()) & set(text.split())))
            assert 0 < jiwer.wer(answer.lower(), text.lower()) < 1, (answer, text)
    finally:
        cvat.close()
    assert found and found <= expected
    assert {f for f, _ in found} == {"talk0.mp3", "talk1.mp3"}


def test_a_broken_pre_annotation_fails_the_escrow_naming_the_file(
    world: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    ctx: BuildContext = world["ctx"]
    folder = _with_pre(job_data, tmp_path)
    (folder / "pre" / "talk0.srt").write_text("1\n00:00:05,000 --> 00:00:01,000\nbackwards\n")
    launched = launch(world["requester"], manifest(), Decimal(5), folder)
    with pytest.raises(BuildFailed, match=r"talk0\.srt: cue 1"):
        build_escrow(ctx, 1338, launched.escrow_address)
    with ctx.sessions() as s:
        (sent,) = s.execute(select(events.outbox)).all()
        assert s.execute(select(jobs)).all() == []
    assert "talk0.srt" in json.loads(sent.body)["event_data"]["reason"]


def test_machine_drafts_go_on_the_data_and_honeypots_get_garbled_answers(
    world: dict[str, Any], job_data: JobData
) -> None:
    """ASR_ENGINE: the VAD pre-segments of the data get drafts (source auto), and the
    honeypots get their answers garbled with the same source, so they look alike."""
    ctx: BuildContext = world["ctx"]
    drafting = replace(
        ctx, settings=ctx.settings.model_copy(update={"asr_engine": "sandbox.asr_fake:engine"})
    )
    launched = launch(world["requester"], manifest(), Decimal(10), job_data.root)
    assert build_escrow(drafting, 1338, launched.escrow_address) >= 1
    answers = {s.text for s in job_data.truth["gt.wav"]}
    kinds = {"draft": 0, "garbled": 0}
    cvat = ctx.cvat()
    with ctx.sessions() as s:
        rows = s.execute(
            select(jobs, escrows.c.cvat_project_id).join(escrows, escrows.c.id == jobs.c.escrow_id)
        ).all()
    try:
        for row in rows:
            tmap = TimeMap.from_dict(row.time_map)
            for seg in annotations_of(cvat, row.cvat_project_id, row):
                assert seg.source == "auto"  # drafts and honeypot answers alike
                where = tmap.place(round(seg.start * 1000), round(seg.end * 1000))
                if where is not None and where.source == "gt.wav":
                    assert not seg.transcription.startswith("machine draft")
                    assert seg.transcription not in answers
                    kinds["garbled"] += 1
                else:
                    length = round((seg.end - seg.start) * 1000)
                    assert seg.transcription == f"machine draft of {length} ms"
                    kinds["draft"] += 1
    finally:
        cvat.close()
    assert kinds["draft"] and kinds["garbled"]
