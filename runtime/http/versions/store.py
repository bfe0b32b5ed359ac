"""The manifest store: what gati has served, kept in the state directory (versions.db, SQLite).

    gtypes     hash -> JSON Schema                    (the REQUEST / RESPONSE types, by content)
    manifests  fingerprint -> handler manifest        (runtime.http.handler_manifest; route, version,
                                                       file, its request and response gtype hashes)
    graphs     route -> version graph                 (VersionSet.describe(): versions, since,
                                                       default, steps with breaking verdicts and
                                                       transformer files; plus each version's fingerprint)
    versions   (route, version) -> fingerprint, known_since, first_served, last_served,
                                   state (live | drained | retired), reason, state_at

`gati serve` writes manifests and graphs at start and on every `gati dev` reload (record), and
the times clients asked for each version in batches (served); `gati versions` reads it all back
and sets states (retire / restore). A running server notices another process's write by
SQLite's data_version, polled by its background task: requests never read SQLite.
Times are unix seconds.

In cluster mode the same store is shared by every instance through NATS
(runtime/http/versions/cluster_store.py); `Store` is what both offer, all the Timescape and
`gati versions` use. runtime/http/state.py chooses one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from runtime.core.sqlite_file import open_shared

FILE = "versions.db"
LIVE, DRAINED, RETIRED = "live", "drained", "retired"

SCHEMA = """
CREATE TABLE IF NOT EXISTS gtypes (hash TEXT PRIMARY KEY, schema TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (
    fingerprint TEXT PRIMARY KEY, route TEXT NOT NULL, version TEXT NOT NULL, file TEXT NOT NULL,
    manifest TEXT NOT NULL, request_gtype TEXT, response_gtype TEXT, stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS graphs (route TEXT PRIMARY KEY, graph TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    route TEXT NOT NULL, version TEXT NOT NULL, fingerprint TEXT NOT NULL, known_since REAL NOT NULL,
    first_served REAL, last_served REAL, state TEXT NOT NULL DEFAULT 'live', reason TEXT NOT NULL DEFAULT '',
    state_at REAL, PRIMARY KEY (route, version)
);
"""


@dataclass(frozen=True)
class VersionRow:
    route: str
    version: str
    fingerprint: str
    known_since: float
    first_served: float | None
    last_served: float | None
    state: str
    reason: str
    state_at: float | None

    @property
    def seen(self) -> float:
        """When a client last asked for it, or, never asked, when it was first stored: the drain clock."""
        return self.last_served if self.last_served is not None else self.known_since

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("fingerprint", "known_since", "first_served", "last_served", "state", "reason", "state_at")}

    @classmethod
    def of(cls, data: dict[str, Any]) -> "VersionRow":
        """A row stored as JSON (the shared store): fields a later gati added are left out, not refused."""
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


def served_times(first: float | None, last: float | None, now: float) -> tuple[float, float]:
    """A version's (first_served, last_served) once a client asked for it at `now`: the earliest and
    the latest, whatever order the instances (their clocks, their batches) report in."""
    return (now if first is None else min(first, now)), (now if last is None else max(last, now))


class Store(Protocol):
    """The manifest store as the Timescape (runtime.http.versions.service) and `gati versions` use it."""

    def data_version(self) -> int: ...
    def record(self, graphs: Iterable[Mapping[str, Any]], manifests: Mapping[str, Mapping[str, Any]], now: float) -> None: ...
    def served(self, hits: Iterable[tuple[str, str]], now: float) -> None: ...
    def set_state(self, route: str, version: str, state: str, reason: str, now: float) -> bool: ...
    def set_last_served(self, route: str, version: str, when: float) -> None: ...
    def versions(self, route: str | None = None) -> dict[tuple[str, str], VersionRow]: ...
    def graph(self, route: str) -> dict[str, Any] | None: ...
    def manifest(self, fingerprint: str) -> dict[str, Any] | None: ...
    def gtype(self, digest: str) -> dict[str, Any] | None: ...
    def manifest_history(self, route: str, version: str) -> list[tuple[str, float]]: ...
    def close(self) -> None: ...


class VersionStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_shared(self.path, timeout_s=5)
        self._db.executescript(SCHEMA)
        # Manifests of single-file routes were once stored under version "" where the versions table
        # says "1" (service.graph_of): label them as it does, so their history is found.
        self._db.execute("UPDATE manifests SET version = '1' WHERE version = ''")
        self._lock = threading.Lock()

    @classmethod
    def in_state_dir(cls, state_dir: str | Path) -> VersionStore:
        return cls(Path(state_dir) / FILE)

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file (SQLite's PRAGMA data_version)."""
        with self._lock:
            return self._db.execute("PRAGMA data_version").fetchone()[0]

    # --- written by the server

    def record(self, graphs: Iterable[Mapping[str, Any]], manifests: Mapping[str, Mapping[str, Any]], now: float) -> None:
        """Store graphs (each with "route" and "versions": [{"version", "fingerprint", ...}]) and the
        manifests they name (fingerprint -> manifest dict). A version seen for the first time is
        known from now; one whose fingerprint changed keeps its times and state."""
        with self._lock, self._tx():
            for fingerprint, m in manifests.items():
                hashes = [self._gtype(m.get(role)) for role in ("request", "response")]
                self._db.execute(
                    "INSERT OR IGNORE INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (fingerprint, m["path"], m["version"] or "1", m["file"], canonical_json(m), hashes[0], hashes[1], now),  # "1": as graph_of labels a single file
                )
            for g in graphs:
                self._db.execute("INSERT OR REPLACE INTO graphs VALUES (?, ?, ?)", (g["route"], canonical_json(g), now))
                for v in g["versions"]:
                    self._db.execute(
                        "INSERT INTO versions (route, version, fingerprint, known_since) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (route, version) DO UPDATE SET fingerprint = excluded.fingerprint",
                        (g["route"], v["version"], v["fingerprint"], now),
                    )

    def served(self, hits: Iterable[tuple[str, str]], now: float) -> None:
        """Clients asked for these (route, version) pairs since the last call (a batch, off the request path)."""
        with self._lock, self._tx():
            self._db.executemany(
                "UPDATE versions SET first_served = MIN(COALESCE(first_served, ?), ?), last_served = MAX(COALESCE(last_served, ?), ?) WHERE route = ? AND version = ?",
                [(now, now, now, now, route, version) for route, version in hits],  # served_times, in SQL
            )

    def set_state(self, route: str, version: str, state: str, reason: str, now: float) -> bool:
        """Retire, drain or restore a version; False when the store does not know it.
        Restoring starts its drain clock again (as if a client had just asked for it)."""
        with self._lock, self._tx():
            cur = self._db.execute(
                "UPDATE versions SET state = ?, reason = ?, state_at = ?, last_served = CASE WHEN ? = 'live' THEN ? ELSE last_served END WHERE route = ? AND version = ?",
                (state, reason, now, state, now, route, version),
            )
            return cur.rowcount > 0

    def set_last_served(self, route: str, version: str, when: float) -> None:
        """For tests and imports: when a client last asked for it."""
        with self._lock, self._tx():
            self._db.execute("UPDATE versions SET last_served = ? WHERE route = ? AND version = ?", (when, route, version))

    # --- read back

    def versions(self, route: str | None = None) -> dict[tuple[str, str], VersionRow]:
        sql, args = "SELECT * FROM versions", ()
        if route is not None:
            sql, args = sql + " WHERE route = ?", (route,)
        with self._lock:
            return {(r[0], r[1]): VersionRow(*r) for r in self._db.execute(sql, args)}

    def graph(self, route: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT graph FROM graphs WHERE route = ?", (route,)).fetchone()
        return json.loads(row[0]) if row else None

    def manifest(self, fingerprint: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT manifest FROM manifests WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return json.loads(row[0]) if row else None

    def gtype(self, digest: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT schema FROM gtypes WHERE hash = ?", (digest,)).fetchone()
        return json.loads(row[0]) if row else None

    def manifest_history(self, route: str, version: str) -> list[tuple[str, float]]:
        """Every manifest stored for this version, oldest first: (fingerprint, stored_at)."""
        with self._lock:
            return list(self._db.execute("SELECT fingerprint, stored_at FROM manifests WHERE route = ? AND version = ? ORDER BY stored_at, fingerprint", (route, version)))

    def _gtype(self, schema: Any) -> str | None:
        if schema is None:
            return None
        digest, text = schema_digest(schema)
        self._db.execute("INSERT OR IGNORE INTO gtypes VALUES (?, ?)", (digest, text))
        return digest

    def _tx(self):
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def schema_digest(schema: Any) -> tuple[str, str]:
    """A gtype's key (the sha256 of its canonical JSON) and that JSON."""
    text = canonical_json(schema)
    return hashlib.sha256(text.encode()).hexdigest(), text


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
