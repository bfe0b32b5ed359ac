"""The snapshot store: replayable snapshots of requests in <state dir>/snapshots.db (SQLite).

    store.add(snapshot)          queued; written in one transaction at the loop's next turn
    store.get(request_id)        the snapshot as stored (a dict), or None
    store.recent(limit)          summaries, newest first

Retention: past [audit] snapshot_keep snapshots or snapshot_max_bytes bytes of them, the oldest
are deleted when a batch is written, so the file stays bounded whatever the traffic. A snapshot is
one JSON document (runtime.http.recorder makes it); a few columns beside it are what lists filter on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec

from runtime.core.sqlite_file import open_shared

FILE = "snapshots.db"
# Whatever a handler left in lctx that is not JSON is kept as its repr: a snapshot must never fail a request.
_encode = msgspec.json.Encoder(enc_hook=repr).encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    route TEXT NOT NULL,
    version TEXT NOT NULL,
    status INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    replay_of TEXT,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
)
"""
SUMMARY = ("id", "time", "method", "path", "route", "version", "status", "duration_ms", "replay_of")


class SnapshotStore:
    def __init__(self, path: str | Path, *, keep: int = 1000, max_bytes: int = 64 << 20):
        self.path = Path(path)
        self.keep, self.max_bytes = keep, max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the loop thread and from worker threads (playground reads): the lock serialises them.
        self._db = open_shared(self.path, timeout_s=10)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")  # a snapshot lost to a power cut is acceptable; a slow request is not
            self._db.execute(SCHEMA)
        self.path.chmod(0o600)  # request headers and bodies: the project owner's eyes only
        self._pending: list[tuple] = []

    def add(self, snapshot: dict[str, Any]) -> None:
        data = _encode(snapshot)
        with self._lock:
            self._pending.append((*(snapshot[k] for k in SUMMARY), len(data), data))
            first = len(self._pending) == 1
        if first:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            db = self._db
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO snapshots (id, time, method, path, route, version, status, duration_ms, replay_of, size, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._retain(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _retain(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM snapshots WHERE seq <= (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 1 OFFSET ?)", (self.keep,))
        (total,) = db.execute("SELECT total(size) FROM snapshots").fetchone()
        if total > self.max_bytes:
            kept = 0
            for seq, size in db.execute("SELECT seq, size FROM snapshots ORDER BY seq DESC").fetchall():
                kept += size
                if kept > self.max_bytes:
                    db.execute("DELETE FROM snapshots WHERE seq <= ?", (seq,))
                    break

    def get(self, request_id: str) -> dict[str, Any] | None:
        self.flush()
        with self._lock:
            row = self._db.execute("SELECT data FROM snapshots WHERE id = ?", (request_id,)).fetchone()
        return msgspec.json.decode(row[0]) if row else None

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        self.flush()
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(SUMMARY)} FROM snapshots ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [dict(zip(SUMMARY, row)) for row in rows]

    def stats(self) -> tuple[int, int]:
        """(snapshots, bytes) held now."""
        self.flush()
        with self._lock:
            count, total = self._db.execute("SELECT count(*), total(size) FROM snapshots").fetchone()
        return count, int(total)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()
