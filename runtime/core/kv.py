"""Key-value stores for modules: the interface every backend keeps, and the embedded one (SQLite).

Which stores a module may touch is the `kv` capability; this file only stores. Every entry
carries a revision that changes on every write and is never reused for a key (a key deleted
and written again gets a new one), so a compare-and-set by revision cannot be fooled by a
value that went away and came back. Counters are entries holding a decimal integer (what
`get` reads, what any language can parse); `increment` changes one in a single step.

    get / entry          the value (entry: with its revision), None when absent
    put                  write; returns the new revision
    cas(rev)             write only if the entry is at `rev` (0: only if absent); KvConflict otherwise
    increment(delta)     add to the counter (absent counts as 0); returns the new value
    delete(rev)          remove (rev 0: whatever is there; else only at `rev`); False when absent

A backend's methods are coroutines: the NATS one (runtime/cluster/kv.py) waits on the network.
The SQLite one here never suspends (`local = True`), so a thread off the event loop (a WASM
call on its worker) drives its coroutines in place with `run_now`, as fast as plain calls.
Its writes are `BEGIN IMMEDIATE` transactions: atomic across every process sharing the file.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Coroutine, Protocol, TypeVar

from runtime.core.errors import GatiError
from runtime.core.sqlite_file import open_shared

MAX_VALUE_BYTES = 1 << 20
COUNTER_MIN, COUNTER_MAX = -(1 << 63), (1 << 63) - 1  # what every language's int64 holds
COUNTER_RE = re.compile(rb"-?[0-9]{1,19}")

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    value: bytes
    revision: int


class KvConflict(GatiError):
    """A compare-and-set or delete that found the entry at another revision (0: absent)."""

    code = "kv_conflict"
    http_status = 409

    def __init__(self, store: str, key: str, expected: int, current: int):
        if not expected:
            found = f"exists (revision {current}); revision 0 only creates"
        else:
            found = f"is at revision {current}, not {expected}" if current else f"is absent, not at revision {expected}"
        super().__init__(
            f"kv {store}/{key!r} {found}",
            fix="read the entry again (its value and revision) and retry the update from it",
            store=store,
            current_revision=current,
        )
        self.current = current


class KvInvalid(GatiError, ValueError):
    """A value a store refuses: too large, or not a counter where one is needed."""

    code = "kv_invalid"
    http_status = 400


class KvStore(Protocol):
    local: bool  # its coroutines never suspend: run_now may drive them off the event loop

    async def get(self, store: str, key: str) -> bytes | None: ...
    async def entry(self, store: str, key: str) -> Entry | None: ...
    async def put(self, store: str, key: str, value: bytes) -> int: ...
    async def cas(self, store: str, key: str, value: bytes, revision: int) -> int: ...
    async def increment(self, store: str, key: str, delta: int) -> int: ...
    async def delete(self, store: str, key: str, revision: int = 0) -> bool: ...
    def close(self) -> None: ...


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that finishes without suspending (a local store's)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("run_now: the coroutine suspended; only a local store's (KvStore.local) may be driven in place")


def check_value(value: bytes, limit: int = MAX_VALUE_BYTES) -> bytes:
    if len(value) > limit:
        raise KvInvalid(f"kv value of {len(value)} bytes is over the {limit}-byte limit", fix="store less per key")
    return value


def check_revision(revision: int) -> int:
    if not isinstance(revision, int) or not 0 <= revision <= COUNTER_MAX:
        raise KvInvalid(f"kv revision {revision!r} is not a revision", fix="pass the revision an entry was read at, or 0")
    return revision


def add_to_counter(store: str, key: str, current: bytes | None, delta: int) -> int:
    """The counter's value after adding delta; KvInvalid when the entry is not a counter or would overflow."""
    if current is None:
        value = 0
    elif COUNTER_RE.fullmatch(current):
        value = int(current)
    else:
        shown = current[:20].decode("utf-8", "replace")
        raise KvInvalid(
            f"kv {store}/{key!r} holds {shown!r}, not a decimal integer, so it cannot be incremented",
            fix="increment only keys written by increment (or holding a decimal integer), or delete it first",
        )
    value += delta
    if not COUNTER_MIN <= value <= COUNTER_MAX:
        raise KvInvalid(f"kv {store}/{key!r} would pass the 64-bit range", fix="keep counters within -2^63 .. 2^63-1")
    return value


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (store TEXT, key TEXT, value BLOB, PRIMARY KEY (store, key))",
    # each store's last revision given out: a deleted entry's revision is never handed out again
    "CREATE TABLE IF NOT EXISTS kv_revisions (store TEXT PRIMARY KEY, last INTEGER NOT NULL)",
)


