"""An escrow of espeak-ng speech becomes listed jobs: MP3 clips in CVAT tasks (the test
double) with `auto` intervals from VAD, clips, peaks and time maps in the oracle's bucket."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cvat_sdk import Client
from cvat_sdk.api_client.exceptions import ApiException
from fastapi import FastAPI
from sqlalchemy import select
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from audio_oracles.requester import RequesterSettings, launch
from audio_pipeline import decode, detect_speech
from audio_pipeline.segments import format_time, parse_time
from exchange_oracle.build import BuildContext, BuildFailed, build_escrow
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import escrows, events, jobs, metadata
from oracle_core.chain import Chain
from oracle_core.db import make_engine, make_sessionmaker
from oracle_core.manifest import Annotation
from oracle_core.storage import ObjectStorage, UrlPolicy
from sandbox import accounts
from sandbox.cvat_double import create_app
from sandbox.cvat_double.app import Fault
from tests.integration.conftest import free_port, serve
from tests.integration.escrows import key, register_oracles
from tests.integration.jobdata import manifest

pytestmark = pytest.mark.integration


@pytest.fixture
def world(fresh_chain: str, s3_url: str, pg_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    engine = make_engine(pg_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    port = free_port()
    sink = FastAPI()
    sink.post("/webhook")(lambda: {})
    with (
        serve(
            cvat_app := create_app(tmp_path / "cvat.db", f"http://127.0.0.1:{port}"), port=port
        ) as cvat_url,
        serve(sink) as sink_url,
    ):
        register_oracles(fresh_chain)
        exchange = accounts.account(accounts.EXCHANGE_ORACLE).address
        common = dict(
            rpc_url=fresh_chain,
            storage_endpoint_url=s3_url,
            storage_access_key="sandbox",
            storage_secret_key="sandbox-secret",
            allow_private_urls=True,
        )
        requester = RequesterSettings(
            **common,
            private_key=key(accounts.JOB_LAUNCHER),
            storage_bucket="requester",
            exchange_oracle_address=exchange,
            recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
            reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
            webhook_url_overrides={exchange: f"{sink_url}/webhook"},
        )
        settings = ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=cvat_url,
            public_url="http://127.0.0.1:1",
        )
        sessions = make_sessionmaker(engine)
        ctx = BuildContext(
            settings,
            sessions,
            Chain(fresh_chain, key(accounts.EXCHANGE_ORACLE)),
            ObjectStorage(
                s3_url, "sandbox", "sandbox-secret", policy=UrlPolicy(allow_private=True)
            ),
            lambda: Cvat(cvat_url, "admin", "admin-password"),
        )
        yield {
            "requester": requester,
            "ctx": ctx,
            "cvat_url": cvat_url,
            "faults": cvat_app.state.faults,
        }
    metadata.drop_all(engine)
    engine.dispose()


def test_an_escrow_becomes_listed_jobs_with_vad_pre_segments(
    world: dict[str, Any], job_folder: Path, tmp_path: Path
) -> None:
    ctx: BuildContext = world["ctx"]
    launched = launch(world["requester"], manifest(), Decimal(60), job_folder)
    count = build_escrow(ctx, 1338, launched.escrow_address)
    assert count >= 3  # ~25 s of data in clips of at most 12 s (20 % honeypots)

    with ctx.sessions() as s:
        escrow = s.execute(select(escrows)).one()
        rows = s.execute(select(jobs).order_by(jobs.c.clip_index)).all()
    assert escrow.status == "ready" and len(rows) == count
    assert int(escrow.reward_per_job) == 60 * 10**18 * 94 // 100 // count
    assert all(r.status == "free" and r.honeypots for r in rows)

    with Client(world["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        project = client.projects.retrieve(escrow.cvat_project_id)
        assert project.tasks.count == count
        for row in rows:
            job = client.jobs.retrieve(row.cvat_job_id)
            # The job is as long as CVAT counts the clip (its stream less the encoder's
            # start), a little short of our decode; every interval fits inside it.
            assert job.stop_frame == row.duration_ms - 1
            assert row.duration_ms <= row.time_map["duration_ms"] < row.duration_ms + 100
            clip = tmp_path / f"clip{row.clip_index}.mp3"
            clip.write_bytes(ctx.storage.get("exchange", row.clip_key))
            intervals = job.get_annotations().intervals
            assert all(i.stop <= row.duration_ms for i in intervals)
            assert intervals and all(str(i.source) == "auto" for i in intervals)
            heard = detect_speech(decode(clip))
            assert len(heard) == len(intervals)
            for got, want in zip(sorted(intervals, key=lambda i: i.start), heard, strict=True):
                assert abs(got.start - want.start * 1000) <= 100
    peaks = json.loads(
        ctx.storage.get(
            "exchange", rows[0].clip_key.replace("clips/", "peaks/").replace(".mp3", "-20.json")
        )
    )
    assert peaks["version"] == 2 and peaks["samples_per_pixel"] == 800

    # Built again (a retried task): nothing new in CVAT, the same jobs. Then as if the
    # worker died after making the last CVAT task but before recording its job.
    assert build_escrow(ctx, 1338, launched.escrow_address) == count
    with ctx.sessions() as s:
        s.execute(jobs.delete().where(jobs.c.clip_index == count - 1))
        s.execute(escrows.update().values(status="packing"))
        s.commit()
    assert build_escrow(ctx, 1338, launched.escrow_address) == count
    with Client(world["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        assert client.projects.retrieve(escrow.cvat_project_id).tasks.count == count


def test_a_bad_manifest_fails_the_escrow_and_tells_the_launcher(
    world: dict[str, Any], job_folder: Path
) -> None:
    ctx: BuildContext = world["ctx"]
    bad = manifest(max_segment_duration=-1)
    launched = launch(world["requester"], bad, Decimal(5), job_folder)
    with pytest.raises(BuildFailed, match="annotation.details.max_segment_duration"):
        build_escrow(ctx, 1338, launched.escrow_address)
    with ctx.sessions() as s:
        escrow = s.execute(select(escrows)).one()
        (sent,) = s.execute(select(events.outbox)).all()
    assert escrow.status == "failed" and "max_segment_duration" in escrow.failure_reason
    body = json.loads(sent.body)
    assert (
        body["event_type"] == "escrow_failed"
        and "max_segment_duration" in body["event_data"]["reason"]
    )
    assert sent.target_address == accounts.account(accounts.JOB_LAUNCHER).address


def test_corrupt_media_fail_the_escrow_naming_every_bad_file(
    world: dict[str, Any], job_folder: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "job"
    shutil.copytree(job_folder, folder)
    good = (folder / "media" / "talk0.mp3").read_bytes()
    (folder / "media" / "cut.mp3").write_bytes(good[: len(good) // 3])
    (folder / "media" / "noise.wav").write_bytes(b"RIFF" + os.urandom(4000))
    launched = launch(world["requester"], manifest(), Decimal(5), folder)
    with pytest.raises(BuildFailed) as failed:
        build_escrow(world["ctx"], 1338, launched.escrow_address)
    reason = str(failed.value)
    assert "cut.mp3:" in reason and "noise.wav:" in reason and "talk0.mp3" not in reason
    with world["ctx"].sessions() as s:
        escrow = s.execute(select(escrows)).one()
        assert s.execute(select(jobs)).all() == []
    assert escrow.status == "failed" and escrow.failure_reason == reason


def test_a_cvat_error_mid_build_resumes_without_duplicates(
    world: dict[str, Any], job_folder: Path
) -> None:
    ctx: BuildContext = world["ctx"]
    world["faults"].add(Fault("POST", r"^/api/tasks/?$", status=500, skip=1))
    launched = launch(world["requester"], manifest(), Decimal(5), job_folder)
    with pytest.raises(ApiException) as raised:
        build_escrow(ctx, 1338, launched.escrow_address)
    assert raised.value.status == 500
    with ctx.sessions() as s:
        escrow = s.execute(select(escrows)).one()
        assert len(s.execute(select(jobs)).all()) == 1  # the first clip is listed already
    assert escrow.status == "packing"
    # Then CVAT stalls past the client's timeout on a task upload: also retryable.
    world["faults"].add(Fault("POST", r"^/api/tasks/?$", status=0, delay_s=3.0))
    slow = Cvat(world["cvat_url"], "admin", "admin-password", timeout_s=1.0)
    impatient = replace(ctx, cvat=lambda: slow)
    with pytest.raises(ReadTimeoutError):
        build_escrow(impatient, 1338, launched.escrow_address)
    count = build_escrow(ctx, 1338, launched.escrow_address)  # the task's retry
    with Client(world["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        assert client.projects.retrieve(escrow.cvat_project_id).tasks.count == count
    with ctx.sessions() as s:
        assert s.execute(select(escrows.c.status)).scalar() == "ready"


def test_only_the_listed_regions_are_annotated_and_no_answer_is_cut_into_them(
    world: dict[str, Any], job_folder: Path, tmp_path: Path
) -> None:
    """HUMAN's `regions_url`: the parts of the media to annotate. Ground truth may lie in
    the same recordings; its spans (and their honeypot context) never reach a data clip."""
    ctx: BuildContext = world["ctx"]
    folder = tmp_path / "job"
    shutil.copytree(job_folder, folder)
    gt_rows = [line.split("\t") for line in (folder / "gt.tsv").read_text().splitlines()[1:]]
    gt_spans = [(round(parse_time(r[1]) * 1000), round(parse_time(r[2]) * 1000)) for r in gt_rows]
    gt_end = len(decode(folder / "media" / "gt.wav")) // 16  # 16 kHz: samples to ms
    # The whole of gt.wav (which holds every ground-truth span) and the first 4 s of talk0;
    # talk1 is not listed, so it is not annotated at all.
    (folder / "regions.tsv").write_text(
        "filename\tstart\tstop\tlabel\n"
        f"gt.wav\t0:00:00\t{format_time(gt_end / 1000)}\tspeech\n"
        "talk0.mp3\t0:00:00\t0:00:04\tspeech\n"
    )
    launched = launch(world["requester"], manifest(), Decimal(10), folder)
    assert build_escrow(ctx, 1338, launched.escrow_address) >= 1
    with ctx.sessions() as s:
        rows = s.execute(select(jobs)).all()
    data = []
    for row in rows:
        honeypots = {(h["source"], h["start_ms"], h["end_ms"]) for h in row.honeypots}
        for piece in row.time_map["pieces"]:
            where = (
                piece["source"],
                piece["source_start_ms"],
                piece["source_start_ms"] + piece["length_ms"],
            )
            if where[1:] not in {h[1:] for h in honeypots if h[0] == where[0]}:
                data.append(where)
    assert {source for source, _, _ in data} == {"gt.wav", "talk0.mp3"}
    assert all(end <= 4000 for source, _, end in data if source == "talk0.mp3")
    for source, start, end in data:
        if source == "gt.wav":
            for a, b in gt_spans:  # no span, nor its 0.5 s of context, in a data piece
                assert end <= a - 500 or start >= b + 500, (start, end, a, b)
    covered = sum(end - start for source, start, end in data if source == "gt.wav")
    assert covered > 0  # the pauses between spans are annotated as data


def test_an_escrow_past_this_oracles_caps_fails_naming_the_cap(
    world: dict[str, Any], job_folder: Path
) -> None:
    """Anyone can launch an escrow: one with more files (or hours) than the oracle takes
    fails at once with `escrow_failed` naming the cap, before any decoding."""
    ctx: BuildContext = world["ctx"]
    capped = replace(ctx, settings=ctx.settings.model_copy(update={"max_escrow_files": 2}))
    launched = launch(world["requester"], manifest(), Decimal(5), job_folder)
    with pytest.raises(BuildFailed, match="MAX_ESCROW_FILES"):
        build_escrow(capped, 1338, launched.escrow_address)
    with ctx.sessions() as s:
        (sent,) = s.execute(select(events.outbox)).all()
        assert s.execute(select(jobs)).all() == []
    assert "at most 2 per escrow" in json.loads(sent.body)["event_data"]["reason"]


def test_cvat_5xx_are_retried_per_request_and_posts_are_never_sent_twice(
    world: dict[str, Any],
) -> None:
    """A CVAT answering 5xx for a moment costs a few seconds, not a task retry: requests
    that change nothing twice are retried with jittered backoff up to a deadline; a POST
    that reached CVAT is not (it might have made something)."""
    faults = world["faults"]
    cvat = Cvat(world["cvat_url"], "admin", "admin-password", retry_deadline_s=20)
    try:
        annotation = Annotation.model_validate(manifest()["annotation"])
        faults.add(Fault("GET", r"^/api/projects/?$", status=503, times=3))
        project = cvat.ensure_project("retried", annotation)  # a GET first, retried
        assert project > 0
        faults.add(Fault("POST", r"^/api/webhooks/?$", status=502, times=1))
        with pytest.raises(ApiException) as raised:
            cvat.ensure_webhook(project, "http://127.0.0.1:1/hook", "s")
        assert raised.value.status == 502
        assert cvat.ensure_webhook(project, "http://127.0.0.1:1/hook", "s") > 0  # once
    finally:
        cvat.close()
    impatient = Cvat(world["cvat_url"], "admin", "admin-password", retry_deadline_s=0.2)
    try:
        faults.add(Fault("GET", r"^/api/projects/?$", status=503, times=50))
        with pytest.raises((ApiException, MaxRetryError)):  # past its deadline: it surfaces
            impatient.ensure_project("never", Annotation.model_validate(manifest()["annotation"]))
    finally:
        impatient.close()
