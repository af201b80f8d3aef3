"""The CVAT test double's state: JSON documents per kind in one SQLite file, one writer lock.
Ids come from sequences that never go back, as CVAT's do: a deleted object's id is never
given again (an old request id must never name a new task)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KINDS = (
    "users",
    "projects",
    "labels",
    "tasks",
    "jobs",
    "annotations",
    "webhooks",
    "deliveries",
    "requests",
)


class Store:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.RLock()
        with self._lock:
            for kind in KINDS:
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {kind} "
                    "(id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)"
                )
            self._db.execute("CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, data BLOB)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER)"
            )
            self._db.commit()

    @contextmanager
    def write(self) -> Iterator[Store]:
        with self._lock:
            try:
                yield self
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def next_id(self, name: str) -> int:
        """The next number of a global sequence (attribute specs, intervals, shapes, data)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO sequences (name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1",
                (name,),
            )
            row = self._db.execute("SELECT value FROM sequences WHERE name = ?", (name,)).fetchone()
            return int(row[0])

    def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cur = self._db.execute(f"INSERT INTO {kind} (doc) VALUES ('{{}}')")
            doc = {**doc, "id": cur.lastrowid}
            self._db.execute(
                f"UPDATE {kind} SET doc = ? WHERE id = ?", (json.dumps(doc), doc["id"])
            )
            return doc

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO {kind} (id, doc) VALUES (?, ?)",
                (doc["id"], json.dumps(doc)),
            )
            return doc

    def get(self, kind: str, ident: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT doc FROM {kind} WHERE id = ?", (ident,)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(f"SELECT doc FROM {kind} ORDER BY id").fetchall()
        docs = [json.loads(r[0]) for r in rows]
        return [d for d in docs if all(d.get(k) == v for k, v in match.items())]

    def delete(self, kind: str, ident: int) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {kind} WHERE id = ?", (ident,))

    def put_blob(self, key: str, data: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO blobs (key, data) VALUES (?, ?)", (key, data))

    def blob(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_blobs(self, prefix: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE key LIKE ?", (prefix + "%",))
