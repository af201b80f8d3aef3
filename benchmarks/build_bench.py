"""An escrow of 60 one-minute files -> listed jobs, the Celery way: media analysed in
parallel by two worker processes (this machine has two cores), then packed into clips,
uploaded and made into CVAT tasks (the test double). Prints time to the first and to the
last listed job, and the analysis throughput. Needs PostgreSQL and Redis on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import func, select

from audio_oracles.requester import RequesterSettings, launch
from audio_pipeline.segments import format_time
from benchmarks.media import LINES, OUT, VOICES
from exchange_oracle import tasks
from exchange_oracle.build import prepare_escrow
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs, metadata, source_files
from oracle_core.chain import Chain
from oracle_core.registration import Registration, register
from sandbox import accounts
from sandbox import chain as local_chain
from sandbox.speech import Utterance, compose, write_audio

FILES, MINUTES_EACH, WORKERS = 60, 1, 2
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DB = "audio_oracles_bench_build"
CHAIN_PORT = int(os.environ.get("BENCH_CHAIN_PORT", "18547"))


def media() -> Path:
    """60 one-minute MP3s of speech (different offsets of one track) and a ground truth."""
    root = OUT / "build-60x1min"
    if (root / "gt.tsv").exists():
        return root
    (root / "media").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    utterances = [Utterance(line, VOICES[i % len(VOICES)]) for i, line in enumerate(LINES)]
    track = compose(utterances, list(rng.uniform(0.4, 2.0, len(utterances) - 1)), tail_s=1.0)
    minute = 60 * track.rate
    long = np.tile(track.pcm, int(np.ceil(2 * minute / len(track.pcm))))
    for i in range(FILES):
        start = int(rng.integers(0, len(long) - minute))
        write_audio(root / "media" / f"talk{i:02d}.mp3", long[start : start + minute], track.rate)
    gt = compose(utterances[:5], 1.0)
    write_audio(root / "media" / "gt.wav", gt.pcm, gt.rate)
    lines = ["filename\tstart\tstop\tlabel\ttext\tspan_id"] + [
        f"gt.wav\t{format_time(s.start)}\t{format_time(s.end)}\tspeech\t{t}\tg{n}"
        for n, (s, t) in enumerate(zip(gt.spans, gt.texts, strict=True))
    ]
    (root / "gt.tsv").write_text("\n".join(lines) + "\n")
    return root


def _database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{DB}"


def main() -> None:
    import logging

    import uvicorn
    from moto.server import ThreadedMotoServer

    from sandbox.cvat_double import create_app as create_cvat

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    folder = media()
    chain_url, started_chain = local_chain.up(CHAIN_PORT)
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=18548, verbose=False)
    s3.start()
    tmp = tempfile.mkdtemp()
    cvat_server = uvicorn.Server(
        uvicorn.Config(
            create_cvat(Path(tmp) / "cvat.db", "http://127.0.0.1:18549"),
            host="127.0.0.1",
            port=18549,
            log_level="warning",
        )
    )
    import threading

    threading.Thread(target=cvat_server.run, daemon=True).start()
    while not cvat_server.started:
        time.sleep(0.05)
    common = dict(
        rpc_url=chain_url,
        storage_endpoint_url="http://127.0.0.1:18548",
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
    )
    settings = ExchangeSettings(
        **common,
        private_key=accounts.account(accounts.EXCHANGE_ORACLE).key.to_0x_hex(),
        storage_bucket="exchange",
        cvat_url="http://127.0.0.1:18549",
        database_url=_database(),
        celery_broker_url=REDIS,
        public_url="http://127.0.0.1:1",
    )
    ctx = ExchangeContext(settings)
    metadata.create_all(ctx.engine)
    for index, role in ((2, "exchange_oracle"), (3, "recording_oracle"), (4, "reputation_oracle")):
        key = accounts.account(index).key.to_0x_hex()
        register(
            Chain(chain_url, key),
            Registration(
                url="http://x.invalid", webhook_url="http://x.invalid/webhook", role=role, fee=1
            ),
        )
    env = {**os.environ}
    for name, value in settings:
        if value is not None:
            env[name.upper()] = str(getattr(value, "get_secret_value", lambda v=value: v)())
    env["WEBHOOK_URL_OVERRIDES"] = "{}"
    env["URL_ALLOW_HOSTS"] = "[]"
    command = [sys.executable, "-m", "celery", "-A", "exchange_oracle.tasks", "worker"]
    command += ["--pool", "solo", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
    workers = [subprocess.Popen([*command, "-n", f"bench{i}@%h"], env=env) for i in range(WORKERS)]
    try:
        tasks.app.conf.broker_url = REDIS
        tasks.use(ctx)
        while len(tasks.app.control.ping(timeout=0.5)) < WORKERS:
            time.sleep(0.2)
        requester = RequesterSettings(
            **common,
            private_key=accounts.account(accounts.JOB_LAUNCHER).key.to_0x_hex(),
            storage_bucket="requester",
            exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
            recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
            reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
        )
        manifest = {
            "version": 2,
            "job_type": "audio_transcription",
            "data": {"media_url": "http://x.invalid/m", "gt_url": "http://x.invalid/g"},
            "annotation": {
                "description": "Transcribe the speech",
                "labels": ["speech"],
                "validation": {"target_score": 0.3, "target_metric": "wer"},
                "details": {"clip_duration": 60},
            },
        }
        launched = launch(requester, manifest, Decimal(100), folder)
        t0 = time.perf_counter()
        prepared = prepare_escrow(ctx.build, 1338, launched.escrow_address)  # what the event does
        for name in prepared.pending:
            tasks.analyze_file.delay(prepared.escrow_id, name)
        first = analysed = None
        while True:
            with ctx.sessions() as s:
                status = s.execute(select(escrows.c.status)).scalar_one()
                listed = s.execute(select(func.count()).select_from(jobs)).scalar_one()
                pending = s.execute(
                    select(func.count())
                    .select_from(source_files)
                    .where(source_files.c.status == "pending")
                ).scalar_one()
            now = time.perf_counter() - t0
            if analysed is None and not pending:
                analysed = now
            if first is None and listed:
                first = now
            if status in ("ready", "failed"):
                break
            time.sleep(0.1)
        total = time.perf_counter() - t0
        audio_s = FILES * MINUTES_EACH * 60
        print(f"escrow of {FILES} x {MINUTES_EACH} min files, {WORKERS} worker processes: {status}")
        speed = audio_s / (analysed or 1)
        print(f"  all files analysed after {analysed:.1f} s ({speed:.0f}x real time)")
        print(f"  first job listed after {first:.1f} s, all {listed} jobs after {total:.1f} s")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
        cvat_server.should_exit = True
        s3.stop()
        if started_chain:
            local_chain.stop_node(CHAIN_PORT)


if __name__ == "__main__":
    main()
