"""Outgoing events in the form each HUMAN peer verifies (humanprotocol/human-protocol
b5223363): its Python oracles rebuild `json.dumps(body, separators=(",", ":"))` (ASCII-
escaped) from `ast.literal_eval(body)`, its TypeScript services `JSON.stringify(body)`,
and the job launcher refuses unknown top-level keys (`forbidNonWhitelisted`)."""

from __future__ import annotations

import ast
import json

import pytest
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.orm import sessionmaker

from oracle_core.events import EventTables, enqueue
from oracle_core.webhooks import recover, sign

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ESCROW = "0x" + "Ab" * 20


def _sent(role: str, data: dict[str, object] | None) -> bytes:
    tables = EventTables(MetaData())
    engine = create_engine("sqlite://")
    tables.inbox.metadata.create_all(engine)
    with sessionmaker(engine)() as session, session.begin():
        enqueue(
            session,
            tables,
            chain_id=1338,
            escrow_address=ESCROW,
            event_type="escrow_failed" if role == "launcher" else "job_finished",
            target_address=ESCROW,
            target_role=role,
            event_data=data,
        )
        body: str = session.execute(select(tables.outbox.c.body)).scalar_one()
    return body.encode()


def test_a_python_peer_gets_ascii_bytes_it_rebuilds_exactly() -> None:
    body = _sent("recording_oracle", {"reason": "naïve “quotes”", "n": 2})
    assert body.isascii()
    rebuilt = json.dumps(ast.literal_eval(body.decode()), separators=(",", ":")).encode()
    assert rebuilt == body  # so the signature over `body` verifies on their side
    assert recover(rebuilt, sign(body, KEY)) == recover(body, sign(body, KEY))


def test_the_launcher_gets_no_timestamp_and_utf8_as_json_stringify_writes_it() -> None:
    body = _sent("launcher", {"reason": "fichier illisible: café.wav"})
    doc = json.loads(body)
    assert set(doc) == {"escrow_address", "chain_id", "event_type", "event_data"}
    assert json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() == body


def test_json_literals_are_never_sent_to_a_python_peer() -> None:
    with pytest.raises(ValueError, match="true/false/null"):
        _sent("exchange_oracle", {"ok": True})
    with pytest.raises(ValueError, match="true/false/null"):
        _sent("exchange_oracle", {"items": [{"reason": None}]})
