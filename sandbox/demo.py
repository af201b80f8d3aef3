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
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.servers import free_port, serve_in_thread

REPO = Path(__file__).resolve().parent.parent
HMT = 10**18


class DemoFailed(RuntimeError):
    """The demo could not finish; the message says where and why."""


@dataclass
class DemoOptions:
    files: int = 3
    workers: int = 4
    seed: int = 7
    keep_running: bool = False
    chain_port: int = 8545
    s3_port: int = 9000
    work_dir: Path = REPO / ".demo"
    report_dir: Path = REPO
    amount_hmt: int = 20
    timeout_s: float = 300.0


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)
    printer: Callable[[str], None] = print

    def __call__(self, what: str) -> None:
        at = time.monotonic() - self.started
        self.events.append((round(at, 2), what))
        self.printer(f"[{at:6.1f} s] {what}")

    def at(self, what: str) -> float | None:
        return next((t for t, w in self.events if w.startswith(what)), None)


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
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return report


TRY_ESCROW = "0x" + "7e" * 20  # outside the chain: a job to open in the annotator page


def _job_to_try(exchange: Any, exchange_url: str, issuer: Any) -> str:
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
    token = issuer.issue(account(19).address)
    assignment_id = take_job(exchange_url, token, TRY_ESCROW)
    return f"{exchange_url}/annotate/{assignment_id}#token={token}"


def _run(opts: DemoOptions, timeline: Timeline, stack: contextlib.ExitStack) -> dict[str, Any]:
    from sandbox import accounts, storage
    from sandbox import chain as local_chain

    timeline("starting the local chain (hardhat, HUMAN's contracts) and S3 (moto)")
    chain_url, chain_started = local_chain.up(opts.chain_port)
    if chain_started and not opts.keep_running:
        stack.callback(local_chain.stop_node, opts.chain_port)
    s3_url, s3_started = storage.up(opts.s3_port)
    if s3_started and not opts.keep_running:
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
    ports = {name: free_port() for name in ("cvat", "exchange", "recording", "reputation")}
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
    reputation = _ReputationStandIn(common, chain_url)
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
    market = _Market(exchange, recording, issuer, exchange_url, escrow, truth, timeline)
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
        urls["annotator page (try a job)"] = _job_to_try(exchange, exchange_url, issuer)
    _write_reports(report, opts.report_dir)
    return report


class _ReputationStandIn:
    """Receives job_completed from the recording oracle (signature checked against the
    escrow), then pays from payouts.json with bulkPayOut and sends escrow_completed."""

    def __init__(self, common: dict[str, Any], chain_url: str) -> None:
        self.common = common
        self.chain_url = chain_url
        self.paid: dict[str, int] | None = None
        self.results_url = ""
        self.results_hash = ""
        self.error: str | None = None

    def app(self) -> FastAPI:
        from oracle_core.chain import Chain
        from oracle_core.webhooks import SIGNATURE_HEADER, WebhookRejected, verify

        app = FastAPI(title="reputation oracle stand-in (sandbox)")

        @app.post("/webhook")
        async def webhook(request: Request) -> JSONResponse:
            raw = await request.body()
            try:
                event = verify(
                    raw,
                    request.headers.get(SIGNATURE_HEADER),
                    {"job_completed": ("recording_oracle",)},
                    Chain(self.chain_url),
                )
            except WebhookRejected as exc:
                return JSONResponse({"detail": exc.detail}, status_code=exc.status)
            threading.Thread(target=self._pay, args=(event.envelope.escrow_address,)).start()
            return JSONResponse({"status": "accepted"})

        return app

    def _pay(self, escrow: str) -> None:
        from oracle_core.chain import Chain
        from oracle_core.config import OracleSettings
        from sandbox import accounts
        from sandbox.reputation import pay_and_complete

        key = accounts.private_key(accounts.REPUTATION_ORACLE)
        state = Chain(self.chain_url).read_escrow(escrow)
        self.results_url, self.results_hash = (
            state.intermediate_results_url,
            state.intermediate_results_hash,
        )
        try:
            done = pay_and_complete(
                OracleSettings(**self.common, private_key=key), Chain(self.chain_url, key), escrow
            )
            self.error = done.notify_error
            self.paid = done.payouts
        except Exception as exc:  # reported by the market loop
            self.error = f"{type(exc).__name__}: {exc}"
            self.paid = {}


