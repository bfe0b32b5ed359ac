"""Key-value stores for modules: one SQLite file, many named stores.

Which stores a module may touch is the `kv` capability; this file only stores.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

MAX_VALUE_BYTES = 1 << 20


class KvStore:
    def __init__(self, path: str | Path):
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (store TEXT, key TEXT, value BLOB, PRIMARY KEY (store, key))")
        self._lock = threading.Lock()  # sandboxes call from worker threads

    def get(self, store: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE store = ? AND key = ?", (store, key)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, store: str, key: str, value: bytes) -> None:
        if len(value) > MAX_VALUE_BYTES:
            raise ValueError(f"kv value of {len(value)} bytes is over the {MAX_VALUE_BYTES}-byte limit; store less per key")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (store, key, value))

    def close(self) -> None:
        self._db.close()
