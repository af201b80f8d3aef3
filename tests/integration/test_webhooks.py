"""Webhook intake over HTTP: verified over raw bytes against roles read from the chain,
stored once, and every bad delivery refused with nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from oracle_core.webhooks import SIGNATURE_HEADER, Envelope, sign
from sandbox import accounts
from tests.integration.escrows import key, launch_escrow
from tests.integration.receivers import Inbox, inbox_app

pytestmark = pytest.mark.integration
ACCEPTED = {
    "escrow_created": ("launcher",),
    "job_finished": ("exchange_oracle",),
    "escrow_canceled": ("launcher", "reputation_oracle"),
}


@pytest.fixture
def receiver(chain_url: str, pg_url: str) -> Iterator[Inbox]:
    with inbox_app(chain_url, pg_url, ACCEPTED) as inbox:
        yield inbox


@pytest.fixture(scope="module")
def escrow(chain_url: str) -> str:
    return launch_escrow(chain_url)


def envelope(escrow: str, event_type: str = "escrow_created", **data: object) -> bytes:
    return Envelope(
        escrow_address=escrow,
        chain_id=1338,
        event_type=event_type,
        event_data=data or None,
        timestamp="2026-11-25T08:00:00.000Z",
    ).to_bytes()


def post(receiver: Inbox, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return httpx.post(f"{receiver.url}/webhook", content=body, headers=headers, timeout=30)


def test_a_good_signature_is_accepted_once_and_a_replay_is_deduplicated(
    receiver: Inbox, escrow: str
) -> None:
    body = envelope(escrow, note=True, nothing=None)  # JSON true/null: no literal_eval here
    signature = sign(body, key(accounts.JOB_LAUNCHER))
    first = post(receiver, body, signature)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    again = post(receiver, body, signature)
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert receiver.processed == [first.json()["id"]]
    assert receiver.count() == 1
    (row,) = receiver.rows()
    assert row.sender == accounts.account(accounts.JOB_LAUNCHER).address
    assert row.event_data == {"note": True, "nothing": None}


def test_the_exchange_oracle_may_send_job_finished(receiver: Inbox, escrow: str) -> None:
    body = envelope(escrow, "job_finished")
    assert post(receiver, body, sign(body, key(accounts.EXCHANGE_ORACLE))).status_code == 200


def _rejected(receiver: Inbox, reply: httpx.Response, status: int, text: str) -> None:
    assert reply.status_code == status, reply.text
    assert text in reply.json()["message"]
    assert receiver.count() == 0
    assert receiver.processed == []


def test_a_tampered_body_is_refused(receiver: Inbox, escrow: str) -> None:
    body = envelope(escrow, amount=1)
    signature = sign(body, key(accounts.JOB_LAUNCHER))
    tampered = body.replace(b'"amount":1', b'"amount":9')
    _rejected(receiver, post(receiver, tampered, signature), 401, "must come from the launcher")


def test_a_stranger_signature_is_refused(receiver: Inbox, escrow: str) -> None:
    body = envelope(escrow)
    _rejected(
        receiver,
        post(receiver, body, sign(body, key(accounts.FIRST_WORKER))),
        401,
        "must come from the launcher",
    )


def test_the_right_signer_in_the_wrong_role_is_refused(receiver: Inbox, escrow: str) -> None:
    body = envelope(escrow, "escrow_created")
    _rejected(
        receiver,
        post(receiver, body, sign(body, key(accounts.EXCHANGE_ORACLE))),
        401,
        "must come from the launcher",
    )


def test_missing_or_garbage_signatures_are_refused(receiver: Inbox, escrow: str) -> None:
    body = envelope(escrow)
    _rejected(receiver, post(receiver, body, None), 401, "missing human-signature")
    _rejected(receiver, post(receiver, body, "0xnothex"), 401, "not a valid EIP-191")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"chain_id": 1338, "event_type": "escrow_created"}).encode(), "escrow_address"),
        (
            json.dumps({"escrow_address": "0x12", "chain_id": 1338, "event_type": "x"}).encode(),
            "is not an address",
        ),
    ],
)
def test_malformed_bodies_get_422(receiver: Inbox, body: bytes, text: str) -> None:
    _rejected(receiver, post(receiver, body, sign(body, key(accounts.JOB_LAUNCHER))), 422, text)


def test_unknown_escrow_chain_or_event_type_get_400(receiver: Inbox, escrow: str) -> None:
    launcher = key(accounts.JOB_LAUNCHER)
    stranger = envelope(accounts.account(15).address)
    _rejected(receiver, post(receiver, stranger, sign(stranger, launcher)), 400, "is not an escrow")
    other_chain = envelope(escrow).replace(b'"chain_id":1338', b'"chain_id":137')
    _rejected(receiver, post(receiver, other_chain, sign(other_chain, launcher)), 400, "chain 137")
    unknown = envelope(escrow, "escrow_completed")
    _rejected(receiver, post(receiver, unknown, sign(unknown, launcher)), 400, "not accepted here")


def test_a_python_peers_signature_over_the_ascii_escaped_body_is_accepted(
    receiver: Inbox, escrow: str
) -> None:
    """HUMAN's Python oracles sign `json.dumps(body, separators=(",", ":"))` (ASCII-escaped)
    but send UTF-8 (httpx's `json=`): a non-ASCII reason must still verify."""
    doc = {"escrow_address": escrow, "chain_id": 1338, "event_type": "escrow_created",
           "event_data": {"reason": "Übung: “naïve” café"}}  # fmt: skip
    signed = json.dumps(doc, separators=(",", ":")).encode()
    wire = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    assert signed != wire
    reply = post(receiver, wire, sign(signed, key(accounts.JOB_LAUNCHER)))
    assert reply.status_code == 200, reply.text
    (row,) = receiver.rows()
    assert row.event_data == {"reason": "Übung: “naïve” café"}


def test_a_typescript_peers_body_in_its_own_key_order_is_accepted(
    receiver: Inbox, escrow: str
) -> None:
    """HUMAN's reputation oracle keeps bodies in PostgreSQL jsonb (keys reordered) and signs
    `JSON.stringify` of them: raw UTF-8, no timestamp."""
    wire = json.dumps(
        {"chain_id": 1338, "event_type": "escrow_canceled", "escrow_address": escrow},
        separators=(",", ":"),
    ).encode()
    reply = post(receiver, wire, sign(wire, key(accounts.REPUTATION_ORACLE)))
    assert reply.status_code == 200, reply.text


def test_loosened_forms_still_refuse_strangers_wrong_roles_and_edits(
    receiver: Inbox, escrow: str
) -> None:
    doc = {"escrow_address": escrow, "chain_id": 1338, "event_type": "escrow_created",
           "event_data": {"reason": "café"}}  # fmt: skip
    signed = json.dumps(doc, separators=(",", ":")).encode()
    edited = signed.replace(b"caf", b"cav")
    _rejected(receiver, post(receiver, edited, sign(signed, key(accounts.JOB_LAUNCHER))), 401, "")
    for who in (accounts.FIRST_WORKER, accounts.REPUTATION_ORACLE):
        _rejected(receiver, post(receiver, signed, sign(signed, key(who))), 401, "launcher")


def test_an_unknown_event_is_refused_by_name_and_nothing_is_stored(
    receiver: Inbox, escrow: str
) -> None:
    body = envelope(escrow, "job_canceled")
    reply = post(receiver, body, sign(body, key(accounts.JOB_LAUNCHER)))
    _rejected(receiver, reply, 400, "'job_canceled' is not accepted here")
