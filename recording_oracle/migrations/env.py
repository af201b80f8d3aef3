"""Alembic environment of the recording oracle database."""

from oracle_core.migrations import run_env
from recording_oracle.db import metadata

run_env(metadata)
