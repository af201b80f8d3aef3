"""The whole marketplace on one machine: local chain with HUMAN's contracts, S3 on loopback,
the CVAT test double, both oracles (HTTP apps and Celery workers in their own processes),
a HUMAN App token issuer, a reputation oracle stand-in and bot annotators. A development
tool: it plays the world around the oracles, which run unchanged.

Embedded defaults: a SQLite file per oracle and Celery's filesystem broker (no server).
With DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) set, the same run uses them:
each oracle gets its own database next to the one named.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from sandbox.demo_market import HMT, DemoFailed, Market, ReputationStandIn, Timeline
from sandbox.demo_report import write_reports
from sandbox.procs import die_with_parent
from sandbox.servers import free_port, serve_in_thread

REPO = Path(__file__).resolve().parent.parent


@dataclass
@dataclass
class DemoOptions:
    files: int = 3
    workers: int = 4
    seed: int = 7
    keep_running: bool = False
    chain_port: int = 8545
    s3_port: int = 9000
    # 0: any free port
    cvat_port: int = 0
    exchange_port: int = 0
    recording_port: int = 0
    reputation_port: int = 0
    work_dir: Path = REPO / ".demo"
    report_dir: Path = REPO
    amount_hmt: int = 20
    timeout_s: float = 300.0


# -- processes and servers -------------------------------------------------------------
@contextlib.contextmanager
def _worker(module: str, env: dict[str, str], work_dir: Path, app: Any) -> Iterator[None]:
    """A Celery worker with beat for one oracle, in its own process, as deployed."""
    name = module.split(".")[0]
    log = (work_dir / f"{name}-worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", module, "worker", "-B", "--pool", "solo",
         "--loglevel", "WARNING", "-s", str(work_dir / f"{name}-beat"), "--without-mingle",
         "--without-gossip", "-n", f"{name}@demo"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        preexec_fn=die_with_parent,  # never outlives the demo, even one killed with -9
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DemoFailed(f"the {name} worker did not start (see {log.name})")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _databases(work_dir: Path) -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgresql"):
        return f"sqlite:///{work_dir / 'exchange.db'}", f"sqlite:///{work_dir / 'recording.db'}"
    import psycopg

    server, _, name = base.rpartition("/")
    urls = []
    for oracle in ("exchange", "recording"):
        db = f"{name}_{oracle}"
        admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{db}"')
        urls.append(f"{server}/{db}")
    return urls[0], urls[1]


# -- the dataset -----------------------------------------------------------------------
SENTENCES = (
    "The birch canoe slid on the smooth planks",
    "Glue the sheet to the dark blue background",
    "It is easy to tell the depth of a well",
    "These days a chicken leg is a rare dish",
    "Rice is often served in round bowls",
    "The juice of lemons makes fine punch",
    "The box was thrown beside the parked truck",
    "The hogs were fed chopped corn and garbage",
    "Four hours of steady work faced us",
    "A large size in stockings is hard to sell",
    "The boy was there when the sun rose",
    "A rod is used to catch pink salmon",
)
VOICES = (("en-us", "male"), ("en-gb", "male"), ("en-us+f3", "female"), ("en-gb+f2", "female"))


def make_dataset(folder: Path, files: int, seed: int) -> tuple[Any, float]:
    """`files` speech files of three sentences each plus a ground-truth file; returns what a
    perfect annotator hears in each file, and the seconds of data audio."""
    from audio_pipeline.segments import format_time
    from sandbox.annotators import Said
    from sandbox.speech import Utterance, compose, write_audio

    (folder / "media").mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[Said]] = {}
    seconds = 0.0

    def track_of(n: int, offset: int) -> tuple[Any, list[tuple[str, str]]]:
        picks = [
            (SENTENCES[(offset + i) % len(SENTENCES)], *VOICES[(offset + i) % len(VOICES)])
            for i in range(n)
        ]
        track = compose([Utterance(t, v) for t, v, _ in picks], 1.2)
        return track, [(t, g) for t, _, g in picks]

    def said(track: Any, picks: list[tuple[str, str]]) -> list[Said]:
        return [
            Said(round(s.start * 1000), round(s.end * 1000), t, {"gender": g})
            for s, (t, g) in zip(track.spans, picks, strict=True)
        ]

    for i in range(files):
        track, picks = track_of(3, seed + 3 * i)
        write_audio(folder / "media" / f"talk{i}.mp3", track.pcm, track.rate, out_rate=44_100)
        truth[f"talk{i}.mp3"] = said(track, picks)
        seconds += track.duration_s
    gt, picks = track_of(3, seed + 100)
    write_audio(folder / "media" / "gt.wav", gt.pcm, gt.rate)
    truth["gt.wav"] = said(gt, picks)
    lines = ["filename\tstart\tstop\tlabel\ttext\tspan_id"] + [
        f"gt.wav\t{format_time(s.start)}\t{format_time(s.end)}\tspeech\t{t}\tgt{n}"
        for n, (s, (t, _)) in enumerate(zip(gt.spans, picks, strict=True))
    ]
    (folder / "gt.tsv").write_text("\n".join(lines) + "\n")
    return truth, seconds


MANIFEST = {
    "version": 2,
    "job_type": "audio_transcription",
    "data": {"media_url": "http://x.invalid/set-by-launch", "gt_url": "http://x.invalid/gt"},
    "annotation": {
        "description": "Mark every utterance, transcribe it and give the speaker's gender",
        "labels": [{"name": "speech", "attributes": ["gender"]}],
        "shared_attributes": [{"name": "gender", "values": ["male", "female", "other"]}],
        "validation": {"target_score": 0.3, "target_metric": "wer"},
        "details": {"clip_duration": 12, "max_time": 600, "export_formats": ["native"]},
    },
}


# -- the run ---------------------------------------------------------------------------
def run_demo(opts: DemoOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs the marketplace until the escrow is Complete on chain; returns the report."""
    work = opts.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.setdefault("CELERY_BROKER_URL", "filesystem://")
    os.environ["CELERY_FILESYSTEM_FOLDER"] = str(work / "broker")
    timeline = Timeline(printer=say)
    with contextlib.ExitStack() as stack:
        report = _run(opts, timeline, stack)
        if opts.keep_running:
            say("everything is up (Ctrl-C stops it):")
            for name, url in report["urls"].items():
                say(f"  {name}: {url}")
            try:
                while True:  # the try-out job stays open for as long as the demo runs
                    report["try_out"].hold()
                    time.sleep(TryOut.RENEW_S)
            except KeyboardInterrupt as stop:
                say(f"{stop or 'interrupted'}: stopping everything the demo started")
    return report