class SqliteKvStore:
    """The embedded store: one SQLite file of the state directory, many named stores."""

    local = True

    def __init__(self, path: str | Path):
        # timeout: how long a write waits for another process's transaction (each one is short)
        self._db = open_shared(path, timeout_s=30)
        self._lock = threading.Lock()  # sandboxes call from worker threads
        with self._write():
            for statement in SCHEMA:  # not executescript: it would commit the transaction first
                self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(kv)")}
            if "revision" not in columns:
                # A file from before revisions: its entries start at revision 1, each store's counter there.
                self._db.execute("ALTER TABLE kv ADD COLUMN revision INTEGER NOT NULL DEFAULT 1")
                self._db.execute("INSERT OR IGNORE INTO kv_revisions SELECT DISTINCT store, 1 FROM kv")

    # one transaction holding SQLite's write lock: what every process sees as one step
    def _write(self):
        return _Immediate(self._db, self._lock)

    def _next_revision(self, store: str) -> int:
        return self._db.execute(
            "INSERT INTO kv_revisions VALUES (?, 1) ON CONFLICT(store) DO UPDATE SET last = last + 1 RETURNING last", (store,)
        ).fetchone()[0]

    def _current(self, store: str, key: str) -> tuple[bytes, int] | None:
        row = self._db.execute("SELECT value, revision FROM kv WHERE store = ? AND key = ?", (store, key)).fetchone()
        return None if row is None else (bytes(row[0]), row[1])

    def _set(self, store: str, key: str, value: bytes) -> int:
        revision = self._next_revision(store)
        self._db.execute("INSERT OR REPLACE INTO kv (store, key, value, revision) VALUES (?, ?, ?, ?)", (store, key, value, revision))
        return revision

    async def get(self, store: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE store = ? AND key = ?", (store, key)).fetchone()
        return None if row is None else bytes(row[0])

    async def entry(self, store: str, key: str) -> Entry | None:
        with self._lock:
            current = self._current(store, key)
        return None if current is None else Entry(*current)

    async def put(self, store: str, key: str, value: bytes) -> int:
        check_value(value)
        with self._write():
            return self._set(store, key, value)

    async def cas(self, store: str, key: str, value: bytes, revision: int) -> int:
        check_value(value)
        check_revision(revision)
        with self._write():
            current = self._current(store, key)
            at = current[1] if current else 0
            if at != revision:
                raise KvConflict(store, key, revision, at)
            return self._set(store, key, value)

    async def increment(self, store: str, key: str, delta: int) -> int:
        with self._write():
            current = self._current(store, key)
            value = add_to_counter(store, key, current[0] if current else None, delta)
            self._set(store, key, str(value).encode())
            return value

    async def delete(self, store: str, key: str, revision: int = 0) -> bool:
        check_revision(revision)
        with self._write():
            current = self._current(store, key)
            at = current[1] if current else 0
            if revision and at != revision:
                raise KvConflict(store, key, revision, at)
            if not at:
                return False
            self._db.execute("DELETE FROM kv WHERE store = ? AND key = ?", (store, key))
            return True

    def close(self) -> None:
        self._db.close()


class _Immediate:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error), under the connection's thread lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self.db, self.lock = db, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()
