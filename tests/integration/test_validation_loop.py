"""The whole loop between the two oracles, over HTTP, Celery on Redis, PostgreSQL, the local
chain, S3 and the CVAT double: jobs are annotated, sloppy work is rejected and redone by
someone else, results land on the escrow with the archive's hash, the reputation stand-in
pays from payouts.json, and the exchange oracle cleans up."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from audio_oracles.requester import launch
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs
from exchange_oracle.db import events as exchange_events
from oracle_core import human_layout, pgp
from oracle_core.chain import Chain, ChainError
from oracle_core.config import OracleSettings
from oracle_core.registration import Registration, register
from oracle_core.storage import UrlPolicy, fetch_url
from oracle_core.webhooks import SIGNATURE_HEADER, Envelope, now_iso, sign
from recording_oracle import tasks as recording_tasks
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows as recorded
from recording_oracle.db import events as recording_events
from sandbox import accounts
from sandbox.reputation import pay_and_complete, payouts_by_rule, read_results
from tests.integration.conftest import wait_for
from tests.integration.escrows import HMT, key
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import annotate, assignment_status, escrow_status

pytestmark = pytest.mark.integration


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
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    assert n_jobs >= 2

    # Round 1: worker 80 is sloppy, the others are exact.
    first = [annotate(m, 80 + i, escrow, job_data.truth, bad=(i == 0)) for i in range(n_jobs)]
    wait_for(
        lambda: assignment_status(exchange, first[0]) == "rejected", 60, "the sloppy work rejected"
    )
    assert all(assignment_status(exchange, a) == "completed" for a in first[1:])
    # The sloppy worker may not redo it; worker 81 (done with its own job) takes it over.
    token = m["issuer"].issue(accounts.account(80).address)
    again = httpx.post(
        f"{m['exchange_url']}/assignment",
        json={"escrow_address": escrow, "chain_id": 1338},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status_code == 400 and "no free jobs" in again.json()["message"]
    redo = annotate(m, 81, escrow, job_data.truth)

    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "recorded", 30, "exchange told")
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

    # Beside ours, the exchange oracle wrote the layout HUMAN's recording oracle reads.
    _check_human_layout(exchange, escrow, job_data)

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
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "completed", 30, "cleaned up")
    assert not list(exchange.storage.list("exchange", f"{escrow}@1338"))  # both folders
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "cleaned", 30, "told")

    # A rejection after the escrow is paid is signed by the right oracle, but undoes nothing.
    from audio_oracles.requester import notify

    late = OracleSettings(**m["common"], private_key=key(accounts.RECORDING_ORACLE))
    exchange_address = accounts.account(accounts.EXCHANGE_ORACLE).address
    assert (
        notify(late, Chain(m["chain"], key(accounts.RECORDING_ORACLE)), escrow,
               "submission_rejected", exchange_address,
               event_data={"assignments": [{"assignment_id": redo, "reason": "late"}]})
        is None
    )  # fmt: skip
    inbox = exchange_events.inbox

    def late_handled() -> bool:
        with exchange.sessions() as s:
            rows = s.execute(
                select(inbox.c.status, inbox.c.event_data)
                .where(inbox.c.event_type == "submission_rejected")
                .order_by(inbox.c.received_at)
            ).all()
        return len(rows) == 2 and rows[-1].status == "done"

    wait_for(late_handled, 30, "the late rejection handled")
    assert assignment_status(exchange, redo) == "completed"
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
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    nonce = w3.eth.get_transaction_count(me)
    for i in range(n_jobs):
        annotate(m, 90 + i, escrow, job_data.truth)
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "uploaded", 60, "uploaded")
    with recording.sessions() as s:
        first = s.execute(select(recorded).where(recorded.c.escrow_address == escrow)).one()
    assert calls == ["call"]  # crashed before any transaction
    recording_tasks.sweep_inbox.delay(older_than_s=0)  # what beat does every 30 s
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
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


def _check_human_layout(exchange: ExchangeContext, escrow: str, job_data: JobData) -> None:
    """HUMAN's recording oracle reads `{escrow}@{chain}/{gt.tsv, assignments.json,
    task_clips.json}` and `{escrow}@{chain}-results/{annotation_meta.json,
    assignments/<job>-<assignment>.tsv}` (its `quality_checkers/audio.py`)."""
    get = lambda key: exchange.storage.get("exchange", key)  # noqa: E731
    data, results_dir = f"{escrow}@1338", f"{escrow}@1338-results"
    assert get(f"{data}/gt.tsv").decode() == (job_data.root / "gt.tsv").read_text()
    clips = json.loads(get(f"{data}/assignments.json"))
    task_clips = json.loads(get(f"{data}/task_clips.json"))
    meta = json.loads(get(f"{results_dir}/annotation_meta.json"))
    assert set(meta) == {"jobs"} and meta["jobs"]
    gt_ids = {row_id for row_id, *_ in human_layout.gt_row_ids(get(f"{data}/gt.tsv").decode())}
    for clip in clips:
        assert set(clip) == {"id", "clip_filename", "clip_dur", "placed"}
        for p in clip["placed"]:
            assert set(p) == {"index", "source_filename", "source_start", "source_stop",
                              "clip_start", "clip_stop", "kind", "input_ids"}  # fmt: skip
            assert p["kind"] in ("gt", "ds") and set(p["input_ids"]) <= gt_ids
            assert bool(p["input_ids"]) == (p["kind"] == "gt")  # a honeypot names its rows
    for job in meta["jobs"]:
        assert set(job) == {"job_id", "task_id", "annotator_wallet_address", "assignment_id",
                            "start_frame", "stop_frame", "assignment_bounty"}  # fmt: skip
        assert str(job["task_id"]) in task_clips
        tsv = get(f"{results_dir}/assignments/{job['job_id']}-{job['assignment_id']}.tsv")
        assert {"start", "stop", "label", "transcription"} <= set(
            tsv.decode().split("\n")[0].split("\t")
        )
    # Our own reader of HUMAN's layout makes the same clips our time maps describe.
    peer = human_layout.read_jobs(
        1338, escrow, get(f"{data}/assignments.json"), get(f"{data}/task_clips.json"),
        get(f"{results_dir}/annotation_meta.json"),
    )  # fmt: skip
    with exchange.sessions() as s:
        maps = {r.cvat_job_id: r.time_map for r in s.execute(select(jobs)).all()}
    assert all(job.time_map.to_dict() == maps[job.job_id] for job in peer)


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
    wait_for(lambda: escrow_status(exchange, escrows, escrow) == "ready", 120, "jobs listed")
    with exchange.sessions() as s:
        n_jobs = s.execute(select(func.count()).select_from(jobs)).scalar_one()
    sloppy_one = annotate(m, 100, escrow, job_data.truth, bad=True)
    for i in range(1, n_jobs):
        annotate(m, 100 + i, escrow, job_data.truth)
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "recorded", 60, "recorded")
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
    assert assignment_status(exchange, sloppy_one) == "completed"  # never sent back


def test_the_launchers_cancellation_request_stops_the_recording_oracle(
    market: dict[str, Any], job_data: JobData
) -> None:
    """HUMAN's job launcher sends `cancellation_requested` to both oracles once it has asked
    the chain to cancel: the recording oracle scores and stores nothing more."""
    from audio_oracles.requester import notify

    m = market
    recording: RecordingContext = m["recording"]
    launched = launch(m["requester"], manifest(), Decimal(20), job_data.root)
    escrow = launched.escrow_address
    launcher = Chain(m["chain"], key(accounts.JOB_LAUNCHER))
    target = accounts.account(accounts.RECORDING_ORACLE).address
    launcher.request_cancellation(escrow)
    assert notify(m["requester"], launcher, escrow, "cancellation_requested", target) is None
    wait_for(lambda: escrow_status(recording, recorded, escrow) == "canceled", 30, "canceled")
    with recording.sessions() as s:
        (row,) = s.execute(
            select(recording_events.inbox).where(recording_events.inbox.c.escrow_address == escrow)
        ).all()
    assert (row.event_type, row.status) == ("cancellation_requested", "done")
