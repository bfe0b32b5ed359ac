"""Opening a SQLite file of the state directory, which several processes share (the workers of
`gati serve --workers N`, the CLI): WAL mode, and a wait on another process's write instead of
a failure.

SQLite's busy timeout covers reads and writes, but the switch to WAL can fail at once with
"database is locked" while another connection writes in the old journal mode: SQLite does not
wait there, since waiting could deadlock. Two workers opening a new file together hit it, and
the request that opened the file failed with a 500. The switch is retried here, within the
same timeout a write would wait.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RETRY_S = 0.005


def open_shared(path: str | Path, timeout_s: float) -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (transactions are explicit), usable from any thread
    (the caller serialises it); every wait on another process is bounded by timeout_s."""
    db = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False, isolation_level=None)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(RETRY_S)
