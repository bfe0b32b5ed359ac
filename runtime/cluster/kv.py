"""The kv stores of every instance in one JetStream KV bucket (`gati_<namespace>_kv`).

The same KvStore as the embedded SQLite one (runtime/core/kv.py), with the same atomicity:
a write that depends on what was read (compare-and-set, increment, a delete at a revision)
is published expecting the key's last revision, and JetStream refuses it if another write
came first, on any instance. Increment retries that until it lands (it is one step for the
caller); compare-and-set and delete report the conflict. Store `s`, key `k` is bucket key
`token(s).token(k)` (jetstream.token). Keys are limited to MAX_KEY_BYTES here (a subject
must fit in one protocol line) and values by the server's max_payload.
"""

from __future__ import annotations

from typing import Any

from runtime.cluster.connection import Cluster
from runtime.cluster.jetstream import Bucket, Last, token
from runtime.core.kv import MAX_VALUE_BYTES, Entry, KvConflict, KvInvalid, add_to_counter, check_revision, check_value

MAX_KEY_BYTES = 1024
HEADROOM = 4096  # of the server's max_payload: what a message's headers and subject may take


class NatsKvStore:
    local = False  # every operation waits on the network: WASM calls hand it to the event loop

    def __init__(self, cluster: Cluster, bucket: Bucket):
        self.cluster = cluster
        self.bucket = bucket

    @classmethod
    def open(cls, cluster: Cluster) -> "NatsKvStore":
        bucket = cluster.run(Bucket.open(cluster.js, cluster.bucket("kv"), description="gati kv stores"))
        return cls(cluster, bucket)

    def _key(self, store: str, key: str) -> str:
        if len(key.encode()) > MAX_KEY_BYTES:
            raise KvInvalid(f"kv key of {len(key.encode())} bytes is over the {MAX_KEY_BYTES}-byte limit of cluster mode", fix="use a shorter key (a digest of a long one)")
        return f"{token(store)}.{token(key)}"

    def _value(self, value: bytes) -> bytes:
        limit = min(MAX_VALUE_BYTES, (self.cluster.nc.max_payload or MAX_VALUE_BYTES) - HEADROOM)
        if len(value) > limit:
            raise KvInvalid(
                f"kv value of {len(value)} bytes is over the {limit}-byte limit of cluster mode",
                fix="store less per key, or raise max_payload of the NATS server (e.g. max_payload: 2MB)",
            )
        return check_value(value)

    async def _run(self, coro) -> Any:
        return await self.cluster.call(coro)

    async def get(self, store: str, key: str) -> bytes | None:
        return (await self._run(self.bucket.last(self._key(store, key)))).value

    async def entry(self, store: str, key: str) -> Entry | None:
        last: Last = await self._run(self.bucket.last(self._key(store, key)))
        return None if last.value is None else Entry(last.value, last.seq)

    async def put(self, store: str, key: str, value: bytes) -> int:
        return await self._run(self.bucket.publish(self._key(store, key), self._value(value), None))

    async def cas(self, store: str, key: str, value: bytes, revision: int) -> int:
        k, value = self._key(store, key), self._value(value)
        check_revision(revision)

        async def cas() -> int:
            while True:
                last = await self.bucket.last(k)
                # A deleted key's tombstone has a sequence no entry ever had: expecting it would
                # "update" an absent key. Only revision 0 creates, as in every store.
                if last.revision != revision:
                    raise KvConflict(store, key, revision, last.revision)
                written = await self.bucket.publish(k, value, last.seq)
                if written is not None:
                    return written
                if revision:  # the entry moved on since we read it
                    raise KvConflict(store, key, revision, (await self.bucket.last(k)).revision)
                # creating: a write or delete came between; read again (a delete leaves it absent)

        return await self._run(cas())

    async def increment(self, store: str, key: str, delta: int) -> int:
        k = self._key(store, key)

        async def increment() -> int:
            while True:  # bounded by the connection's timeout
                last = await self.bucket.last(k)
                value = add_to_counter(store, key, last.value, delta)
                if await self.bucket.publish(k, str(value).encode(), last.seq) is not None:
                    return value

        return await self._run(increment())

    async def delete(self, store: str, key: str, revision: int = 0) -> bool:
        k = self._key(store, key)
        check_revision(revision)

        async def delete() -> bool:
            while True:
                last = await self.bucket.last(k)
                if revision and last.revision != revision:
                    raise KvConflict(store, key, revision, last.revision)
                if last.value is None:
                    return False
                if await self.bucket.publish(k, b"", last.seq, delete=True) is not None:
                    return True
                if revision:
                    raise KvConflict(store, key, revision, (await self.bucket.last(k)).revision)

        return await self._run(delete())

    def close(self) -> None:
        pass  # the connection is the ClusterState's to close
