"""The worker API as HUMAN App calls it and reads it (humanprotocol/human-protocol b5223363:
HUMAN App's `integrations/exchange-oracle/exchange-oracle.gateway.ts`, `modules/cron-job/
cron-job.service.ts`, `modules/job-assignment/`, `common/filter/exceptions.filter.ts`; the
peer exchange oracle's `src/endpoints/`). Each test names the peer fact it pins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.accounts import account
from sandbox.human_app import HumanApp, TokenIssuer
from tests.integration.worker_world import ESCROW, auth

pytestmark = pytest.mark.integration
# HUMAN App's job-discovery cron, word for word: pages from 0, ten at a time, four fields.
CRON_QUERY = (
    "page=0&page_size=10&fields=job_description&fields=reward_amount"
    "&fields=reward_token&fields=created_at&status=active"
)
# What the cron checks on the first item of each page (`!== undefined`).
CRON_REQUIRED = (
    "escrow_address",
    "chain_id",
    "job_type",
    "status",
    "job_description",
    "reward_amount",
    "reward_token",
    "created_at",
)


def test_human_app_lists_jobs_from_page_0_with_its_machine_token(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    """HUMAN App's cron sends its M2M token (role human_app, no wallet, no qualifications)
    and reads `total_pages`, every required field, and `qualifications` to filter itself."""
    m2m = issuer.issue(None, email="human-app@hmt.ai", role="human_app", user_id="human_app")
    reply = httpx.get(f"{oracle['url']}/job?{CRON_QUERY}", headers=auth(m2m))
    assert reply.status_code == 200, reply.text
    page = reply.json()
    assert {k: page[k] for k in ("page", "page_size", "total_pages", "total_results")} == {
        "page": 0,
        "page_size": 10,
        "total_pages": 1,
        "total_results": 1,
    }
    (job,) = page["results"]
    assert all(job.get(k) is not None for k in CRON_REQUIRED)
    assert isinstance(job["reward_amount"], str) and float(job["reward_amount"]) == 5
    assert job["qualifications"] == [] and job["job_type"] == "audio_transcription"
    assert job["created_at"].endswith("Z") and job["updated_at"].endswith("Z")


def test_the_stand_in_sends_exactly_human_apps_requests(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    app = HumanApp(oracle["url"], issuer)
    assert [j["escrow_address"] for j in app.discover_jobs()] == [ESCROW]
    assert app.requests[0] == f"GET /job?{CRON_QUERY}"
    wallet = account(400).address
    app.register(wallet)
    taken = app.take(wallet, ESCROW, 1338)
    assert app.requests[-1] == "POST /assignment"
    mine = app.refresh_assignments(wallet)
    assert [a["assignment_id"] for a in mine] == [taken["assignment_id"]]
    assert app.requests[-1].startswith("GET /assignment?page=0&page_size=10&updated_after=")
    assert app.stats()["escrows_processed"] == 1 and app.requests[-1] == "GET /stats"


@pytest.mark.parametrize(
    "sort_field", ["created_at", "updated_at", "chain_id", "job_type", "reward_amount"]
)
@pytest.mark.parametrize("sort", ["asc", "desc", "ASC"])
def test_every_job_sort_field_human_app_may_send_is_served(
    oracle: dict[str, Any], issuer: TokenIssuer, sort_field: str, sort: str
) -> None:
    reply = httpx.get(
        f"{oracle['url']}/job",
        params={"sort_field": sort_field, "sort": sort, "page": 0},
        headers=auth(issuer.listing_token()),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["total_results"] == 1


def test_fields_come_repeated_or_comma_separated_and_pages_past_the_end_are_empty(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    url, token = oracle["url"], auth(issuer.listing_token())
    csv = httpx.get(f"{url}/job?fields=reward_amount,created_at", headers=token).json()
    (job,) = csv["results"]
    assert "reward_amount" in job and "created_at" in job and "job_description" not in job
    assert "qualifications" in job and "updated_at" in job  # always there
    assert httpx.get(f"{url}/job?page=1", headers=token).json()["results"] == []


def test_oracle_stats_need_no_token_and_use_the_peer_names(oracle: dict[str, Any]) -> None:
    reply = httpx.get(f"{oracle['url']}/stats")  # HUMAN App sends no Authorization here
    assert reply.status_code == 200
    stats = reply.json()
    for name in (
        "workers_total",
        "assignments_completed",
        "assignments_rejected",
        "assignments_expired",
        "escrows_processed",
        "escrows_active",
        "escrows_cancelled",
    ):
        assert isinstance(stats[name], int), name
    assert stats["escrows_active"] == 1


def _taken(oracle: dict[str, Any], issuer: TokenIssuer, n: int) -> tuple[str, dict[str, Any]]:
    token = issuer.issue(account(n).address)
    httpx.post(
        f"{oracle['url']}/register",
        json={"oracle_address": account(2).address, "h_captcha_token": "10000000-aaaa"},
        headers=auth(token),
    ).raise_for_status()
    reply = httpx.post(
        f"{oracle['url']}/assignment",
        json={"escrow_address": ESCROW, "chain_id": 1338},
        headers=auth(token),
    )
    assert reply.status_code == 200, reply.text
    return token, reply.json()


def test_worker_stats_carry_both_names_human_app_and_its_oracles_use(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    token, _ = _taken(oracle, issuer, 410)
    stats = httpx.get(f"{oracle['url']}/stats/assignment", headers=auth(token)).json()
    assert stats["assignments_amount"] == stats["assignments_total"] == 1
    for name in ("submissions_sent", "assignments_completed", "assignments_rejected"):
        assert stats[name] == 0, name
    assert stats["assignments_expired"] == 0 and stats["last_updated"].endswith("Z")


def test_my_assignments_honour_every_filter_human_app_sends(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    url = oracle["url"]
    token, taken = _taken(oracle, issuer, 420)
    first = taken["assignment_id"]
    httpx.post(f"{url}/assignment/resign", json={"assignment_id": first}, headers=auth(token))
    second = httpx.post(
        f"{url}/assignment", json={"escrow_address": ESCROW, "chain_id": 1338}, headers=auth(token)
    ).json()["assignment_id"]

    def ids(**params: Any) -> list[str]:
        reply = httpx.get(f"{url}/assignment", params={"page": 0, **params}, headers=auth(token))
        assert reply.status_code == 200, reply.text
        return [a["assignment_id"] for a in reply.json()["results"]]

    assert ids() == [first, second]  # ascending by created_at, as the peer sorts by default
    assert ids(sort="desc") == [second, first]
    assert ids(status="canceled") == [first] and ids(status="active") == [second]
    assert ids(assignment_id=second) == [second]
    assert ids(escrow_address=ESCROW.lower(), chain_id=1338) == [first, second]
    assert ids(chain_id=137) == [] and ids(job_type="image_boxes") == []
    for field in ("chain_id", "job_type", "status", "reward_amount", "created_at", "expires_at"):
        assert sorted(ids(sort_field=field)) == sorted([first, second]), field
    # HUMAN App learns of changes only through updated_after (its cache refresh).
    items = httpx.get(f"{url}/assignment", headers=auth(token)).json()["results"]
    newest = max(a["updated_at"] for a in items)
    assert ids(updated_after=newest) == []
    past = (datetime.now(UTC) - timedelta(days=45)).isoformat().replace("+00:00", "Z")
    assert ids(updated_after=past) == [first, second]
    canceled = next(a for a in items if a["assignment_id"] == first)
    assert canceled["url"] is None and canceled["status"] == "canceled"
    assert next(a for a in items if a["assignment_id"] == second)["url"].endswith(second)


def test_errors_carry_a_message_human_app_can_relay(
    oracle: dict[str, Any], issuer: TokenIssuer
) -> None:
    """HUMAN App copies the status and relays only `message`; validation errors are 400."""
    url = oracle["url"]
    token, _ = _taken(oracle, issuer, 430)
    again = httpx.post(
        f"{url}/assignment", json={"escrow_address": ESCROW, "chain_id": 1338}, headers=auth(token)
    )
    assert again.status_code == 400 and "unfinished assignment" in again.json()["message"]
    unauthenticated = httpx.get(f"{url}/assignment")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["message"]
    too_big = httpx.get(f"{url}/job?page_size=1000", headers=auth(issuer.listing_token()))
    assert too_big.status_code == 400 and "page_size" in too_big.json()["message"]
    bad_body = httpx.post(f"{url}/assignment", json={"chain_id": "x"}, headers=auth(token))
    assert bad_body.status_code == 400
    assert {e["field"] for e in bad_body.json()["errors"]} == {"escrow_address", "chain_id"}
