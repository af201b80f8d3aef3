"""The whole loop between the two oracles, over HTTP, Celery on Redis, PostgreSQL, the local
chain, S3 and the CVAT double: jobs are annotated, sloppy work is rejected and redone by
someone else, results land on the escrow with the archive's hash, the reputation stand-in
pays from payouts.json, and the exchange oracle cleans up."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from audio_oracles.requester import RequesterSettings, launch
from audio_pipeline.clips import TimeMap
from exchange_oracle import tasks as exchange_tasks
from exchange_oracle.app import create_app as create_exchange
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs
from exchange_oracle.db import events as exchange_events
from exchange_oracle.db import metadata as exchange_db
from oracle_core import pgp
from oracle_core.chain import Chain, ChainError
from oracle_core.config import OracleSettings
from oracle_core.registration import Registration, register
from oracle_core.storage import UrlPolicy, fetch_url
from oracle_core.webhooks import SIGNATURE_HEADER, Envelope, now_iso, sign
from recording_oracle import tasks as recording_tasks
from recording_oracle.app import create_app as create_recording
from recording_oracle.config import RecordingSettings
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows as recorded
from recording_oracle.db import events as recording_events
from recording_oracle.db import metadata as recording_db
from sandbox import accounts
from sandbox.annotators import perfect, sloppy
from sandbox.cvat_double import create_app as create_cvat
from sandbox.human_app import TokenIssuer
from sandbox.reputation import pay_and_complete, payouts_by_rule, read_results
from tests.integration.conftest import free_port, serve, wait_for, worker_process
from tests.integration.escrows import HMT, key, register_oracles
from tests.integration.jobdata import JobData, manifest
from tests.integration.receivers import event_db, inbox_app_on

pytestmark = pytest.mark.integration


@pytest.fixture
def market(
    fresh_chain: str,
    s3_url: str,
    pg_url: str,
    pg_url_recording: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    issuer = TokenIssuer()
    common = dict(
        rpc_url=fresh_chain,
        storage_endpoint_url=s3_url,
        storage_access_key="sandbox",
        storage_secret_key="sandbox-secret",
        allow_private_urls=True,
        celery_broker_url=redis_url,
    )
    cvat_port, exchange_port = free_port(), free_port()
    exchange = ExchangeContext(
        ExchangeSettings(
            **common,
            private_key=key(accounts.EXCHANGE_ORACLE),
            storage_bucket="exchange",
            cvat_url=f"http://127.0.0.1:{cvat_port}",
            database_url=pg_url,
            human_app_public_key=issuer.public_key_pem,
            public_url=f"http://127.0.0.1:{exchange_port}",
        )
    )
    recording = RecordingContext(
        RecordingSettings(
            **common,
            private_key=key(accounts.RECORDING_ORACLE),
            storage_bucket="recording",
            database_url=pg_url_recording,
            max_iterations=3,
        )
    )
    for db, ctx in ((exchange_db, exchange), (recording_db, recording)):
        db.drop_all(ctx.engine)
        db.create_all(ctx.engine)
    exchange_tasks.app.conf.broker_url = redis_url
    recording_tasks.app.conf.broker_url = redis_url
    exchange_tasks.use(exchange)
    recording_tasks.use(recording)
    with (
        serve(create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{cvat_port}"), cvat_port),
        serve(create_exchange(exchange), exchange_port) as exchange_url,
        serve(create_recording(recording)) as recording_url,
        event_db(f"sqlite:///{tmp_path / 'reputation.db'}") as (rep_tables, rep_sessions),
        inbox_app_on(
            fresh_chain, rep_tables, rep_sessions, {"job_completed": ("recording_oracle",)}
        ) as reputation,
        worker_process(exchange_tasks.app, "exchange_oracle.tasks", exchange.settings),
        start_worker(
            recording_tasks.app, pool="solo", perform_ping_check=False, loglevel="WARNING"
        ),
    ):
        register_oracles(
            fresh_chain,
            {
                accounts.EXCHANGE_ORACLE: exchange_url,
                accounts.RECORDING_ORACLE: recording_url,
                accounts.REPUTATION_ORACLE: reputation.url,
            },
        )
        requester = RequesterSettings(
            **common,
            private_key=key(accounts.JOB_LAUNCHER),
            storage_bucket="requester",
            exchange_oracle_address=accounts.account(accounts.EXCHANGE_ORACLE).address,
            recording_oracle_address=accounts.account(accounts.RECORDING_ORACLE).address,
            reputation_oracle_address=accounts.account(accounts.REPUTATION_ORACLE).address,
        )
        yield {
            "chain": fresh_chain,
            "exchange": exchange,
            "exchange_url": exchange_url,
            "recording": recording,
            "recording_url": recording_url,
            "reputation": reputation,
            "requester": requester,
            "issuer": issuer,
            "common": common,
        }
    for db, ctx in ((exchange_db, exchange), (recording_db, recording)):
        db.drop_all(ctx.engine)
        ctx.engine.dispose()


def _escrow_status(ctx: ExchangeContext | RecordingContext, table: Any, address: str) -> str:
    with ctx.sessions() as s:
        status = s.execute(select(table.c.status).where(table.c.escrow_address == address)).scalar()
    return str(status)


def _annotate(m: dict[str, Any], worker: int, escrow: str, truth: Any, *, bad: bool = False) -> str:
    """A bot takes an assignment through the worker API and does it in CVAT."""
    token = m["issuer"].issue(accounts.account(worker).address)
    headers = {"Authorization": f"Bearer {token}"}
    url = m["exchange_url"]
    httpx.post(f"{url}/register", json={}, headers=headers).raise_for_status()
    reply = httpx.post(
        f"{url}/assignment", json={"escrow_address": escrow, "chain_id": 1338}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assignment_id = str(reply.json()["assignment_id"])
    ctx: ExchangeContext = m["exchange"]
    with ctx.sessions() as s:
        job = s.execute(
            select(jobs, escrows.c.cvat_project_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .join(escrows, escrows.c.id == jobs.c.escrow_id)
            .where(assignments.c.id == assignment_id)
        ).one()
    segments = perfect(TimeMap.from_dict(job.time_map), truth)
    cvat = ctx.cvat()
    try:
        cvat.put_segments(
            job.cvat_job_id, job.cvat_project_id, sloppy(segments) if bad else segments
        )
        cvat.set_state(job.cvat_job_id, "completed")  # CVAT's webhook tells the oracle
    finally:
        cvat.close()
    return assignment_id


def _assignment_status(ctx: ExchangeContext, assignment_id: str) -> str:
    with ctx.sessions() as s:
        return str(
            s.execute(
                select(assignments.c.status).where(assignments.c.id == assignment_id)
            ).scalar()
        )


def test_rejected_work_is_redone_then_results_are_stored_paid_and_cleaned(
    market: dict[str, Any], job_data: JobData
) -> None:
    m = market
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    job = manifest(export_formats=["native", "librispeech"])
    launched = launch(m["requester"], job, Decimal(20), job_data.root)
    assert launched.notified, launched.notify_error
    escrow = launched.escrow_address
    wait_for(lambda: _escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    assert n_jobs >= 2

    # Round 1: worker 80 is sloppy, the others are exact.
    first = [_annotate(m, 80 + i, escrow, job_data.truth, bad=(i == 0)) for i in range(n_jobs)]
    wait_for(
        lambda: _assignment_status(exchange, first[0]) == "rejected", 60, "the sloppy work rejected"
    )
    assert all(_assignment_status(exchange, a) == "completed" for a in first[1:])
    # The sloppy worker may not redo it; worker 81 (done with its own job) takes it over.
    token = m["issuer"].issue(accounts.account(80).address)
    again = httpx.post(
        f"{m['exchange_url']}/assignment",
        json={"escrow_address": escrow, "chain_id": 1338},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status_code == 400 and "no free jobs" in again.json()["message"]
    redo = _annotate(m, 81, escrow, job_data.truth)

    wait_for(lambda: _escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
    wait_for(lambda: _escrow_status(exchange, escrows, escrow) == "recorded", 30, "exchange told")
    wait_for(lambda: m["reputation"].count() == 1, 30, "job_completed at the reputation oracle")

    # On chain: the results folder (no trailing slash) and the sha256 of its zip, funds
    # reserved for the payouts. The folder reads without credentials, as HUMAN's
    # reputation oracle reads it.
    chain = Chain(m["chain"])
    state = chain.read_escrow(escrow)
    folder = state.intermediate_results_url
    assert not folder.endswith("/") and folder.endswith(f"{escrow}%401338")
    results = read_results(folder, UrlPolicy(allow_private=True))
    assert hashlib.sha256(results.archive).hexdigest() == state.intermediate_results_hash
    archive = zipfile.ZipFile(io.BytesIO(results.archive))
    assert json.loads(archive.read("validation_meta.json")) == results.meta
    names = archive.namelist()
    assert {"annotations.json", "annotations.tsv", "payouts.json", "validation_meta.json"} <= set(
        names
    )
    # The dataset layouts the manifest asked for, cut from the source audio.
    trans = [n for n in names if n.startswith("exports/librispeech/") and n.endswith(".trans.txt")]
    lines = [ln for n in trans for ln in archive.read(n).decode().splitlines()]
    assert lines and all(
        f"{n.rsplit('/', 1)[0]}/{ln.split()[0]}.flac" in names for n in trans for ln in
        archive.read(n).decode().splitlines()
    )  # fmt: skip
    assert "exports/native/segments.json" in names
    rows = json.loads(archive.read("annotations.json"))
    assert {r["file"] for r in rows} <= {"talk0.mp3", "talk1.mp3"}  # honeypots removed
    said = {s.text for f in ("talk0.mp3", "talk1.mp3") for s in job_data.truth[f]}
    assert {r["transcription"] for r in rows} == said
    assert first[0] not in {r["assignment_id"] for r in rows}
    for r in rows:  # times are in the source file, where the words were said
        truth = {s.text: s for s in job_data.truth[r["file"]]}[r["transcription"]]
        assert abs(r["start_ms"] - truth.start_ms) <= 1 and abs(r["end_ms"] - truth.end_ms) <= 1

    meta = results.meta  # the reputation oracle's schema: integer ids, final_result_id
    by_id = {r["assignment_id"]: r for r in meta["results"]}
    assert all(isinstance(r["id"], int) for r in meta["results"])
    assert not by_id[first[0]]["passed"]
    assert any(reason.startswith("WER") for reason in by_id[first[0]]["reasons"])
    assert any("has no gender" in reason for reason in by_id[first[0]]["reasons"])
    assert by_id[redo]["passed"] and by_id[redo]["iteration"] == 2
    finals = {j["final_result_id"] for j in meta["jobs"]}
    assert by_id[redo]["id"] in finals and by_id[first[0]]["id"] not in finals

    payouts = json.loads(archive.read("payouts.json"))
    paid = {p["wallet"]: int(p["amount"]) for p in payouts["payouts"]}
    assert accounts.account(80).address not in paid
    # HUMAN's reputation oracle, paying by its own rule from the folder, pays exactly this.
    assert payouts_by_rule(meta, state.reserved_funds) == paid
    assert (
        sum(paid.values()) == state.reserved_funds <= state.remaining_funds + state.reserved_funds
    )
    assert sum(paid.values()) <= int(payouts["remaining_funds"])

    # A repeated job_finished changes nothing: no second storeResults, no second event.
    with recording.sessions() as s:
        sent = s.execute(select(func.count()).select_from(recording_events.outbox)).scalar_one()
    assert sent == 3  # submission_rejected once, job_completed to reputation and exchange

    # The reputation stand-in pays by that rule; the exchange oracle then cleans up.
    before = {w: chain.hmt_balance(w) for w in paid}
    result = pay_and_complete(
        OracleSettings(**m["common"], private_key=key(accounts.REPUTATION_ORACLE)),
        Chain(m["chain"], key(accounts.REPUTATION_ORACLE)),
        escrow,
    )
    assert result.notify_error is None
    assert {w: chain.hmt_balance(w) - before[w] for w in paid} == paid
    assert chain.read_escrow(escrow).status == "Complete"
    wait_for(lambda: _escrow_status(exchange, escrows, escrow) == "completed", 30, "cleaned up")
    assert not list(exchange.storage.list("exchange", f"{escrow}@1338/"))
    wait_for(lambda: _escrow_status(recording, recorded, escrow) == "cleaned", 30, "told")
    assert sum(paid.values()) > 0 and sum(paid.values()) <= 20 * HMT


def test_results_survive_a_crash_and_an_rpc_error_without_double_effects(
    market: dict[str, Any], job_data: JobData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the upload, then an RPC error in storeResults: each resumes where it
    stopped. One archive, one storeResults transaction, one job_completed per peer; a
    repeated job_finished changes nothing."""
    m = market
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    me = accounts.account(accounts.RECORDING_ORACLE).address
    w3 = Chain(m["chain"]).w3
    real_store = recording.chain.store_results
    calls: list[str] = []

    def flaky_store(*args: Any, **kwargs: Any) -> Any:
        calls.append("call")
        if len(calls) == 1:
            raise RuntimeError("the worker died here")  # not retried: the event stays pending
        if len(calls) == 2:
            raise ChainError("connection reset by the RPC node")  # retried by Celery
        return real_store(*args, **kwargs)

    monkeypatch.setattr(recording.chain, "store_results", flaky_store)
    launched = launch(m["requester"], manifest(), Decimal(20), job_data.root)
    escrow = launched.escrow_address
    wait_for(lambda: _escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    nonce = w3.eth.get_transaction_count(me)
    for i in range(n_jobs):
        _annotate(m, 90 + i, escrow, job_data.truth)
    wait_for(lambda: _escrow_status(recording, recorded, escrow) == "uploaded", 60, "uploaded")
    with recording.sessions() as s:
        first = s.execute(select(recorded).where(recorded.c.escrow_address == escrow)).one()
    assert calls == ["call"]  # crashed before any transaction
    recording_tasks.sweep_inbox.delay(older_than_s=0)  # what beat does every 30 s
    wait_for(lambda: _escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
    assert len(calls) == 3
    assert w3.eth.get_transaction_count(me) == nonce + 1  # one storeResults
    with recording.sessions() as s:
        after = s.execute(select(recorded).where(recorded.c.escrow_address == escrow)).one()
    assert (after.results_url, after.results_hash) == (first.results_url, first.results_hash)
    state = Chain(m["chain"]).read_escrow(escrow)
    assert state.intermediate_results_hash == first.results_hash
    zipped = fetch_url(f"{first.results_url}/resulting_annotations.zip", recording.policy)
    assert hashlib.sha256(zipped).hexdigest() == first.results_hash

    # The exchange oracle sends the same job_finished again in a new envelope: accepted
    # (it is signed by the right oracle) and recorded, but it changes nothing.
    with exchange.sessions() as s:
        (sent_before,) = s.execute(
            select(exchange_events.outbox.c.body).where(
                exchange_events.outbox.c.event_type == "job_finished"
            )
        ).one()
    again = Envelope(**{**json.loads(sent_before), "timestamp": now_iso()}).to_bytes()
    reply = httpx.post(
        f"{m['recording_url']}/webhook",
        content=again,
        headers={
            SIGNATURE_HEADER: sign(again, key(accounts.EXCHANGE_ORACLE)),
            "content-type": "application/json",
        },
    )
    assert reply.status_code in (200, 202), reply.text
    wait_for(lambda: _inbox_settled(recording, 2), 30, "the repeat handled")
    with recording.sessions() as s:
        sent = s.execute(select(recording_events.outbox.c.event_type)).scalars().all()
    assert sorted(sent) == ["job_completed", "job_completed"]
    assert w3.eth.get_transaction_count(me) == nonce + 1


def _pgp_key() -> Any:
    import warnings

    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import HashAlgorithm, KeyFlags, PubKeyAlgorithm, SymmetricKeyAlgorithm

    pgp_key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
    pgp_key.add_uid(
        pgpy.PGPUID.new("reputation oracle"),
        usage={KeyFlags.EncryptCommunications},
        hashes=[HashAlgorithm.SHA256],
        ciphers=[SymmetricKeyAlgorithm.AES256],
    )
    return pgp_key


def _inbox_settled(ctx: RecordingContext, count: int) -> bool:
    with ctx.sessions() as s:
        rows = s.execute(select(recording_events.inbox)).all()
    return len(rows) == count and all(r.status == "done" for r in rows)


def test_after_the_last_iteration_the_escrow_finishes_with_what_was_accepted(
    market: dict[str, Any], job_data: JobData, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = market
    exchange: ExchangeContext = m["exchange"]
    recording: RecordingContext = m["recording"]
    monkeypatch.setattr(recording.settings, "max_iterations", 1)
    # The reputation oracle publishes a PGP key: the results are encrypted to it.
    reputation_key = _pgp_key()
    register(
        Chain(m["chain"], key(accounts.REPUTATION_ORACLE)),
        Registration(
            url=m["reputation"].url,
            webhook_url=f"{m['reputation'].url}/webhook",
            role="reputation_oracle",
            fee=1,
            public_key=str(reputation_key.pubkey),
        ),
    )
    launched = launch(m["requester"], manifest(), Decimal(20), job_data.root)
    escrow = launched.escrow_address
    wait_for(lambda: _escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    sloppy_one = _annotate(m, 100, escrow, job_data.truth, bad=True)
    for i in range(1, n_jobs):
        _annotate(m, 100 + i, escrow, job_data.truth)
    wait_for(lambda: _escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
    state = Chain(m["chain"]).read_escrow(escrow)
    folder, public = state.intermediate_results_url, UrlPolicy(allow_private=True)
    with pytest.raises(ValueError, match="encrypted"):
        read_results(folder, public)  # private to the reputation oracle
    results = read_results(folder, public, lambda d: pgp.decrypt(d, str(reputation_key)))
    stored = fetch_url(f"{folder}/resulting_annotations.zip", public)
    assert hashlib.sha256(stored).hexdigest() == state.intermediate_results_hash
    archive = zipfile.ZipFile(io.BytesIO(results.archive))
    meta = results.meta
    assert "1 job(s) still failed after 1 iteration(s)" in meta["note"]
    # Only accepted jobs are listed: the reputation oracle pays every listed final result.
    assert len(meta["jobs"]) == n_jobs - 1 and len(meta["not_accepted"]) == 1
    rows = json.loads(archive.read("annotations.json"))
    assert rows and sloppy_one not in {r["assignment_id"] for r in rows}
    payouts = json.loads(archive.read("payouts.json"))
    assert accounts.account(100).address not in {p["wallet"] for p in payouts["payouts"]}
    assert int(payouts["total"]) == int(payouts["reward_per_job"]) * (n_jobs - 1)
    assert state.reserved_funds == int(payouts["total"])
    paid = {p["wallet"]: int(p["amount"]) for p in payouts["payouts"]}
    assert payouts_by_rule(meta, state.reserved_funds) == paid
    assert _assignment_status(exchange, sloppy_one) == "completed"  # never sent back
