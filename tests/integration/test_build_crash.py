"""A Celery worker killed (SIGKILL) while packing an escrow: the beat task that resumes
stalled builds hands the escrow to another worker, which finishes it with no duplicate
CVAT task and no clip missing."""

from __future__ import annotations

import shutil
import time
import wave
from decimal import Decimal
from pathlib import Path

import pytest
from cvat_sdk import Client
from sqlalchemy import select

from audio_oracles.requester import launch
from audio_pipeline import decode
from audio_pipeline.segments import format_time
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.db import escrows, jobs, source_files
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import wait_for, worker_process
from tests.integration.exchange_world import (
    escrow_status,
    exchange_world,
    jobs_listed,
    resume_until_ready,
    start_worker,
)
from tests.integration.jobdata import JobData, manifest

pytestmark = [pytest.mark.integration, pytest.mark.faults]


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

        doomed = start_worker(settings)
        try:
            prepared = prepare_escrow(ctx.build, 1338, launched.escrow_address)
            for name in prepared.pending:
                tasks.analyze_file.delay(prepared.escrow_id, name)
            wait_for(lambda: jobs_listed(ctx) >= 2, 60, "packing under way")
        finally:
            doomed.kill()
        killed = time.monotonic()
        before = jobs_listed(ctx)
        assert escrow_status(ctx) == "packing"
        time.sleep(1.5)
        assert jobs_listed(ctx) == before  # nobody is packing now
        with worker_process(tasks.app, "exchange_oracle.tasks", settings):
            # With the default stall: the killed packer's heartbeat stopped, so another
            # worker takes the build within seconds.
            resume_until_ready(ctx)
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


def _long_job(job_data: JobData, folder: Path, minutes: int) -> Path:
    """A job whose one data file is long (its analysis takes seconds) while only its first
    8 s are annotated (regions), so the kill lands in analysis and packing stays short."""
    (folder / "media").mkdir(parents=True)
    shutil.copy(job_data.root / "media" / "gt.wav", folder / "media" / "gt.wav")
    shutil.copy(job_data.root / "gt.tsv", folder / "gt.tsv")
    pcm = decode(job_data.root / "media" / "talk0.mp3", rate=16_000)
    repeats = int(minutes * 60 * 16_000 / len(pcm)) + 1
    with wave.open(str(folder / "media" / "long.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        for _ in range(repeats):
            w.writeframes(pcm.astype("<i2").tobytes())
    gt_end = len(decode(folder / "media" / "gt.wav", rate=16_000)) / 16_000
    (folder / "regions.tsv").write_text(
        "filename\tstart\tstop\tlabel\n"
        f"gt.wav\t0:00:00\t{format_time(gt_end)}\tspeech\nlong.wav\t0:00:00\t0:00:08\tspeech\n"
    )
    return folder


def test_a_worker_killed_mid_analysis_is_replaced_and_the_file_analysed_once(
    fresh_chain: str, s3_url: str, pg_url: str, redis_url: str, tmp_path: Path, job_data: JobData
) -> None:
    data = _long_job(job_data, tmp_path / "job", minutes=90)
    with exchange_world(fresh_chain, s3_url, pg_url, redis_url, tmp_path) as world:
        ctx, settings = world["ctx"], world["settings"]
        job = manifest(clip_duration=6)
        launched = launch(world["requester"], job, Decimal(5), data)

        def files() -> dict[str, str]:
            with ctx.sessions() as s:
                return dict(s.execute(select(source_files.c.name, source_files.c.status)).all())

        doomed = start_worker(settings)
        try:
            prepared = prepare_escrow(ctx.build, 1338, launched.escrow_address)
            for name in sorted(prepared.pending):  # gt.wav (milliseconds), then long.wav
                tasks.analyze_file.delay(prepared.escrow_id, name)
            wait_for(lambda: files()["gt.wav"] == "done", 60, "gt.wav analysed")
            time.sleep(0.2)  # long.wav's analysis is under way: it takes seconds
        finally:
            doomed.kill()
        killed = time.monotonic()
        assert files()["long.wav"] == "pending" and escrow_status(ctx) == "analysing"
        with worker_process(tasks.app, "exchange_oracle.tasks", settings):
            resume_until_ready(ctx, timeout_s=180)
        recovery = time.monotonic() - killed
        print(f"recovery: kill -9 mid-analysis -> ready in {recovery:.1f} s")
        assert set(files().values()) == {"done"}
        with ctx.sessions() as s:
            indexes = sorted(s.execute(select(jobs.c.clip_index)).scalars())
        assert indexes == list(range(len(indexes))) and indexes
        assert recovery < tasks.STALLED_S + 60  # the stall, the analysis again, the packing
