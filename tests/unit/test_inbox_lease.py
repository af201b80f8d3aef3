"""The inbox lease: an event being handled is left alone while its handler's heartbeat
renews the lease, and swept to another worker once the lease lapses; a heartbeat writes a
fresh timestamp on every beat."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, create_engine, insert, select, update
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from oracle_core.events import PENDING, EventTables, stale_inbox, utcnow
from oracle_core.heartbeat import heartbeat


def _inbox(**row: Any) -> tuple[EventTables, sessionmaker[Any]]:
    tables = EventTables(MetaData())
    # One connection shared by every thread: the heartbeat beats from its own.
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    tables.inbox.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    values = dict(
        id="e1", digest="d1", chain_id=1338, escrow_address="0x" + "ab" * 20,
        event_type="job_finished", sender="0x" + "cd" * 20, status=PENDING, attempts=0,
        received_at=utcnow() - timedelta(minutes=5),
    )  # fmt: skip
    with sessions() as session, session.begin():
        session.execute(insert(tables.inbox).values({**values, **row}))
    return tables, sessions


def _stale(tables: EventTables, sessions: sessionmaker[Any]) -> list[str]:
    with sessions() as session:
        return stale_inbox(session, tables, older_than_s=10)


def test_an_event_never_dispatched_is_swept_once_it_is_older_than_the_sweep() -> None:
    tables, sessions = _inbox(lease_until=None)
    assert _stale(tables, sessions) == ["e1"]
    young, young_sessions = _inbox(received_at=utcnow())
    assert _stale(young, young_sessions) == []


def test_a_held_lease_keeps_the_event_from_the_sweep_until_it_lapses() -> None:
    tables, sessions = _inbox(lease_until=utcnow() + timedelta(seconds=15))
    assert _stale(tables, sessions) == []  # a live worker has it (or a retry waits)
    with sessions() as session, session.begin():
        session.execute(update(tables.inbox).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert _stale(tables, sessions) == ["e1"]  # its worker is gone


def test_finished_events_are_never_swept() -> None:
    for status in ("done", "failed"):
        tables, sessions = _inbox(status=status)
        assert _stale(tables, sessions) == []


def test_each_beat_writes_a_fresh_time() -> None:
    tables, sessions = _inbox(lease_until=None)
    inbox = tables.inbox
    seen: list[Any] = []

    def lease() -> Any:
        with sessions() as session:
            return session.execute(select(inbox.c.lease_until)).scalar_one()

    with heartbeat(sessions, lambda: update(inbox).values(lease_until=utcnow()), every_s=0.05):
        for _ in range(3):
            time.sleep(0.12)
            seen.append(lease())
    assert None not in seen
    assert seen[0] < seen[1] < seen[2]  # a statement built once would repeat one time