TRY_ESCROW = "0x" + "7e" * 20  # outside the chain: a job to open in the annotator page


@dataclass
class TryOut:
    """The try-out job's assignment: its expiry is pushed forward while the demo runs (the
    demo's manifest gives an assignment 10 minutes, too short for a visitor)."""

    exchange: Any
    assignment_id: str
    url: str
    RENEW_S: ClassVar[float] = 60.0
    HOLD_S: ClassVar[float] = 3600.0

    def hold(self) -> None:
        from sqlalchemy import update

        from exchange_oracle.db import assignments

        until = datetime.now(UTC) + timedelta(seconds=self.HOLD_S)
        with self.exchange.sessions() as session, session.begin():
            session.execute(
                update(assignments)
                .where(assignments.c.id == self.assignment_id, assignments.c.status == "active")
                .values(expires_at=until)
            )


def _job_to_try(exchange: Any, exchange_url: str, issuer: Any) -> TryOut:
    """A fresh job with the demo's labels, taken for a worker of its own: the URL (with the
    worker's token in its fragment) opens it in the annotator page. Submitting it completes
    its CVAT job; it belongs to no escrow on chain, so nothing is paid for it."""
    from oracle_core.manifest import Annotation
    from sandbox.accounts import account
    from sandbox.clip_job import seed_clip_job, take_job
    from sandbox.speech import Utterance, compose

    track = compose(
        [Utterance("welcome to the annotator page", "en-us"), Utterance("try it", "en-gb")], 1.5
    )
    annotation = Annotation.model_validate(MANIFEST["annotation"])
    webhook = f"{exchange_url}/cvat-webhook"
    seed_clip_job(exchange, TRY_ESCROW, track.pcm, track.rate, annotation, webhook_url=webhook)
    token = issuer.issue(account(19).address, ttl_s=30 * 86_400)  # the sandbox's own issuer
    assignment_id = take_job(exchange_url, token, TRY_ESCROW)
    url = f"{exchange_url}/annotate/{assignment_id}#token={token}"
    return TryOut(exchange, assignment_id, url)


