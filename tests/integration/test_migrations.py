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
