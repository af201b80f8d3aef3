"""Inbox and outbox: every accepted event stored once, every outgoing event delivered at least
once with exponential backoff, then dead-lettered where everyone can see it.

Tables are made on the caller's MetaData, so each oracle's own database holds its own.
Outgoing events are inserted in the caller's transaction, and handed to the dispatcher only
after that transaction commits: no event for a change that rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.db import UtcDateTime, transaction
from oracle_core.storage import UnsafeUrlError, pinned_client
from oracle_core.webhooks import (
    PYTHON_PEERS,
    SIGNATURE_HEADER,
    Envelope,
    VerifiedEvent,
    now_iso,
    sign,
)

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
DELIVERED, DEAD = "delivered", "dead"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class EventTables:
    """The `inbox` and `outbox` tables on one MetaData."""

    def __init__(self, metadata: MetaData) -> None:
        self.inbox = Table(
            "inbox",
            metadata,
            Column("id", String(36), primary_key=True),
            Column("digest", String(64), nullable=False, unique=True),
            Column("chain_id", Integer, nullable=False),
            Column("escrow_address", String(42), nullable=False, index=True),
            Column("event_type", String(64), nullable=False),
            Column("event_data", JSON),
            Column("sender", String(42), nullable=False),
            Column("status", String(16), nullable=False, default=PENDING, index=True),
            Column("attempts", Integer, nullable=False, default=0),
            Column("error", Text),
            Column("received_at", UtcDateTime(), nullable=False),
            Column("processed_at", UtcDateTime()),
            # While a worker handles the event it keeps this in the future (a heartbeat); a
            # retry waiting out its backoff sets it past the wait. Once it lapses, the
            # worker is gone and the sweep hands the event to another.
            Column("lease_until", UtcDateTime()),
        )
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", String(36), primary_key=True),
            Column("chain_id", Integer, nullable=False),
            Column("escrow_address", String(42), nullable=False, index=True),
            Column("event_type", String(64), nullable=False),
            Column("target_address", String(42), nullable=False),
            Column("body", Text, nullable=False),
            Column("status", String(16), nullable=False, index=True),
            Column("attempts", Integer, nullable=False, default=0),
            Column("next_attempt_at", UtcDateTime(), nullable=False, index=True),
            Column("lease_until", UtcDateTime()),
            Column("last_error", Text),
            Column("created_at", UtcDateTime(), nullable=False),
            Column("delivered_at", UtcDateTime()),
        )


# -- inbox ---------------------------------------------------------------------------------
def receive(session: Session, tables: EventTables, event: VerifiedEvent) -> tuple[str, bool]:
    """Store an accepted event once: (id, True) when it is to be processed (the first time,
    or again after it was refused), (same id, False) for a duplicate."""
    env = event.envelope
    new_id = str(uuid.uuid4())
    try:
        with session.begin_nested():
            session.execute(
                insert(tables.inbox).values(
                    id=new_id,
                    digest=event.digest,
                    chain_id=env.chain_id,
                    escrow_address=env.escrow_address,
                    event_type=env.event_type,
                    event_data=env.event_data,
                    sender=event.sender,
                    status=PENDING,
                    attempts=0,
                    received_at=utcnow(),
                )
            )
        return new_id, True
    except IntegrityError:
        existing = session.execute(
            select(tables.inbox.c.id, tables.inbox.c.status).where(
                tables.inbox.c.digest == event.digest
            )
        ).one()
        if existing.status != FAILED:
            return str(existing.id), False
        # Refused before (say, the chain did not show the cancellation yet): the sender's
        # retry of the same event is looked at again rather than ignored.
        session.execute(
            update(tables.inbox)
            .where(tables.inbox.c.id == existing.id, tables.inbox.c.status == FAILED)
            .values(status=PENDING, processed_at=None)
        )
        return str(existing.id), True


def stale_inbox(
    session: Session, tables: EventTables, older_than_s: float = 10, limit: int = 100
) -> list[str]:
    """Accepted events still pending after `older_than_s` whose lease has lapsed: their
    dispatch was lost, or the worker handling them died."""
    inbox = tables.inbox
    now = utcnow()
    rows = session.execute(
        select(inbox.c.id)
        .where(
            inbox.c.status == PENDING,
            inbox.c.received_at < now - timedelta(seconds=older_than_s),
            or_(inbox.c.lease_until.is_(None), inbox.c.lease_until < now),
        )
        .order_by(inbox.c.received_at)
        .limit(limit)
    ).scalars()
    return [str(r) for r in rows]


# -- outbox --------------------------------------------------------------------------------
OUTBOX_NEW = "outbox_new_ids"


def enqueue(
    session: Session,
    tables: EventTables,
    *,
    chain_id: int,
    escrow_address: str,
    event_type: str,
    target_address: str,
    target_role: str,
    event_data: dict[str, Any] | None = None,
) -> str:
    """Add an outgoing event to the caller's transaction; the body is fixed now, so every
    retry sends the same bytes (and the receiver's dedupe sees one event).

    The bytes suit the receiving role: HUMAN's Python oracles re-serialise the parsed body
    ASCII-escaped and parse it with `ast.literal_eval` (no true/false/null), its TypeScript
    job launcher refuses unknown keys such as `timestamp`."""
    python_peer = target_role in PYTHON_PEERS
    if python_peer and event_data is not None and _has_json_literals(event_data):
        raise ValueError(f"{event_type} for the {target_role}: true/false/null cannot be sent")
    envelope = Envelope(
        escrow_address=escrow_address,
        chain_id=chain_id,
        event_type=event_type,
        event_data=event_data,
        timestamp=None if target_role == "launcher" else now_iso(),
    )
    row_id = str(uuid.uuid4())
    now = utcnow()
    session.execute(
        insert(tables.outbox).values(
            id=row_id,
            chain_id=chain_id,
            escrow_address=envelope.escrow_address,
            event_type=event_type,
            target_address=target_address,
            body=envelope.to_bytes(ascii_only=python_peer).decode(),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.info.setdefault(OUTBOX_NEW, []).append(row_id)
    return row_id


def _has_json_literals(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, dict):
        return any(_has_json_literals(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_json_literals(v) for v in value)
    return False


def dispatch_after_commit(factory: sessionmaker[Session], dispatch: Callable[[str], None]) -> None:
    """Hand new outbox ids to `dispatch` (a Celery `.delay`) once their transaction commits."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        for row_id in session.info.pop(OUTBOX_NEW, []):
            try:
                dispatch(row_id)
            except Exception:  # the sweeper picks it up; the row is safe in the database
                log.exception("could not dispatch outbox %s; the sweep will retry it", row_id)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(OUTBOX_NEW, None)


@dataclass(frozen=True)
class Backoff:
    base_s: float
    max_s: float
    max_attempts: int

    def delay(self, attempts: int) -> float:
        """Delay after the `attempts`-th failure: base, 2 base, 4 base, ... capped."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Delivery:
    status: str  # delivered | retry | dead | skipped
    retry_in_s: float = 0.0
    error: str | None = None


def deliver(
    factory: sessionmaker[Session],
    tables: EventTables,
    row_id: str,
    *,
    private_key: str,
    resolve_url: Callable[[str], tuple[str, str | None]],
    backoff: Backoff,
    client: httpx.Client,
    lease_s: float = 60,
) -> Delivery:
    """One delivery attempt. A lease (not a long transaction) keeps two workers off one row."""
    out = tables.outbox
    now = utcnow()
    with transaction(factory) as session:
        claimed = session.execute(  # type: ignore[attr-defined]
            update(out)
            .where(
                and_(
                    out.c.id == row_id,
                    out.c.status == PENDING,
                    out.c.next_attempt_at <= now,
                    or_(out.c.lease_until.is_(None), out.c.lease_until < now),
                )
            )
            .values(lease_until=now + timedelta(seconds=lease_s))
        ).rowcount
        if not claimed:
            return Delivery("skipped")
        row = session.execute(select(out).where(out.c.id == row_id)).one()
    body = row.body.encode()
    error: str | None = None
    permanent = False
    try:
        url, pin = resolve_url(row.target_address)
        headers = {SIGNATURE_HEADER: sign(body, private_key), "content-type": "application/json"}
        if pin is None:
            reply = client.post(url, content=body, headers=headers)
        else:  # a published URL: connect to the address the URL policy checked
            with pinned_client(url, pin, timeout=client.timeout.read or 10.0) as pinned:
                reply = pinned.post(url, content=body, headers=headers)
        if not reply.is_success:
            error = f"{url} answered {reply.status_code}: {reply.text[:200]}"
    except UnsafeUrlError as exc:  # the receiver's URL is refused: retrying changes nothing
        error, permanent = f"refused by the URL policy: {exc}", True
    except Exception as exc:  # network errors, unresolvable receivers: all count as a failure
        error = f"{type(exc).__name__}: {exc}"
    attempts = row.attempts + 1
    with transaction(factory) as session:
        if error is None:
            session.execute(
                update(out)
                .where(out.c.id == row_id)
                .values(
                    status=DELIVERED,
                    attempts=attempts,
                    delivered_at=utcnow(),
                    lease_until=None,
                    last_error=None,
                )
            )
            return Delivery(DELIVERED)
        if attempts >= backoff.max_attempts or permanent:
            session.execute(
                update(out)
                .where(out.c.id == row_id)
                .values(
                    status=DEAD,
                    attempts=attempts,
                    last_error=error,
                    lease_until=None,
                )
            )
            log.error(
                "outbox %s (%s for %s) is dead after %d attempts: %s",
                row_id,
                row.event_type,
                row.escrow_address,
                attempts,
                error,
            )
            return Delivery(DEAD, error=error)
        delay = backoff.delay(attempts)
        session.execute(
            update(out)
            .where(out.c.id == row_id)
            .values(
                attempts=attempts,
                last_error=error,
                lease_until=None,
                next_attempt_at=utcnow() + timedelta(seconds=delay),
            )
        )
        log.warning(
            "outbox %s attempt %d failed (%s); next in %.1f s", row_id, attempts, error, delay
        )
        return Delivery("retry", retry_in_s=delay, error=error)


def due(session: Session, tables: EventTables, limit: int = 100) -> list[str]:
    """Pending deliveries whose time has come (for the periodic sweep)."""
    out = tables.outbox
    now = utcnow()
    rows = session.execute(
        select(out.c.id)
        .where(
            and_(
                out.c.status == PENDING,
                out.c.next_attempt_at <= now,
                or_(out.c.lease_until.is_(None), out.c.lease_until < now),
            )
        )
        .order_by(out.c.next_attempt_at)
        .limit(limit)
    ).scalars()
    return [str(r) for r in rows]


def outbox_rows(
    session: Session, tables: EventTables, status: str | None = None
) -> list[dict[str, Any]]:
    out = tables.outbox
    query = select(out).order_by(out.c.created_at)
    if status:
        query = query.where(out.c.status == status)
    return [dict(r._mapping) for r in session.execute(query)]
