"""A local, durable queue for timeline writes the bot's store could not take.

An incident bot is needed most while things fail, sometimes the very database it sits on. When the
store does not answer, a captured message is written here instead (a SQLite file on local disk,
committed before Slack is answered), and written to the store, oldest first, once it answers again.
Each write carries its Slack event key, so replaying one the store already has changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class Spool:
    """The file is created at the first write that needs it, and what an earlier run left is kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._count = 0
        if path.exists():
            self._count = self._open().execute("SELECT count(*) FROM spooled").fetchone()[0]

    def __len__(self) -> int:
        return self._count

    def append(self, write: dict[str, Any]) -> None:
        with self._lock:
            self._open().execute("INSERT INTO spooled (write) VALUES (?)", (json.dumps(write),))
            self._count += 1

    def oldest(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            if self._db is None:
                return None
            row = self._db.execute("SELECT id, write FROM spooled ORDER BY id LIMIT 1").fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None

    def remove(self, spooled_id: int) -> None:
        with self._lock:
            if self._db is not None and self._db.execute("DELETE FROM spooled WHERE id = ?", (spooled_id,)).rowcount:
                self._count -= 1

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # spooled means on disk: Slack is told it was taken
            self._db.execute("CREATE TABLE IF NOT EXISTS spooled (id INTEGER PRIMARY KEY AUTOINCREMENT, write TEXT NOT NULL)")
        return self._db
