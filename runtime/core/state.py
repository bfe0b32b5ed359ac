"""The state directory: registry, audit log, kv stores and the compile cache.

It is `.gati/` inside the project, or `$GATI_HOME` when set. In cluster mode the registry
and the kv stores are shared through NATS instead (runtime/cluster/state.py overrides them);
the audit log and the compile cache stay here, one per instance.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Callable

from runtime.core.audit_key import AuditKey
from runtime.core.audit_log import AuditLog
from runtime.core.kv import KvStore, SqliteKvStore
from runtime.core.registry import Registrations, Registry

KeySource = Callable[[], AuditKey | None]


class StateDir:
    def __init__(self, path: str | Path, audit_key: AuditKey | KeySource | None = None):
        """audit_key: the project's configured key for the audit log, or a function giving it, called
        only when the log is used (a command that never touches the log never needs the secret);
        None: a key file in this directory."""
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self._audit_key = audit_key

    @classmethod
    def open(cls, project_dir: str | Path = ".", audit_key: AuditKey | KeySource | None = None) -> StateDir:
        return cls(cls.locate(project_dir), audit_key)

    @staticmethod
    def locate(project_dir: str | Path = ".") -> Path:
        """Where open() keeps the state, without making it."""
        return Path(os.environ.get("GATI_HOME") or Path(project_dir) / ".gati")

    @cached_property
    def audit_key(self) -> AuditKey | None:
        return self._audit_key() if callable(self._audit_key) else self._audit_key

    @cached_property
    def registry(self) -> Registrations:
        return Registry(self.path / "registry.db")

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.audit_path, self.audit_key)

    @property
    def audit_path(self) -> Path:
        return self.path / "audit.log"

    @cached_property
    def kv(self) -> KvStore:
        return SqliteKvStore(self.path / "kv.db")

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def health(self) -> dict[str, str]:
        """What readiness reports of the shared state beside the modules ({} when it is all local)."""
        return {}

    def close(self) -> None:
        for name in ("registry", "audit", "kv"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
