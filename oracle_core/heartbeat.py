"""A running step's proof of life: an UPDATE repeated from a thread while the step works, so a
sweep can tell a step whose worker was killed (its beat stopped) from one that is only slow."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from oracle_core.db import transaction

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0


@contextmanager
def heartbeat(
    sessions: sessionmaker[Session], touch: Any, every_s: float = HEARTBEAT_S
) -> Iterator[None]:
    """Run `touch` (an UPDATE statement, or a callable returning one, for a fresh timestamp)
    every `every_s` seconds until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                with transaction(sessions) as session:
                    session.execute(touch() if callable(touch) else touch)
            except Exception as exc:  # a missed beat only makes a resume come sooner
                log.warning("heartbeat failed: %s", exc)

    thread = threading.Thread(target=beat, daemon=True, name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s + 5)
