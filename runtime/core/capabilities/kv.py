"""kv: the named key-value stores a module may read and write.

Manifest section: `[capabilities] kv = ["cache"]`. A declared store is readable and
writable (`kv.read`, `kv.write`; compare-and-set, increment and delete are writes); nothing
is handed over at start. The stores themselves are a KvStore (runtime/core/kv.py): one SQLite
file of the state directory, or JetStream KV in cluster mode (runtime/cluster/kv.py).
"""

from __future__ import annotations

import re

from runtime.core.capabilities.decision import Decision, named
from runtime.core.errors import ManifestError
from runtime.core.kv import Entry, KvStore

FIELD = "kv"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def check(names: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, name in enumerate(names):
        if not NAME_RE.fullmatch(name):
            raise ManifestError(file, f"capabilities.{FIELD}[{i}]", f"{name!r} is not a valid store name", "use letters, digits, _, . and -")


class KvCapability:
    """The declared stores (config) and the KvStore holding them (runtime state)."""

    def __init__(self, declared: list[str], store: KvStore | None):
        self.declared = list(declared)
        self.store = store

    @property
    def local(self) -> bool:
        """Its operations never wait on the network (kv.run_now may drive them off the event loop)."""
        return self.store is None or self.store.local

    def decide(self, name: str, write: bool) -> Decision:
        return named("kv.write" if write else "kv.read", FIELD, name, self.declared)

    async def get(self, name: str, key: str) -> bytes | None:
        return await self.store.get(name, key)

    async def entry(self, name: str, key: str) -> Entry | None:
        return await self.store.entry(name, key)

    async def put(self, name: str, key: str, value: bytes) -> int:
        return await self.store.put(name, key, value)

    async def cas(self, name: str, key: str, value: bytes, revision: int) -> int:
        return await self.store.cas(name, key, value, revision)

    async def increment(self, name: str, key: str, delta: int) -> int:
        return await self.store.increment(name, key, delta)

    async def delete(self, name: str, key: str, revision: int) -> bool:
        return await self.store.delete(name, key, revision)
