"""A small in-process cache for answers that may be a moment old (the job listing)."""

from __future__ import annotations

import threading
import time
from typing import Any

STALE_S = 5.0  # while one request refreshes an expired listing, others get the old one


class TtlCache:
    """Answers kept for `ttl_s` seconds by key; 0 turns caching off."""

    def __init__(self, ttl_s: float, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: dict[Any, tuple[float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def peek(self, key: Any, stale_s: float = 0.0) -> tuple[Any, bool]:
        """(value or None, whether it is fresh); an entry up to `stale_s` past its time is
        still returned, marked stale, so one caller can refresh it while others use it."""
        with self._lock:
            hit = self._items.get(key)
        if hit is None:
            return None, False
        now = time.monotonic()
        if hit[0] > now:
            return hit[1], True
        return (hit[1], False) if hit[0] + stale_s > now else (None, False)

    def claim_refresh(self, key: Any) -> bool:
        """True for the one caller that should refresh a stale entry."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def done_refresh(self, key: Any) -> None:
        with self._lock:
            self._refreshing.discard(key)

    def put(self, key: Any, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[key] = (now + self.ttl_s, value)
