"""Everything the exchange oracle's routes and tasks need, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from exchange_oracle.build import BuildContext
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.cvat import Cvat
from oracle_core.chain import Chain, shared_lock_factory
from oracle_core.db import make_engine, make_sessionmaker
from oracle_core.storage import ObjectStorage, storage_from_settings


@dataclass
class ExchangeContext:
    settings: ExchangeSettings = field(default_factory=ExchangeSettings)

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

    def cvat(self) -> Cvat:
        s = self.settings
        return Cvat(
            s.cvat_url,
            s.cvat_username,
            s.cvat_password.get_secret_value(),
            s.cvat_timeout_s,
            s.cvat_retry_deadline_s,
        )

    @cached_property
    def build(self) -> BuildContext:
        return BuildContext(self.settings, self.sessions, self.chain, self.storage, self.cvat)
