"""Everything the recording oracle's routes and tasks need, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.chain import Chain, shared_lock_factory
from oracle_core.db import make_engine, make_sessionmaker
from oracle_core.storage import ObjectStorage, UrlPolicy, storage_from_settings
from recording_oracle.config import RecordingSettings


@dataclass
class RecordingContext:
    settings: RecordingSettings = field(default_factory=RecordingSettings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def chain(self) -> Chain:
        s = self.settings
        return Chain(
            s.rpc_url,
            s.private_key.get_secret_value() if s.private_key else None,
            lock_factory=shared_lock_factory(s.celery_broker_url),
        )

    @cached_property
    def storage(self) -> ObjectStorage:
        return storage_from_settings(self.settings)

    @property
    def policy(self) -> UrlPolicy:
        return self.settings.url_policy()
