"""kv: the named key-value stores a module may read and write.

Manifest section: `[capabilities] kv = ["cache"]`. A declared store is readable and
writable (`kv.read`, `kv.write`); nothing is handed over at start. The stores themselves
are one SQLite file of the state directory (runtime/core/kv.py).
"""

from __future__ import annotations

import re

from runtime.core.capabilities.decision import Decision, named
from runtime.core.errors import ManifestError
from runtime.core.kv import KvStore

FIELD = "kv"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def check(names: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, name in enumerate(names):
        if not NAME_RE.fullmatch(name):
            raise ManifestError(file, f"capabilities.{FIELD}[{i}]", f"{name!r} is not a valid store name", "use letters, digits, _, . and -")


class KvCapability:
    """The declared stores (config) and the store file (runtime state)."""

    def __init__(self, declared: list[str], store: KvStore | None):
        self.declared = list(declared)
        self.store = store

    def decide(self, name: str, write: bool) -> Decision:
        return named("kv.write" if write else "kv.read", FIELD, name, self.declared)

    def get(self, name: str, key: str) -> bytes | None:
        return self.store.get(name, key)

    def put(self, name: str, key: str, value: bytes) -> None:
        self.store.put(name, key, value)
