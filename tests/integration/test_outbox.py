"""Outbox delivery through a real Celery worker on Redis to a real HTTP receiver:
at-least-once with identical bytes, exponential backoff, dead letters an operator can list."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from oracle_core.api import webhook_router
from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.db import transaction
from oracle_core.events import EventTables, dispatch_after_commit, enqueue
from oracle_core.tasks import OutboxContext, make_celery, register_outbox_tasks
from oracle_core.webhooks import SIGNATURE_HEADER, recover
from sandbox import accounts
from tests.integration.conftest import serve, wait_for
from tests.integration.escrows import key
from tests.integration.receivers import event_db

pytestmark = pytest.mark.integration
ESCROW = accounts.account(17).address
TARGET = accounts.account(accounts.RECORDING_ORACLE).address
SENDER = accounts.account(accounts.EXCHANGE_ORACLE)


@dataclass
class FlakyReceiver:
    """Answers 500 to the first `failures` requests (forever if None), then 200."""

    failures: int | None
    bodies: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    successes: int = 0
    dispatch: bool = True  # False: every hand-off to Celery is lost

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhook")
        async def webhook(request: Request) -> Response:
            body = await request.body()
            self.bodies.append(body)
            self.times.append(time.monotonic())
            self.signers.append(recover(body, request.headers[SIGNATURE_HEADER]))
            if self.failures is None or len(self.bodies) <= self.failures:
                return Response(status_code=500, content="not today")
            self.successes += 1
            return Response(status_code=200)

        return app


@dataclass
class Sender:
    sessions: Any
    tables: EventTables
    settings: OracleSettings
    base_url: str
    sweep: Any

    def send(self, event_type: str = "job_finished") -> str:
        with transaction(self.sessions) as session:
            return enqueue(
                session,
                self.tables,
                chain_id=1338,
                escrow_address=ESCROW,
                event_type=event_type,
                target_address=TARGET,
                target_role="recording_oracle",
                event_data={"n": 1},
            )

    def row(self, row_id: str) -> Any:
        with self.sessions() as s:
            return s.execute(
                select(self.tables.outbox).where(self.tables.outbox.c.id == row_id)
            ).one()


def _lost(row_id: str) -> None:
    raise ConnectionError(f"broker unreachable; {row_id} not queued")


def run_sender(
    receiver: FlakyReceiver, pg_url: str, redis_url: str, chain_url: str, max_attempts: int
) -> Iterator[Sender]:
    with event_db(pg_url) as (tables, sessions), serve(receiver.app()) as receiver_url:
        settings = OracleSettings(
            database_url=pg_url,
            celery_broker_url=redis_url,
            rpc_url=chain_url,
            private_key=key(accounts.EXCHANGE_ORACLE),  # type: ignore[arg-type]
            webhook_url_overrides={TARGET: f"{receiver_url}/webhook"},
            outbox_backoff_s=0.1,
            outbox_backoff_max_s=5,
            outbox_max_attempts=max_attempts,
            admin_token="operator-secret",  # type: ignore[arg-type]
        )
        context = OutboxContext(settings, sessions, tables, Chain(chain_url))
        app = make_celery(f"outbox_test_{uuid.uuid4().hex[:8]}", redis_url)
        deliver_task, sweep_task = register_outbox_tasks(app, lambda: context)
        dispatch_after_commit(
            sessions,
            lambda row_id: deliver_task.delay(row_id) if receiver.dispatch else _lost(row_id),
        )
        api = FastAPI()
        api.include_router(
            webhook_router(
                accepted={},
                chain=lambda: context.chain,
                sessions=lambda: sessions,
                tables=tables,
                on_new=lambda _id: None,
                admin_token=lambda: "operator-secret",
            )
        )
        with (
            start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"),
            serve(api) as base_url,
        ):
            yield Sender(sessions, tables, settings, base_url, sweep_task)


@pytest.fixture
def flaky(pg_url: str, redis_url: str, chain_url: str) -> Iterator[tuple[FlakyReceiver, Sender]]:
    receiver = FlakyReceiver(failures=3)
    for sender in run_sender(receiver, pg_url, redis_url, chain_url, max_attempts=6):
        yield receiver, sender


@pytest.fixture
def dead(pg_url: str, redis_url: str, chain_url: str) -> Iterator[tuple[FlakyReceiver, Sender]]:
    receiver = FlakyReceiver(failures=None)
    for sender in run_sender(receiver, pg_url, redis_url, chain_url, max_attempts=4):
        yield receiver, sender


def test_a_receiver_that_fails_three_times_gets_exactly_one_success(
    flaky: tuple[FlakyReceiver, Sender],
) -> None:
    receiver, sender = flaky
    row_id = sender.send()
    wait_for(lambda: sender.row(row_id).status == "delivered", what="delivery")
    time.sleep(0.5)  # a stray duplicate delivery would arrive in this window
    assert receiver.successes == 1
    assert len(receiver.bodies) == 4
    assert len(set(receiver.bodies)) == 1  # every retry sends the same bytes
    assert set(receiver.signers) == {SENDER.address}
    row = sender.row(row_id)
    assert row.attempts == 4 and row.last_error is None


def test_backoff_grows_between_attempts(flaky: tuple[FlakyReceiver, Sender]) -> None:
    receiver, sender = flaky
    row_id = sender.send()
    wait_for(lambda: sender.row(row_id).status == "delivered", what="delivery")
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    # 0.1 s, 0.2 s, 0.4 s: each wait at least the configured delay, and growing.
    for gap, planned in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= planned * 0.9
    assert gaps[2] > gaps[0]


def test_a_receiver_that_always_fails_ends_dead_lettered_and_listed(
    dead: tuple[FlakyReceiver, Sender],
) -> None:
    receiver, sender = dead
    row_id = sender.send()
    wait_for(lambda: sender.row(row_id).status == "dead", what="dead letter")
    time.sleep(0.5)
    assert len(receiver.bodies) == 4 and receiver.successes == 0
    row = sender.row(row_id)
    assert row.attempts == 4 and "500" in row.last_error
    listed = httpx.get(
        f"{sender.base_url}/outbox",
        params={"status": "dead"},
        headers={"Authorization": "Bearer operator-secret"},
    )
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == [row_id]
    assert httpx.get(f"{sender.base_url}/outbox").status_code == 401


def test_an_event_of_a_rolled_back_change_is_never_sent(
    flaky: tuple[FlakyReceiver, Sender],
) -> None:
    receiver, sender = flaky
    with pytest.raises(RuntimeError), transaction(sender.sessions) as session:
        enqueue(
            session,
            sender.tables,
            chain_id=1338,
            escrow_address=ESCROW,
            event_type="job_finished",
            target_address=TARGET,
            target_role="recording_oracle",
        )
        raise RuntimeError("the state change failed")
    time.sleep(1.0)
    assert receiver.bodies == []
    with sender.sessions() as s:
        assert s.execute(select(sender.tables.outbox)).all() == []


def test_an_event_whose_dispatch_was_lost_is_delivered_by_the_sweep(
    flaky: tuple[FlakyReceiver, Sender],
) -> None:
    receiver, sender = flaky
    receiver.dispatch, receiver.failures = False, 0
    row_id = sender.send()  # committed, but the hand-off to Celery fails
    time.sleep(0.5)
    assert receiver.bodies == [] and sender.row(row_id).status == "pending"
    sender.sweep.delay()
    wait_for(lambda: sender.row(row_id).status == "delivered", what="sweep delivery")
    assert receiver.successes == 1


def test_a_webhook_url_published_on_loopback_is_never_called(fresh_chain: str, pg_url: str) -> None:
    """Anyone can publish a KVStore `webhook_url`: one naming loopback (or any private
    address) is refused by the URL policy at once, dead-lettered, never posted to."""
    from oracle_core.events import Backoff, deliver
    from oracle_core.registration import Registration, register, webhook_target, webhook_url
    from oracle_core.storage import UnsafeUrlError, UrlPolicy

    receiver = FlakyReceiver(failures=0)
    with event_db(pg_url) as (tables, sessions), serve(receiver.app()) as receiver_url:
        register(
            Chain(fresh_chain, key(accounts.RECORDING_ORACLE)),
            Registration(url=receiver_url, webhook_url=f"{receiver_url}/webhook",
                         role="recording_oracle", fee=1),
        )  # fmt: skip
        chain = Chain(fresh_chain)
        with pytest.raises(UnsafeUrlError, match="loopback"):
            webhook_url(chain, TARGET, {}, UrlPolicy())
        with transaction(sessions) as session:
            row_id = enqueue(session, tables, chain_id=1338, escrow_address=ESCROW,
                             event_type="escrow_cleaned", target_address=TARGET,
                             target_role="recording_oracle")  # fmt: skip
        with httpx.Client() as client:
            result = deliver(
                sessions, tables, row_id, private_key=key(accounts.EXCHANGE_ORACLE),
                resolve_url=lambda a: webhook_target(chain, a, {}, UrlPolicy()),
                backoff=Backoff(0.1, 1, 8), client=client,
            )  # fmt: skip
        assert result.status == "dead" and "URL policy" in (result.error or "")
        assert receiver.bodies == []
