"""An oracle's webhook intake on a real socket over PostgreSQL, for tests that need a peer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData, func, select
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.api import install_error_handlers, webhook_router
from oracle_core.chain import Chain
from oracle_core.db import make_engine, make_sessionmaker
from oracle_core.events import EventTables
from tests.integration.conftest import serve


@dataclass
class Inbox:
    url: str
    tables: EventTables
    sessions: sessionmaker[Session]
    processed: list[str] = field(default_factory=list)

    def count(self) -> int:
        with self.sessions() as s:
            return int(s.execute(select(func.count()).select_from(self.tables.inbox)).scalar_one())

    def rows(self) -> list[Any]:
        with self.sessions() as s:
            return list(s.execute(select(self.tables.inbox)).all())


@contextmanager
def event_db(db_url: str) -> Iterator[tuple[EventTables, sessionmaker[Session]]]:
    """Fresh inbox and outbox tables for one test, dropped afterwards."""
    metadata = MetaData()
    tables = EventTables(metadata)
    engine = make_engine(db_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        yield tables, make_sessionmaker(engine)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


@contextmanager
def inbox_app(
    chain_url: str, pg_url: str, accepted: Mapping[str, tuple[str, ...]]
) -> Iterator[Inbox]:
    with (
        event_db(pg_url) as (tables, sessions),
        inbox_app_on(chain_url, tables, sessions, accepted) as inbox,
    ):
        yield inbox


@contextmanager
def inbox_app_on(
    chain_url: str,
    tables: EventTables,
    sessions: sessionmaker[Session],
    accepted: Mapping[str, tuple[str, ...]],
) -> Iterator[Inbox]:
    processed: list[str] = []
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(
        webhook_router(
            accepted=accepted,
            chain=lambda: Chain(chain_url),
            sessions=lambda: sessions,
            tables=tables,
            on_new=processed.append,
            admin_token=lambda: None,
        )
    )
    with serve(app) as url:
        yield Inbox(url, tables, sessions, processed)
