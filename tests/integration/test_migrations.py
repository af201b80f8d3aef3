"""Each oracle's Alembic history builds exactly the schema its models describe."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from oracle_core.migrations import downgrade, upgrade

pytestmark = pytest.mark.integration
ORACLES = ["exchange_oracle", "recording_oracle"]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, pg_url: str, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oracle.db'}"
    return pg_url


@pytest.mark.parametrize("oracle", ORACLES)
def test_migrations_match_the_models_and_go_both_ways(oracle: str, database: str) -> None:
    metadata = importlib.import_module(f"{oracle}.db").metadata
    engine = create_engine(database)
    try:
        upgrade(oracle, database)
        assert {"inbox", "outbox", "alembic_version"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
        downgrade(oracle, database)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_the_database_refuses_a_second_active_assignment(database: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from exchange_oracle.db import assignments, escrows, jobs

    upgrade("exchange_oracle", database)
    engine = create_engine(database)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            escrow = conn.execute(
                insert(escrows).values(
                    chain_id=1338,
                    escrow_address="0x" + "1" * 40,
                    status="ready",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            job_ids = [
                conn.execute(
                    insert(jobs).values(
                        escrow_id=escrow,
                        clip_index=i,
                        status="free",
                        duration_ms=1000,
                        clip_key="k",
                        time_map={},
                        pre_segments=[],
                        honeypots=[],
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
                for i in range(2)
            ]

        def assign(ident: str, job: int, wallet: str, status: str = "active") -> None:
            with engine.begin() as conn:
                conn.execute(
                    insert(assignments).values(
                        id=ident,
                        job_id=job,
                        escrow_id=escrow,
                        wallet_address=wallet,
                        status=status,
                        iteration=1,
                        created_at=now,
                        expires_at=now,
                    )
                )

        assign("a1", job_ids[0], "0xA")
        with pytest.raises(IntegrityError):
            assign("a2", job_ids[1], "0xA")  # same worker, same escrow, both active
        with pytest.raises(IntegrityError):
            assign("a3", job_ids[0], "0xB")  # same job, both active
        assign("a4", job_ids[0], "0xA", status="expired")  # finished ones do not count
        assign("a5", job_ids[1], "0xB")
    finally:
        downgrade("exchange_oracle", database)
        engine.dispose()
