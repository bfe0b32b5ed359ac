"""The state directory: registry, audit log, kv stores and the compile cache.

It is `.gati/` inside the project, or `$GATI_HOME` when set.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from runtime.core.audit_log import AuditLog
from runtime.core.kv import KvStore
from runtime.core.registry import Registry


class StateDir:
    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, project_dir: str | Path = ".") -> "StateDir":
        return cls(cls.locate(project_dir))

    @staticmethod
    def locate(project_dir: str | Path = ".") -> Path:
        """Where open() keeps the state, without making it."""
        return Path(os.environ.get("GATI_HOME") or Path(project_dir) / ".gati")

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.path / "registry.db")

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.audit_path)

    @property
    def audit_path(self) -> Path:
        return self.path / "audit.log"

    @cached_property
    def kv(self) -> KvStore:
        return KvStore(self.path / "kv.db")

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def close(self) -> None:
        for name in ("registry", "audit", "kv"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
