"""Alembic environment of the exchange oracle database."""

from exchange_oracle.db import metadata
from oracle_core.migrations import run_env

run_env(metadata)
