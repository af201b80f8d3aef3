"""The demo's world around the oracles: bot workers going through the worker API and CVAT,
and a reputation oracle stand-in that pays from the recording oracle's payouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

HMT = 10**18


class DemoFailed(RuntimeError):
    """The demo could not finish; the message says where and why."""


@dataclass
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


class ReputationStandIn:
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


class Market:
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