def _run(opts: DemoOptions, timeline: Timeline, stack: contextlib.ExitStack) -> dict[str, Any]:
    from sandbox import accounts, storage
    from sandbox import chain as local_chain

    timeline("starting the local chain (hardhat, HUMAN's contracts) and S3 (moto)")
    chain_url, chain_started = local_chain.up(opts.chain_port, tied=True)
    if chain_started:
        stack.callback(local_chain.stop_node, opts.chain_port)
    s3_url, s3_started = storage.up(opts.s3_port, tied=True)
    if s3_started:
        stack.callback(storage.down, opts.s3_port)

    from audio_oracles.requester import RequesterSettings, launch
    from exchange_oracle import tasks as exchange_tasks
    from exchange_oracle.app import create_app as create_exchange
    from exchange_oracle.config import ExchangeSettings
    from exchange_oracle.context import ExchangeContext
    from oracle_core.chain import Chain
    from oracle_core.migrations import upgrade
    from oracle_core.registration import Registration, register
    from recording_oracle import tasks as recording_tasks
    from recording_oracle.app import create_app as create_recording
    from recording_oracle.config import RecordingSettings
    from recording_oracle.context import RecordingContext
    from sandbox.cvat_double import create_app as create_cvat
    from sandbox.human_app import TokenIssuer

    issuer = TokenIssuer()
    exchange_db, recording_db = _databases(opts.work_dir)
    broker = os.environ["CELERY_BROKER_URL"]
    common: dict[str, Any] = {
        "rpc_url": chain_url,
        "storage_endpoint_url": s3_url,
        "storage_access_key": storage.ACCESS_KEY,
        "storage_secret_key": storage.SECRET_KEY,
        "allow_private_urls": True,
        "celery_broker_url": broker,
    }
    ports = {
        "cvat": opts.cvat_port or free_port(),
        "exchange": opts.exchange_port or free_port(),
        "recording": opts.recording_port or free_port(),
        "reputation": opts.reputation_port or free_port(),
    }
    exchange = ExchangeContext(
        ExchangeSettings(
            **common,
            database_url=exchange_db,
            private_key=accounts.private_key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=f"http://127.0.0.1:{ports['cvat']}",
            human_app_public_key=issuer.public_key_pem,
            public_url=f"http://127.0.0.1:{ports['exchange']}",
        )
    )
    recording = RecordingContext(
        RecordingSettings(
            **common,
            database_url=recording_db,
            private_key=accounts.private_key(accounts.RECORDING_ORACLE),
            storage_bucket="recording",
            public_url=f"http://127.0.0.1:{ports['recording']}",
        )
    )
    upgrade("exchange_oracle", exchange_db)
    upgrade("recording_oracle", recording_db)
    exchange_tasks.app.conf.broker_url = broker
    recording_tasks.app.conf.broker_url = broker
    timeline("starting the CVAT test double, both oracles and their Celery workers")
    cvat_url = stack.enter_context(
        serve_in_thread(
            create_cvat(opts.work_dir / "cvat.db", f"http://127.0.0.1:{ports['cvat']}"),
            ports["cvat"],
            log_level="error",
        )
    )
    exchange_url = stack.enter_context(
        serve_in_thread(create_exchange(exchange), ports["exchange"], log_level="error")
    )
    recording_url = stack.enter_context(
        serve_in_thread(create_recording(recording), ports["recording"], log_level="error")
    )
    reputation = ReputationStandIn(common, chain_url)
    reputation_url = stack.enter_context(
        serve_in_thread(reputation.app(), ports["reputation"], log_level="error")
    )
    fs = {"CELERY_FILESYSTEM_FOLDER": os.environ["CELERY_FILESYSTEM_FOLDER"]}
    stack.enter_context(
        _worker(
            "exchange_oracle.tasks",
            {**exchange.settings.to_env(), **fs},
            opts.work_dir,
            exchange_tasks.app,
        )
    )
    stack.enter_context(
        _worker(
            "recording_oracle.tasks",
            {**recording.settings.to_env(), **fs},
            opts.work_dir,
            recording_tasks.app,
        )
    )
    for index, role, url in (
        (accounts.EXCHANGE_ORACLE, "exchange_oracle", exchange_url),
        (accounts.RECORDING_ORACLE, "recording_oracle", recording_url),
        (accounts.REPUTATION_ORACLE, "reputation_oracle", reputation_url),
    ):
        register(
            Chain(chain_url, accounts.private_key(index)),
            Registration(url=url, webhook_url=f"{url}/webhook", role=role, fee=1),
        )

    timeline(f"making {opts.files} speech files and their ground truth (espeak-ng)")
    truth, audio_s = make_dataset(opts.work_dir / "dataset", opts.files, opts.seed)
    requester = RequesterSettings(
        **common,
        private_key=accounts.private_key(accounts.JOB_LAUNCHER),
        storage_bucket="requester",
        exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
        recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
        reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
    )
    launched = launch(requester, MANIFEST, Decimal(opts.amount_hmt), opts.work_dir / "dataset")
    if not launched.notified:
        raise DemoFailed(
            f"the exchange oracle did not take escrow_created: {launched.notify_error}"
        )
    escrow = launched.escrow_address
    timeline(f"escrow {escrow} launched with {opts.amount_hmt} HMT")
    chain = Chain(chain_url)
    market = Market(exchange, recording, issuer, exchange_url, escrow, truth, timeline)
    market.wait_listed(opts.timeout_s)
    timeline(f"{market.jobs} jobs listed")
    wallets = [
        str(accounts.account(accounts.FIRST_WORKER + i).address) for i in range(opts.workers)
    ]
    before = {w: chain.hmt_balance(w) for w in wallets}
    market.work(wallets, opts.timeout_s, lambda: reputation.paid is not None)
    state = chain.read_escrow(escrow)
    deadline = time.monotonic() + 60
    while state.status != "Complete" and time.monotonic() < deadline:
        time.sleep(0.3)
        state = chain.read_escrow(escrow)
    if state.status != "Complete":
        raise DemoFailed(f"the escrow is {state.status}, not Complete, after the payout")
    paid_now = reputation.paid or {}
    total_paid = Decimal(sum(paid_now.values())) / HMT
    timeline(f"reputation stand-in paid {len(paid_now)} workers {total_paid} HMT (bulkPayOut)")
    timeline("escrow Complete on chain")
    market.wait_exchange("completed", 60)
    timeline("exchange oracle cleaned up (CVAT project and bucket files removed)")
    after = {w: chain.hmt_balance(w) for w in wallets}
    paid = reputation.paid or {}
    results_url, results_hash = state.final_results_url, state.final_results_hash
    report: dict[str, Any] = {
        "escrow_address": escrow,
        "chain_id": 1338,
        "status": state.status,
        "audio_seconds": round(audio_s, 2),
        "jobs": market.jobs,
        "assignments": market.verdicts(),
        "payouts": [
            {
                "wallet": w,
                "amount_hmt": str(Decimal(paid.get(w, 0)) / HMT),
                "balance_delta_hmt": str(Decimal(after[w] - before[w]) / HMT),
            }
            for w in wallets
            if paid.get(w) or after[w] != before[w]
        ],
        "results_url": results_url or reputation.results_url,
        "results_hash": results_hash or reputation.results_hash,
        "timings_s": {
            "escrow_to_jobs": round(
                (timeline.at(f"{market.jobs} jobs listed") or 0) - (timeline.at("escrow 0x") or 0),
                2,
            ),
            "total": round(time.monotonic() - timeline.started, 2),
        },
        "workers": market.per_worker(wallets, paid),
        "scores": market.scores(),
        "target": {"metric": "wer", "score": MANIFEST["annotation"]["validation"]["target_score"]},  # type: ignore[index]
        "timeline": timeline.events,
        "urls": {
            "exchange oracle API": f"{exchange_url}/docs",
            "recording oracle API": f"{recording_url}/docs",
            "CVAT test double": f"{cvat_url}/docs",
            "chain RPC": chain_url,
            "S3": s3_url,
        },
    }
    if opts.keep_running:
        urls: dict[str, str] = report["urls"]
        report["try_out"] = _job_to_try(exchange, exchange_url, issuer)
        urls["annotator page (try a job)"] = report["try_out"].url
    write_reports(report, opts.report_dir)
    return report
