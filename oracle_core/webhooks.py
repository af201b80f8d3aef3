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

from oracle_core.body_guard import BodyRefused, loads
from oracle_core.chain import Chain, ChainError
from oracle_core.errors import Refusal

SIGNATURE_HEADER = "human-signature"

# Who may send each event type (roles the escrow names on chain). HUMAN's job launcher
# asks for cancellation with `cancellation_requested` (to both oracles); its reputation
# oracle sends `escrow_canceled` once it has canceled the escrow, and `abuse_detected`.
EVENT_SENDERS: dict[str, tuple[str, ...]] = {
    "escrow_created": ("launcher",),
    "cancellation_requested": ("launcher",),
    "escrow_canceled": ("launcher", "reputation_oracle"),
    "abuse_detected": ("reputation_oracle", "launcher"),
    "abuse_dismissed": ("reputation_oracle", "launcher"),
    "escrow_failed": ("exchange_oracle",),
    "job_finished": ("exchange_oracle",),
    "escrow_recorded": ("exchange_oracle",),
    "escrow_cleaned": ("exchange_oracle",),
    "submission_rejected": ("recording_oracle",),
    "job_completed": ("recording_oracle",),
    "escrow_completed": ("reputation_oracle",),
}
# HUMAN's Python oracles verify a signature over `json.dumps(body, separators=(",", ":"))`
# of the parsed body (ASCII-escaped), its TypeScript services over `JSON.stringify` of it
# (raw UTF-8): a body is sent in the form its receiver rebuilds.
PYTHON_PEERS = ("exchange_oracle", "recording_oracle")


def compact(doc: Any, *, ascii_only: bool) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def signed_forms(raw: bytes, doc: Any) -> list[bytes]:
    """What a peer may have signed for these bytes: the bytes themselves, the compact
    ASCII-escaped form (HUMAN's Python peers) and the compact UTF-8 form (its TypeScript
    peers, `JSON.stringify`)."""
    forms = [raw, compact(doc, ascii_only=True), compact(doc, ascii_only=False)]
    return list(dict.fromkeys(forms))


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

    def to_bytes(self, *, ascii_only: bool = False) -> bytes:
        """Compact JSON, the form the protocol signs; `ascii_only` for a Python peer."""
        return compact(self.model_dump(exclude_none=True), ascii_only=ascii_only)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(body: bytes, private_key: str) -> str:
    signed = Account.sign_message(
        encode_defunct(text=body.decode("utf-8")), private_key=private_key
    )
    return "0x" + signed.signature.hex().removeprefix("0x")


def recover(body: bytes, signature: str) -> str:
    """The signer of `body`; raises on a malformed signature."""
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
    raw: bytes, signature: str | None, accepted: Mapping[str, tuple[str, ...]], chain: Chain
) -> VerifiedEvent:
    """422 for malformed bodies, 400 for events or escrows we do not serve, 401 for signers
    that are not one of the escrow's senders for that event type. The signature may cover
    the raw bytes or the compact form a Python or TypeScript peer rebuilds (`signed_forms`);
    whichever it covers, it must recover to an address the escrow names for the role."""
    try:
        doc = loads(raw)
    except BodyRefused as exc:
        raise WebhookRejected(exc.status, exc.message) from None
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
    roles = accepted.get(envelope.event_type)
    if roles is None:
        raise WebhookRejected(
            400,
            f"event type '{envelope.event_type}' is not accepted here; "
            f"accepted: {', '.join(sorted(accepted))}",
        )
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
    senders = {escrow.role_address(role).lower(): role for role in roles}
    signers = []
    for form in signed_forms(raw, doc):
        try:
            signer = recover(form, signature)
        except Exception:  # malformed hex, wrong length, bad curve point: all just "invalid"
            raise WebhookRejected(401, "signature is not a valid EIP-191 signature") from None
        if signer.lower() in senders:
            return VerifiedEvent(envelope, signer, body_digest(raw))
        signers.append(signer)
    raise WebhookRejected(
        401,
        f"signed by {signers[0]}, but '{envelope.event_type}' must come from the "
        + " or the ".join(roles),
    )
