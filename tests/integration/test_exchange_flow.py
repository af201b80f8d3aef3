"""From `escrow launch` to listed jobs, through the exchange oracle's real HTTP app and a
Celery worker on Redis: the event is verified, stored once, and built out of the request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr
from sqlalchemy import select

from audio_oracles.requester import RequesterSettings, launch
from exchange_oracle import tasks
from exchange_oracle.app import create_app
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, events, metadata
from sandbox import accounts
from sandbox.cvat_double import create_app as create_cvat
from sandbox.human_app import TokenIssuer
from tests.integration.conftest import free_port, serve, use_broker, wait_for
from tests.integration.escrows import key, register_oracles
from tests.integration.jobdata import manifest

pytestmark = pytest.mark.integration


@pytest.fixture(params=["dispatched", "dispatch-lost"])
def exchange(
    request: pytest.FixtureRequest,
    fresh_chain: str,
    s3_url: str,
    pg_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    issuer = TokenIssuer()
    port = free_port()
    common = dict(
        rpc_url=fresh_chain,
        storage_endpoint_url=s3_url,
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
    )
    with serve(
        create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{port}"), port=port
    ) as cvat_url:
        settings = ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=cvat_url,
            database_url=pg_url,
            celery_broker_url=redis_url,
            human_app_public_key=issuer.public_key_pem,
            public_url="http://127.0.0.1:1",
        )
        ctx = ExchangeContext(settings)
        metadata.drop_all(ctx.engine)
        metadata.create_all(ctx.engine)
        use_broker(tasks.app, redis_url)
        lost = request.param == "dispatch-lost"

        def broker_down(_id: str) -> None:
            raise ConnectionError("broker unreachable")

        tasks.use(ctx)
        with (
            serve(create_app(ctx, on_event=broker_down if lost else None)) as url,
            start_worker(tasks.app, pool="solo", perform_ping_check=False, loglevel="WARNING"),
        ):
            register_oracles(fresh_chain, {accounts.EXCHANGE_ORACLE: url})
            requester = RequesterSettings(
                **common,
                private_key=key(accounts.JOB_LAUNCHER),
                storage_bucket="requester",
                exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
                recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
                reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
            )
            yield {
                "url": url,
                "ctx": ctx,
                "requester": requester,
                "issuer": issuer,
                "lost": lost,
                "cvat_url": cvat_url,
            }
        metadata.drop_all(ctx.engine)
        ctx.engine.dispose()


def test_escrow_created_leads_to_listed_jobs(exchange: dict[str, Any], job_folder: Path) -> None:
    started = time.monotonic()
    launched = launch(exchange["requester"], manifest(), Decimal(20), job_folder)
    assert launched.notified, launched.notify_error
    token = exchange["issuer"].listing_token()

    def listed() -> list[Any]:
        reply = httpx.get(
            f"{exchange['url']}/job",
            headers={"Authorization": f"Bearer {token}"},
            params={"escrow_address": launched.escrow_address},
        )
        results: list[Any] = reply.json()["results"]
        return results

    if exchange["lost"]:
        # Accepted and stored, but the hand-off to Celery failed: the sweep finds it.
        time.sleep(0.5)
        assert listed() == []
        assert tasks.sweep_inbox.delay(older_than_s=0) is not None
    wait_for(listed, timeout_s=120, what="jobs listed")
    print(f"escrow_created -> jobs listed in {time.monotonic() - started:.1f} s")
    ctx: ExchangeContext = exchange["ctx"]

    def inbox_done() -> bool:
        # Jobs are listable a moment before the task records the event as done.
        with ctx.sessions() as s:
            (row,) = s.execute(select(events.inbox)).all()
        return bool(row.event_type == "escrow_created" and row.status == "done")

    wait_for(inbox_done, what="the event marked done")

    # A worker takes a job and fetches what the annotator page needs; nobody else can.
    issuer, url = exchange["issuer"], exchange["url"]
    worker, stranger = (
        issuer.issue(accounts.account(60).address),
        issuer.issue(accounts.account(61).address),
    )
    for who in (worker, stranger):
        assert (
            httpx.post(
                f"{url}/register", json={}, headers={"Authorization": f"Bearer {who}"}
            ).status_code
            == 200
        )
    taken = httpx.post(
        f"{url}/assignment",
        json={"escrow_address": launched.escrow_address, "chain_id": 1338},
        headers={"Authorization": f"Bearer {worker}"},
    ).json()
    base = f"{url}/assignment/{taken['assignment_id']}"
    audio = httpx.get(f"{base}/audio", headers={"Authorization": f"Bearer {worker}"})
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content[:3] == b"ID3" or audio.content[0] == 0xFF
    peaks = httpx.get(
        f"{base}/peaks", params={"zoom": 100}, headers={"Authorization": f"Bearer {worker}"}
    )
    assert peaks.json()["version"] == 2 and peaks.json()["samples_per_pixel"] == 160
    assert (
        httpx.get(
            f"{base}/peaks", params={"zoom": 7}, headers={"Authorization": f"Bearer {worker}"}
        ).status_code
        == 400
    )
    assert (
        httpx.get(f"{base}/audio", headers={"Authorization": f"Bearer {stranger}"}).status_code
        == 404
    )


@pytest.mark.parametrize("exchange", ["dispatched"], indirect=True)
@pytest.mark.parametrize(
    ("event", "sender"),
    [
        ("cancellation_requested", accounts.JOB_LAUNCHER),  # HUMAN's job launcher
        ("escrow_canceled", accounts.REPUTATION_ORACLE),  # HUMAN's reputation oracle
        ("escrow_canceled", accounts.JOB_LAUNCHER),
    ],
)
def test_a_cancellation_from_the_launcher_or_reputation_oracle_withdraws_every_job(
    exchange: dict[str, Any], job_folder: Path, event: str, sender: int
) -> None:
    from audio_oracles.requester import notify
    from oracle_core.chain import Chain

    url, issuer, ctx = exchange["url"], exchange["issuer"], exchange["ctx"]
    launched = launch(exchange["requester"], manifest(), Decimal(20), job_folder)
    listing = {"Authorization": f"Bearer {issuer.listing_token()}"}

    def listed(status: str) -> list[Any]:
        results: list[Any] = httpx.get(
            f"{url}/job",
            headers=listing,
            params={"escrow_address": launched.escrow_address, "status": status},
        ).json()["results"]
        return results

    wait_for(lambda: listed("active"), timeout_s=120, what="jobs listed")
    with ctx.sessions() as s:
        project = s.execute(select(escrows.c.cvat_project_id)).scalar_one()
    worker = {"Authorization": f"Bearer {issuer.issue(accounts.account(70).address)}"}
    httpx.post(f"{url}/register", json={}, headers=worker)
    taken = httpx.post(
        f"{url}/assignment",
        headers=worker,
        json={"escrow_address": launched.escrow_address, "chain_id": 1338},
    ).json()
    launcher = Chain(exchange["requester"].rpc_url, key(accounts.JOB_LAUNCHER))
    exchange_address = accounts.account(accounts.EXCHANGE_ORACLE).address
    signer = exchange["requester"].model_copy(update={"private_key": SecretStr(key(sender))})
    sender_chain = Chain(exchange["requester"].rpc_url, key(sender))

    # A cancel event for an escrow the chain does not show as canceling is refused.
    assert notify(signer, sender_chain, launched.escrow_address, event, exchange_address) is None
    time.sleep(1.5)
    assert listed("active")

    # The same event sent again once the chain agrees is looked at again, and applies.
    launcher.request_cancellation(launched.escrow_address)
    assert notify(signer, sender_chain, launched.escrow_address, event, exchange_address) is None
    wait_for(lambda: listed("canceled"), what="escrow canceled")
    # Listings are shared for JOB_LIST_CACHE_S (1 s): the canceled escrow leaves the active
    # listing as soon as that answer is refreshed.
    wait_for(lambda: listed("active") == [], timeout_s=10, what="nothing active listed")

    def statuses() -> list[tuple[str, str]]:
        with ctx.sessions() as s:
            rows = s.execute(select(events.inbox.c.event_type, events.inbox.c.status)).all()
        return sorted((r[0], r[1]) for r in rows)

    # One inbox row: refused at first, done once the chain agreed.
    expected = sorted([(event, "done"), ("escrow_created", "done")])
    wait_for(lambda: statuses() == expected, what="the cancel event recorded as done")
    from cvat_sdk import Client
    from cvat_sdk.api_client.exceptions import NotFoundException

    with Client(exchange["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        with pytest.raises(NotFoundException):
            client.projects.retrieve(project)
    mine = httpx.get(f"{url}/assignment", headers=worker).json()["results"]
    assert [(a["assignment_id"], a["status"]) for a in mine] == [
        (taken["assignment_id"], "canceled")
    ]


@pytest.mark.parametrize("exchange", ["dispatched"], indirect=True)
def test_abuse_holds_the_escrow_or_the_worker_until_it_is_dismissed(
    exchange: dict[str, Any], job_folder: Path
) -> None:
    """HUMAN's reputation oracle reports upheld abuse per escrow (`abuse_detected`, no
    worker named): the escrow is unlisted and its active work ended until `abuse_dismissed`.
    A report naming a worker stops only that worker."""
    from audio_oracles.requester import notify
    from oracle_core.chain import Chain

    url, issuer = exchange["url"], exchange["issuer"]
    launched = launch(exchange["requester"], manifest(), Decimal(20), job_folder)
    escrow = launched.escrow_address
    listing = {"Authorization": f"Bearer {issuer.listing_token()}"}

    def listed() -> list[Any]:
        results: list[Any] = httpx.get(
            f"{url}/job", headers=listing, params={"escrow_address": escrow}
        ).json()["results"]
        return results

    def register(wallet: str) -> None:
        worker = {"Authorization": f"Bearer {issuer.issue(wallet)}"}
        httpx.post(f"{url}/register", json={}, headers=worker).raise_for_status()

    def take(wallet: str) -> httpx.Response:
        register(wallet)
        worker = {"Authorization": f"Bearer {issuer.issue(wallet)}"}
        return httpx.post(
            f"{url}/assignment", headers=worker, json={"escrow_address": escrow, "chain_id": 1338}
        )

    honest, abuser = accounts.account(80).address, accounts.account(81).address
    wait_for(listed, timeout_s=120, what="jobs listed")
    first = take(honest).json()["assignment_id"]
    reputation = exchange["requester"].model_copy(
        update={"private_key": SecretStr(key(accounts.REPUTATION_ORACLE))}
    )
    chain = Chain(exchange["requester"].rpc_url, key(accounts.REPUTATION_ORACLE))
    target = accounts.account(accounts.EXCHANGE_ORACLE).address

    def send(event: str, data: dict[str, Any] | None = None) -> None:
        assert notify(reputation, chain, escrow, event, target, event_data=data) is None

    send("abuse_detected")
    wait_for(lambda: listed() == [], timeout_s=10, what="the escrow unlisted")
    refused = take(accounts.account(82).address)
    assert refused.status_code == 400 and "suspended" in refused.json()["message"]
    mine = httpx.get(
        f"{url}/assignment", headers={"Authorization": f"Bearer {issuer.issue(honest)}"}
    ).json()["results"]
    assert [(a["assignment_id"], a["status"]) for a in mine] == [(first, "canceled")]

    send("abuse_dismissed")
    wait_for(listed, timeout_s=10, what="the escrow listed again")
    register(abuser)
    send("abuse_detected", {"wallet_address": abuser})
    wait_for(lambda: take(abuser).status_code == 403, timeout_s=10, what="the worker blocked")
    assert take(honest).status_code == 200
    send("abuse_dismissed", {"wallet_address": abuser})
    wait_for(lambda: take(abuser).status_code == 200, timeout_s=10, what="the worker unblocked")
