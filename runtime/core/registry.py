"""The module registry: what every backend of it keeps (Registrations), and the embedded one.

Every registered version is kept (audits diff versions); the newest registration of
a name is the active one. The artifact's sha256 is recorded here at registration
and checked again whenever a sandbox loads the module. The embedded registry is a SQLite
file in the state directory; in cluster mode it is JetStream KV (runtime/cluster/registry.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec

from runtime.core.errors import IntegrityError, ModuleNotFound
from runtime.core.manifest import LoadedManifest, Manifest, sha256_file
from runtime.core.sqlite_file import open_shared

RECHECK_S = 0.25

SCHEMA = """
CREATE TABLE IF NOT EXISTS modules (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    manifest_file TEXT NOT NULL,
    manifest_json BLOB NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    registered_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
"""


@dataclass(frozen=True)
class Registration:
    loaded: LoadedManifest
    artifact_sha256: str
    registered_at: float

    @property
    def name(self) -> str:
        return self.loaded.manifest.name

    @property
    def manifest(self) -> Manifest:
        return self.loaded.manifest

    def summary(self) -> dict:
        m = self.manifest
        return {
            "name": m.name,
            "version": m.version,
            "kind": m.kind,
            "methods": sorted(m.methods),
            "manifest": self.loaded.file,
            "artifact_sha256": self.artifact_sha256,
            "registered_at": self.registered_at,
        }

    def verify_artifact(self) -> None:
        """Refuse to load an artifact that changed since registration."""
        path = self.loaded.artifact_path()
        if path is None:
            return
        if not path.is_file():
            raise ModuleNotFound(f"artifact of {self.name} is gone: {path}", fix=f"rebuild it, then gati module register {self.loaded.base_dir}")
        actual = sha256_file(path)
        if actual != self.artifact_sha256:
            raise IntegrityError(
                f"artifact of {self.name} changed since registration (sha256 {actual[:12]}, registered {self.artifact_sha256[:12]})",
                fix=f"if the change is intended, run: gati module register {self.loaded.base_dir}",
                module=self.name,
            )


class Registrations(Protocol):
    """What the module layer, the reports and the CLI use of a registry, whatever holds it."""

    def add(self, loaded: LoadedManifest, digest: str) -> Registration: ...
    def get(self, name: str, version: str | None = None) -> Registration: ...
    def versions(self, name: str) -> list[Registration]: ...
    def names(self) -> list[str]: ...
    def all(self) -> list[Registration]: ...
    def remove(self, name: str) -> int: ...
    def close(self) -> None: ...


class Registry:
    """The embedded registry: one SQLite file."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = open_shared(path, timeout_s=5)
        self._db.executescript(SCHEMA)
        # Calls look modules up on every call: keep decoded registrations until the file changes
        # (data_version moves when another connection, e.g. a CLI, writes; our own writes clear it).
        # Another process's registration is seen within RECHECK_S: asking SQLite on every call
        # costs more than the call's own bookkeeping.
        self._cache: dict[str, Registration] = {}
        self._version = None
        self._checked_at = 0.0

    def add(self, loaded: LoadedManifest, digest: str) -> Registration:
        """Record a validated manifest with its artifact's digest (runtime.modules.register_module computes it)."""
        now, manifest_json = time.time(), msgspec.json.encode(loaded)
        # Registering what is already the newest registration changes nothing: `gati serve --workers N`
        # registers the project's modules in every worker, and a new registered_at would make the
        # workers that already serve restart their sandboxes. IMMEDIATE: the check and the write are
        # one step for every process sharing the file.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT manifest_json, artifact_sha256, registered_at FROM modules WHERE name = ? ORDER BY registered_at DESC LIMIT 1",
                (loaded.name,),
            ).fetchone()
            if row is not None and bytes(row[0]) == manifest_json and row[1] == digest:
                self._db.execute("COMMIT")
                return Registration(loaded, digest, row[2])
            self._db.execute(
                "INSERT OR REPLACE INTO modules VALUES (?, ?, ?, ?, ?, ?, ?)",
                (loaded.name, loaded.manifest.version, loaded.manifest.kind, loaded.file, manifest_json, digest, now),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._cache.clear()
        return Registration(loaded, digest, now)

    def get(self, name: str, version: str | None = None) -> Registration:
        if version is None:
            now = time.monotonic()
            if now - self._checked_at > RECHECK_S:
                self._checked_at = now
                data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
                if data_version != self._version:
                    self._cache.clear()
                    self._version = data_version
            cached = self._cache.get(name)
            if cached is None:
                cached = self._cache[name] = self._lookup(name, None)
            return cached
        return self._lookup(name, version)

    def _lookup(self, name: str, version: str | None) -> Registration:
        query = "SELECT manifest_json, artifact_sha256, registered_at FROM modules WHERE name = ?"
        args: tuple = (name,)
        if version:
            query, args = query + " AND version = ?", (name, version)
        row = self._db.execute(query + " ORDER BY registered_at DESC LIMIT 1", args).fetchone()
        if row is None:
            missing = ModuleNotFound(
                f"no module named {name!r}" + (f" at version {version}" if version else ""),
                fix="register it with: gati module register PATH",
                module=name,
            )
            missing.note = f"registered: {', '.join(self.names()) or 'none'}"
            raise missing
        return Registration(msgspec.json.decode(row[0], type=LoadedManifest), row[1], row[2])

    def versions(self, name: str) -> list[Registration]:
        rows = self._db.execute(
            "SELECT manifest_json, artifact_sha256, registered_at FROM modules WHERE name = ? ORDER BY registered_at", (name,)
        ).fetchall()
        return [Registration(msgspec.json.decode(r[0], type=LoadedManifest), r[1], r[2]) for r in rows]

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM modules ORDER BY name")]

    def all(self) -> list[Registration]:
        return [self.get(n) for n in self.names()]

    def remove(self, name: str) -> int:
        self.get(name)  # raises ModuleNotFound with the list of known names
        self._cache.clear()
        return self._db.execute("DELETE FROM modules WHERE name = ?", (name,)).rowcount

    def close(self) -> None:
        self._db.close()

