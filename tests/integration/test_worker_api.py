"""The worker API over HTTP on PostgreSQL and the CVAT double: jobs are never given twice,
a worker never holds two in one escrow, tokens and qualifications are enforced."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cvat_sdk import Client
from sqlalchemy import select

from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs
from sandbox.accounts import account
from sandbox.human_app import TokenIssuer
from tests.integration.worker_world import ESCROW, JOBS, auth

pytestmark = pytest.mark.integration


def test_fifty_workers_racing_for_twenty_jobs(oracle: dict[str, Any], issuer: TokenIssuer) -> None:
    url = oracle["url"]
    tokens = [issuer.issue(account(100 + i).address) for i in range(50)]
    for token in tokens:
        assert httpx.post(f"{url}/register", json={}, headers=auth(token)).status_code == 200
    replies: list[httpx.Response] = []
    lock = threading.Lock()
    gate = threading.Barrier(60)

    def take(token: str) -> None:
        gate.wait()
        reply = httpx.post(
            f"{url}/assignment",
            json={"escrow_address": ESCROW, "chain_id": 1338},
            headers=auth(token),
            timeout=60,
        )
        with lock:
            replies.append(reply)

    # 50 workers, ten of whom also send a second request at the same moment.
    threads = [threading.Thread(target=take, args=(t,)) for t in tokens + tokens[:10]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in replies if r.status_code == 200]
    assert len(ok) == JOBS, [r.text for r in replies if r.status_code != 200][:3]
    assert all(r.status_code == 400 for r in replies if r.status_code != 200)
    ctx: ExchangeContext = oracle["ctx"]
    with ctx.sessions() as s:
        active = s.execute(select(assignments).where(assignments.c.status == "active")).all()
        assigned_jobs = s.execute(select(jobs).where(jobs.c.status == "assigned")).all()
    assert (
        len(active)
        == JOBS
        == len({a.job_id for a in active})
        == len({a.wallet_address for a in active})
    )
    assert len(assigned_jobs) == JOBS
    with Client(oracle["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        for job in assigned_jobs[:5]:
            cvat_job = client.jobs.retrieve(job.cvat_job_id)
            assert cvat_job.assignee is not None
            assert [(i.start, i.stop) for i in cvat_job.get_annotations().intervals] == [(100, 800)]


def test_resign_returns_the_job_and_the_worker_can_take_again(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    url, token = oracle["url"], issuer.issue(account(200).address)
    registered = httpx.post(
        f"{url}/register", json={"email": "w200@example.com"}, headers=auth(token)
    )
    assert registered.status_code == 200, registered.text
    bad_email = httpx.post(f"{url}/register", json={"email": "not an email"}, headers=auth(token))
    assert bad_email.status_code == 400 and "email" in bad_email.json()["message"]
    first = httpx.post(
        f"{url}/assignment", json={"escrow_address": ESCROW, "chain_id": 1338}, headers=auth(token)
    ).json()
    again = httpx.post(
        f"{url}/assignment", json={"escrow_address": ESCROW, "chain_id": 1338}, headers=auth(token)
    )
    assert again.status_code == 400 and "unfinished assignment" in again.json()["message"]
    assert first["url"] == f"http://oracle.test/annotate/{first['assignment_id']}"
    assert first["reward_amount"] == "5"
    gone = httpx.post(
        f"{url}/assignment/resign",
        json={"assignment_id": first["assignment_id"]},
        headers=auth(token),
    )
    assert gone.status_code == 200
    mine = httpx.get(f"{url}/assignment", headers=auth(token)).json()
    assert [a["status"] for a in mine["results"]] == ["canceled"]
    assert (
        httpx.post(
            f"{url}/assignment",
            json={"escrow_address": ESCROW, "chain_id": 1338},
            headers=auth(token),
        ).status_code
        == 200
    )
    stats = httpx.get(f"{url}/stats/assignment", headers=auth(token)).json()
    assert (stats["assignments_total"], stats["assignments_active"]) == (2, 1)
    assert stats["assignments_canceled"] == 1 and stats["submissions_sent"] == 0
    other = issuer.issue(account(201).address)
    refused = httpx.post(
        f"{url}/assignment/resign",
        json={"assignment_id": first["assignment_id"]},
        headers=auth(other),
    )
    assert refused.status_code == 404


def test_tokens_and_registration_are_required(oracle: dict[str, Any], issuer: TokenIssuer) -> None:
    url = oracle["url"]
    body = {"escrow_address": ESCROW, "chain_id": 1338}
    assert httpx.post(f"{url}/assignment", json=body).status_code == 401
    assert (
        httpx.post(
            f"{url}/assignment", json=body, headers=auth(TokenIssuer().issue(account(1).address))
        ).status_code
        == 401
    )
    assert (
        httpx.post(
            f"{url}/assignment",
            json=body,
            headers=auth(issuer.issue(account(1).address, ttl_s=-100)),
        ).status_code
        == 401
    )
    listing = issuer.listing_token()
    assert httpx.post(f"{url}/assignment", json=body, headers=auth(listing)).status_code == 403
    unregistered = httpx.post(
        f"{url}/assignment", json=body, headers=auth(issuer.issue(account(2).address))
    )
    assert unregistered.status_code == 400 and "register first" in unregistered.json()["message"]
    missing = httpx.post(
        f"{url}/assignment",
        json={"escrow_address": "0x" + "0" * 40, "chain_id": 1338},
        headers=auth(issuer.issue(account(2).address)),
    )
    assert missing.status_code == 404


def test_qualifications_are_enforced(oracle: dict[str, Any], issuer: TokenIssuer) -> None:
    ctx: ExchangeContext = oracle["ctx"]
    with ctx.sessions() as s, s.begin():
        s.execute(
            escrows.update().values(manifest={"annotation": {"qualifications": ["audio-en"]}})
        )
    url = oracle["url"]
    plain, qualified = (
        issuer.issue(account(300).address),
        issuer.issue(account(301).address, qualifications=["audio-en"]),
    )
    for token in (plain, qualified):
        httpx.post(f"{url}/register", json={}, headers=auth(token))
    body = {"escrow_address": ESCROW, "chain_id": 1338}
    assert httpx.post(f"{url}/assignment", json=body, headers=auth(plain)).status_code == 403
    assert httpx.post(f"{url}/assignment", json=body, headers=auth(qualified)).status_code == 200


def test_job_listing_filters_pages_and_fields(oracle: dict[str, Any], issuer: TokenIssuer) -> None:
    url, token = oracle["url"], issuer.listing_token()
    page = httpx.get(
        f"{url}/job", headers=auth(token), params={"fields": ["reward_amount", "job_description"]}
    ).json()
    assert page["total_results"] == 1
    (job,) = page["results"]
    updated_at = job.pop("updated_at")
    assert updated_at.endswith("Z")
    assert job == {
        "escrow_address": ESCROW,
        "chain_id": 1338,
        "job_type": "audio_transcription",
        "status": "active",
        "qualifications": [],
        "reward_amount": "5",
        "job_description": "Transcribe",
    }
    assert (
        httpx.get(f"{url}/job", headers=auth(token), params={"status": "completed"}).json()[
            "results"
        ]
        == []
    )
    assert (
        httpx.get(f"{url}/job", headers=auth(token), params={"chain_id": 137}).json()[
            "total_results"
        ]
        == 0
    )
    assert (
        httpx.get(f"{url}/job", headers=auth(token), params={"fields": ["secret"]}).status_code
        == 400
    )
    assert httpx.get(f"{url}/job").status_code == 401


def _take(url: str, token: str) -> dict[str, Any]:
    httpx.post(f"{url}/register", json={}, headers=auth(token))
    reply = httpx.post(
        f"{url}/assignment", json={"escrow_address": ESCROW, "chain_id": 1338}, headers=auth(token)
    )
    assert reply.status_code == 200, reply.text
    got: dict[str, Any] = reply.json()
    return got


def _take_with_cvat_webhook(
    oracle: dict[str, Any], issuer: TokenIssuer, wallet_index: int
) -> tuple[Any, dict[str, Any], str, int]:
    """CVAT reports job changes to the oracle; a worker takes a job. Returns a CVAT client,
    the assignment, the worker's token and the assignment's CVAT job id."""
    from exchange_oracle.cvat import Cvat

    url, ctx = oracle["url"], oracle["ctx"]
    cvat = Cvat(oracle["cvat_url"], "admin", "admin-password")
    with ctx.sessions() as s:
        project = s.execute(select(escrows.c.cvat_project_id)).scalar_one()
    cvat.ensure_webhook(project, f"{url}/cvat-webhook", "seed-secret")
    token = issuer.issue(account(wallet_index).address)
    taken = _take(url, token)
    with ctx.sessions() as s:
        cvat_job = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == taken["assignment_id"])
        ).scalar_one()
    return cvat, taken, token, cvat_job


def _assignment(ctx: ExchangeContext, assignment_id: str) -> Any:
    with ctx.sessions() as s:
        return s.execute(select(assignments).where(assignments.c.id == assignment_id)).one()


def test_a_job_completed_in_cvat_completes_the_assignment(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    from tests.integration.conftest import wait_for

    url, ctx = oracle["url"], oracle["ctx"]
    cvat, taken, _, cvat_job = _take_with_cvat_webhook(oracle, issuer, 400)
    with ctx.sessions() as s:
        project = s.execute(select(escrows.c.cvat_project_id)).scalar_one()
    forged = httpx.post(
        f"{url}/cvat-webhook",
        headers={"X-Signature-256": "sha256=00"},
        content=json.dumps(
            {
                "event": "update:job",
                "job": {"id": cvat_job, "project_id": project, "state": "completed"},
            }
        ),
    )
    assert forged.status_code == 401
    elsewhere = httpx.post(
        f"{url}/cvat-webhook",
        headers={"X-Signature-256": "sha256=00"},
        content=json.dumps({"event": "update:job", "job": {"id": 1, "project_id": 987_654}}),
    )
    assert elsewhere.status_code == 401  # an unknown project reads like a bad signature
    assert _assignment(ctx, taken["assignment_id"]).status == "active"
    cvat.set_state(cvat_job, "completed")  # the double signs and sends update:job to us
    wait_for(
        lambda: _assignment(ctx, taken["assignment_id"]).status == "completed",
        what="completion from the CVAT webhook",
    )
    with ctx.sessions() as s:
        assert (
            s.execute(select(jobs.c.status).where(jobs.c.cvat_job_id == cvat_job)).scalar_one()
            == "completed"
        )
    cvat.close()


def test_expiry_frees_unfinished_jobs_but_keeps_finished_work(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    from exchange_oracle.cvat import Cvat
    from exchange_oracle.lifecycle import expire

    url, ctx = oracle["url"], oracle["ctx"]
    finished = _take(url, issuer.issue(account(500).address))
    abandoned = _take(url, issuer.issue(account(501).address))
    with ctx.sessions() as s, s.begin():
        s.execute(assignments.update().values(expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
        done_job = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == finished["assignment_id"])
        ).scalar_one()
        left_job = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == abandoned["assignment_id"])
        ).scalar_one()
    cvat = Cvat(oracle["cvat_url"], "admin", "admin-password")
    cvat.set_state(done_job, "completed")  # no webhook reaches us: only CVAT knows
    assert expire(ctx.sessions, cvat) == {"completed": 1, "expired": 1, "finished": []}
    assert _assignment(ctx, finished["assignment_id"]).status == "completed"
    assert _assignment(ctx, abandoned["assignment_id"]).status == "expired"
    with ctx.sessions() as s:
        assert (
            s.execute(select(jobs.c.status).where(jobs.c.cvat_job_id == left_job)).scalar_one()
            == "free"
        )
    with Client(oracle["cvat_url"]) as client:
        client.login(("admin", "admin-password"))
        assert client.jobs.retrieve(left_job).assignee is None
    assert expire(ctx.sessions, cvat) == {"completed": 0, "expired": 0, "finished": []}
    cvat.close()


def test_completeness_feedback_for_a_draft_is_the_workers_own(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    url = oracle["url"]
    token = issuer.issue(account(520).address)
    got = _take(url, token)
    check = f"{url}/assignment/{got['assignment_id']}/check"
    draft = {
        "segments": [
            {"start_ms": 100, "end_ms": 400, "label": "speech", "transcription": "hello"},
            {"start_ms": 500, "end_ms": 900, "label": "speech", "transcription": " "},
            {"start_ms": 860, "end_ms": 1200, "label": "laugh"},
        ]
    }
    reply = httpx.post(check, json=draft, headers=auth(token))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert not body["complete"] and body["segments"] == 3
    messages = [p["message"] for p in body["problems"]]
    assert "segment 2 (0.5-0.9 s) has no transcription" in messages
    assert "segment 3 (0.9-1.2 s) lies outside the clip" in messages
    assert "1 of 3 segments lack a transcription" in body["summary"]
    done = {"segments": draft["segments"][:1]}
    assert httpx.post(check, json=done, headers=auth(token)).json()["complete"] is True
    stranger = issuer.issue(account(521).address)
    assert httpx.post(check, json=done, headers=auth(stranger)).status_code == 404


def test_reconciliation_finds_completions_whose_webhook_was_lost(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    from exchange_oracle.cvat import Cvat
    from exchange_oracle.lifecycle import reconcile

    url, ctx = oracle["url"], oracle["ctx"]
    done, busy = (_take(url, issuer.issue(account(530 + i).address)) for i in range(2))
    with ctx.sessions() as s:
        cvat_job = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == done["assignment_id"])
        ).scalar_one()
    cvat = Cvat(oracle["cvat_url"], "admin", "admin-password")
    try:
        cvat.set_state(cvat_job, "completed")  # no webhook registered: the event is lost
        assert _assignment(ctx, done["assignment_id"]).status == "active"
        assert reconcile(ctx.sessions, cvat) == (1, [])
        assert reconcile(ctx.sessions, cvat) == (0, [])
    finally:
        cvat.close()
    assert _assignment(ctx, done["assignment_id"]).status == "completed"
    assert _assignment(ctx, busy["assignment_id"]).status == "active"


def test_the_annotator_page_api_saves_to_cvat_and_submits_only_complete_work(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    from tests.integration.conftest import wait_for

    url, ctx = oracle["url"], oracle["ctx"]
    cvat, got, token, cvat_job = _take_with_cvat_webhook(oracle, issuer, 540)
    base = f"{url}/assignment/{got['assignment_id']}"
    page = httpx.get(f"{base}/annotations", headers=auth(token)).json()
    clip_ms = page["clip_ms"]  # CVAT's count for the 1 s clip: its MP3 stream, ~930 ms
    assert 900 < clip_ms < 1000 and page["labels"][0]["name"] == "speech"
    assert [(s["start_ms"], s["end_ms"]) for s in page["segments"]] == [(100, 800)]  # VAD
    assert page["feedback"]["summary"] == ["1 of 1 segments lack a transcription"]

    draft = [
        {"start_ms": 50, "end_ms": 400, "label": "speech", "transcription": "hello"},
        {"start_ms": 500, "end_ms": clip_ms, "label": "speech"},  # CVAT takes stop == size
    ]
    saved = httpx.put(f"{base}/annotations", json={"segments": draft}, headers=auth(token))
    assert saved.status_code == 200, saved.text
    assert saved.json()["feedback"]["complete"] is False
    assert [(i["start"], i["stop"]) for i in cvat.intervals(cvat_job)] == [
        (50, 400),
        (500, clip_ms),
    ]
    refused = httpx.post(f"{base}/submit", headers=auth(token))
    assert refused.status_code == 409
    assert refused.json()["detail"]["missing"] == ["1 of 2 segments lack a transcription"]
    assert cvat.job_state(cvat_job) != "completed"

    bad = [{"start_ms": 900, "end_ms": 1200, "label": "speech", "transcription": "x"}]
    assert (
        httpx.put(f"{base}/annotations", json={"segments": bad}, headers=auth(token)).status_code
        == 422
    )
    stray = [{"start_ms": 0, "end_ms": 100, "label": "speech", "attributes": {"mood": "x"}}]
    refused_attr = httpx.put(f"{base}/annotations", json={"segments": stray}, headers=auth(token))
    assert refused_attr.status_code == 422 and "mood" in refused_attr.json()["message"]
    unknown = [{"start_ms": 0, "end_ms": 100, "label": "music"}]
    assert (
        httpx.put(
            f"{base}/annotations", json={"segments": unknown}, headers=auth(token)
        ).status_code
        == 422
    )
    stranger = issuer.issue(account(541).address)
    assert httpx.get(f"{base}/annotations", headers=auth(stranger)).status_code == 404

    draft[1]["transcription"] = "world"
    assert httpx.put(f"{base}/annotations", json={"segments": draft}, headers=auth(token)).json()[
        "feedback"
    ]["complete"]
    done = httpx.post(f"{base}/submit", headers=auth(token))
    assert done.status_code == 200, done.text
    assert cvat.job_state(cvat_job) == "completed"
    wait_for(lambda: _assignment(ctx, got["assignment_id"]).status == "completed", what="done")
    late = httpx.put(f"{base}/annotations", json={"segments": draft}, headers=auth(token))
    assert late.status_code == 409
    cvat.close()
