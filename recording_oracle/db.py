"""The recording oracle database: its metadata (Alembic migrates it; see migrations/)."""

from __future__ import annotations

from sqlalchemy import MetaData

from oracle_core.events import EventTables
from oracle_core.migrations import NAMING

metadata = MetaData(naming_convention=NAMING)
events = EventTables(metadata)