class _Market:
    """Bot workers going through the worker API and CVAT, and what the oracles record."""

    def __init__(
        self,
        exchange: Any,
        recording: Any,
        issuer: Any,
        url: str,
        escrow: str,
        truth: Any,
        timeline: Timeline,
    ) -> None:
        self.exchange, self.recording, self.issuer = exchange, recording, issuer
        self.url, self.escrow, self.truth, self.say = url, escrow, truth, timeline
        self.jobs = 0
        self.sloppy_done = False
        self.rejected_seen: set[str] = set()
        self.recorded = False

    def _exchange_status(self) -> str:
        from sqlalchemy import select

        from exchange_oracle.db import escrows

        with self.exchange.sessions() as s:
            return str(
                s.execute(
                    select(escrows.c.status).where(escrows.c.escrow_address == self.escrow)
                ).scalar()
            )

    def wait_listed(self, timeout_s: float) -> None:
        from sqlalchemy import func, select

        from exchange_oracle.db import escrows, jobs, source_files

        deadline = time.monotonic() + timeout_s
        analysed = -1
        while (status := self._exchange_status()) != "ready":
            with self.exchange.sessions() as s:
                counts = s.execute(
                    select(source_files.c.status, func.count()).group_by(source_files.c.status)
                ).all()
            done = sum(n for st, n in counts if st != "pending")
            if counts and done != analysed:
                analysed = done
                self.say(f"files analysed {done}/{sum(n for _, n in counts)}")
            if status == "failed":
                with self.exchange.sessions() as s:
                    reason = s.execute(select(escrows.c.failure_reason)).scalar()
                raise DemoFailed(f"the escrow could not be built: {reason}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"no jobs listed after {timeout_s:.0f} s (escrow {status})")
            time.sleep(0.2)
        with self.exchange.sessions() as s:
            self.jobs = int(s.execute(select(func.count()).select_from(jobs)).scalar_one())

    def wait_exchange(self, status: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._exchange_status() != status:
            if time.monotonic() > deadline:
                raise DemoFailed(f"the exchange oracle never marked the escrow {status}")
            time.sleep(0.2)

    def work(self, wallets: list[str], timeout_s: float, done: Callable[[], bool]) -> None:
        """Workers take and finish assignments until the escrow is paid. The first
        worker's first assignment is sloppy (wrong words, no attributes)."""
        from sandbox.human_app import HumanApp

        deadline = time.monotonic() + timeout_s
        human_app = HumanApp(self.url, self.issuer)  # every call as HUMAN App makes it
        for w in wallets:
            human_app.register(w)
        while not done():
            if time.monotonic() > deadline:
                raise DemoFailed(f"the escrow was not paid within {timeout_s:.0f} s")
            progressed = False
            listed = {j["escrow_address"] for j in human_app.discover_jobs()}
            for w in wallets if self.escrow in listed else []:
                try:
                    taken = human_app.take(w, self.escrow, 1338)
                except httpx.HTTPStatusError:
                    continue
                bad = w == wallets[0] and not self.sloppy_done
                self.sloppy_done = self.sloppy_done or bad
                self._annotate(taken["assignment_id"], bad)
                kind = "sloppily" if bad else "accurately"
                self.say(f"worker {w[:10]} took a job and annotated it {kind}")
                progressed = True
            self._report_changes()
            if not progressed:
                time.sleep(0.3)

    def _annotate(self, assignment_id: str, bad: bool) -> None:
        from sqlalchemy import select

        from audio_pipeline.clips import TimeMap
        from exchange_oracle.db import assignments, escrows, jobs
        from sandbox.annotators import perfect, sloppy

        with self.exchange.sessions() as s:
            job = s.execute(
                select(jobs, escrows.c.cvat_project_id)
                .join(assignments, assignments.c.job_id == jobs.c.id)
                .join(escrows, escrows.c.id == jobs.c.escrow_id)
                .where(assignments.c.id == assignment_id)
            ).one()
        segments = perfect(TimeMap.from_dict(job.time_map), self.truth)
        cvat = self.exchange.cvat()
        try:
            cvat.put_segments(
                job.cvat_job_id, job.cvat_project_id, sloppy(segments) if bad else segments
            )
            cvat.set_state(job.cvat_job_id, "completed")
        finally:
            cvat.close()

    def _report_changes(self) -> None:
        from sqlalchemy import select

        from exchange_oracle.db import assignments
        from recording_oracle.db import escrows as recorded

        with self.exchange.sessions() as s:
            rejected = s.execute(
                select(assignments.c.id, assignments.c.reject_reason).where(
                    assignments.c.status == "rejected"
                )
            ).all()
        for assignment_id, reason in rejected:
            if assignment_id not in self.rejected_seen:
                self.rejected_seen.add(assignment_id)
                self.say(f"recording oracle rejected {assignment_id[:8]}: {reason}")
        if not self.recorded:
            with self.recording.sessions() as s:
                status = s.execute(select(recorded.c.status)).scalar()
            if status in ("recorded", "cleaned"):
                self.recorded = True
                self.say("results stored on the escrow; job_completed sent")

    def verdicts(self) -> dict[str, int]:
        rows = self._results()
        return {
            "accepted": sum(1 for r in rows if r.passed),
            "rejected": sum(1 for r in rows if not r.passed),
        }

    def _results(self) -> list[Any]:
        from sqlalchemy import select

        from recording_oracle.db import results

        with self.recording.sessions() as s:
            return list(s.execute(select(results).order_by(results.c.created_at)).all())

    def scores(self) -> list[dict[str, Any]]:
        return [
            {
                "assignment_id": r.assignment_id,
                "wallet": r.wallet_address,
                "wer": r.value,
                "passed": r.passed,
                "iteration": r.iteration,
            }
            for r in self._results()
        ]

    def per_worker(self, wallets: list[str], paid: dict[str, int]) -> list[dict[str, Any]]:
        rows = self._results()
        out = []
        for w in wallets:
            mine = [r for r in rows if r.wallet_address == w]
            wers = [r.value for r in mine if r.value is not None]
            out.append(
                {
                    "wallet": w,
                    "accepted": sum(1 for r in mine if r.passed),
                    "rejected": sum(1 for r in mine if not r.passed),
                    "mean_wer": round(sum(wers) / len(wers), 3) if wers else None,
                    "paid_hmt": str(Decimal(paid.get(w, 0)) / HMT),
                }
            )
        return out


# -- the reports -----------------------------------------------------------------------
REPORT_KEYS = (
    "escrow_address",
    "chain_id",
    "status",
    "audio_seconds",
    "jobs",
    "assignments",
    "payouts",
    "results_url",
    "results_hash",
    "timings_s",
)


def _write_reports(report: dict[str, Any], folder: Path) -> None:
    doc = {k: report[k] for k in REPORT_KEYS}
    doc["workers"] = report["workers"]
    (folder / "demo-report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (folder / "demo-report.html").write_text(render_html(report))


def render_html(report: dict[str, Any]) -> str:
    """The report with two inline SVG plots: WER per assignment against the threshold,
    and the escrow's timeline. No scripts, no network."""
    from html import escape

    scores = report["scores"]
    target = float(report["target"]["score"])
    width, height, pad = 640, 220, 40
    top = max([target * 1.5] + [s["wer"] or 0 for s in scores]) or 1
    bars = []
    step = (width - 2 * pad) / max(1, len(scores))
    for i, s in enumerate(scores):
        value = s["wer"] or 0
        h = (height - 2 * pad) * value / top
        x = pad + i * step + step * 0.15
        color = "#2e7d32" if s["passed"] else "#c62828"
        bars.append(
            f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{max(h, 1):.1f}" fill="{color}"><title>{escape(s["assignment_id"])} '
            f"WER {value:.2f}</title></rect>"
        )
    ty = height - pad - (height - 2 * pad) * target / top
    wer_svg = (
        f'<svg width="{width}" height="{height}" role="img" aria-label="WER per assignment">'
        f'<line x1="{pad}" x2="{width - pad}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#555" '
        f'stroke-dasharray="4"/><text x="{width - pad}" y="{ty - 4:.1f}" font-size="11" '
        f'text-anchor="end">target WER {target}</text>{"".join(bars)}</svg>'
    )
    events = report["timeline"]
    total = max([t for t, _ in events] + [1.0])
    rows = []
    for n, (t, what) in enumerate(events):
        x = pad + (width - 2 * pad) * t / total
        rows.append(
            f'<circle cx="{x:.1f}" cy="{20 + n * 16}" r="4" fill="#1565c0"/>'
            f'<text x="{x + 8:.1f}" y="{24 + n * 16}" font-size="11">{t:.1f} s '
            f"{escape(what[:70])}</text>"
        )
    timeline_svg = (
        f'<svg width="{width + 300}" height="{30 + 16 * len(events)}" role="img" '
        f'aria-label="timeline">{"".join(rows)}</svg>'
    )
    workers = "".join(
        f"<tr><td>{escape(w['wallet'])}</td><td>{w['accepted']}</td><td>{w['rejected']}</td>"
        f"<td>{w['mean_wer'] if w['mean_wer'] is not None else '-'}</td>"
        f"<td>{escape(w['paid_hmt'])}</td></tr>"
        for w in report["workers"]
    )
    summary = json.dumps({k: report[k] for k in REPORT_KEYS}, indent=2)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>audio-oracles demo report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style>
</head><body>
<h1>audio-oracles demo</h1>
<p>Escrow <code>{escape(report["escrow_address"])}</code>: <b>{escape(report["status"])}</b>,
{report["jobs"]} jobs, {report["audio_seconds"]} s of audio, total
{report["timings_s"]["total"]} s.</p>
<h2>Workers</h2>
<table><tr><th>wallet</th><th>accepted</th><th>rejected</th><th>mean WER</th>
<th>paid (HMT)</th></tr>{workers}</table>
<h2>WER per assignment</h2>{wer_svg}
<h2>Timeline</h2>{timeline_svg}
<h2>Report</h2><pre>{escape(summary)}</pre>
</body></html>
"""


def sha256_of(url: str) -> str:
    return hashlib.sha256(httpx.get(url, timeout=30).content).hexdigest()
