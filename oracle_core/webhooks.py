"""Webhooks between oracles: the envelope, EIP-191 signatures, and verification over raw bytes.

The signature covers the exact bytes on the wire. Verification recovers the signer from
those bytes and accepts only the address the escrow names, on chain, for the role that
sends the event type.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from web3 import Web3

from oracle_core.chain import Chain, ChainError
from oracle_core.errors import Refusal

SIGNATURE_HEADER = "human-signature"

# Who may send each event type (a role the escrow names on chain).
EVENT_SENDERS: dict[str, str] = {
    "escrow_created": "launcher",
    "escrow_canceled": "launcher",
    "escrow_failed": "exchange_oracle",
    "job_finished": "exchange_oracle",
    "escrow_recorded": "exchange_oracle",
    "escrow_cleaned": "exchange_oracle",
    "submission_rejected": "recording_oracle",
    "job_completed": "recording_oracle",
    "escrow_completed": "reputation_oracle",
}


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    escrow_address: str
    chain_id: int
    event_type: str
    event_data: dict[str, Any] | None = None
    timestamp: str | None = None

    @field_validator("escrow_address")
    @classmethod
    def _checksummed(cls, value: str) -> str:
        if not Web3.is_address(value):
            raise ValueError(f"'{value}' is not an address")
        return str(Web3.to_checksum_address(value))

    def to_bytes(self) -> bytes:
        """Compact JSON, the form the protocol signs."""
        doc = self.model_dump(exclude_none=True)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(body: bytes, private_key: str) -> str:
    signed = Account.sign_message(
        encode_defunct(text=body.decode("utf-8")), private_key=private_key
    )
    return "0x" + signed.signature.hex().removeprefix("0x")


def recover(body: bytes, signature: str) -> str:
    return str(
        Account.recover_message(encode_defunct(text=body.decode("utf-8")), signature=signature)
    )


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class WebhookRejected(Refusal):
    """Why a delivery is refused, with the HTTP status to answer."""


@dataclass(frozen=True)
class VerifiedEvent:
    envelope: Envelope
    sender: str
    digest: str


def verify(
    raw: bytes, signature: str | None, accepted: Mapping[str, str], chain: Chain
) -> VerifiedEvent:
    """422 for malformed bodies, 400 for events or escrows we do not serve, 401 for signers
    that are not the escrow's sender for that event type."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected(422, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WebhookRejected(422, "body must be a JSON object")
    try:
        envelope = Envelope.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise WebhookRejected(422, problems) from None
    role = accepted.get(envelope.event_type)
    if role is None:
        raise WebhookRejected(400, f"event type '{envelope.event_type}' is not accepted here")
    if envelope.chain_id != chain.chain_id:
        raise WebhookRejected(
            400, f"chain {envelope.chain_id} is not served here ({chain.chain_id})"
        )
    try:
        escrow = chain.read_escrow(envelope.escrow_address)
    except ChainError as exc:
        raise WebhookRejected(400, str(exc)) from None
    if not signature:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} header")
    try:
        signer = recover(raw, signature)
    except Exception:  # malformed hex, wrong length, bad curve point: all just "invalid"
        raise WebhookRejected(401, "signature is not a valid EIP-191 signature") from None
    expected = escrow.role_address(role)
    if signer != expected:
        raise WebhookRejected(
            401, f"signed by {signer}, but '{envelope.event_type}' must come from the {role}"
        )
    return VerifiedEvent(envelope, signer, body_digest(raw))
