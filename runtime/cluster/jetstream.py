"""A JetStream KV bucket as the cluster's stores use it: two steps, everything else built on them.

    last(key)                       the key's last message: its value (None when absent or
                                    deleted) and its stream sequence, tombstones included
    publish(key, value, expect)     write only if the key's last sequence is `expect` (0: never
                                    written); None when it was not (someone wrote first)

and, for a replica that follows the bucket, next(seq, pattern): the first message at or after
stream sequence `seq` whose key matches `pattern` (wildcards allowed). The bucket keeps one
message per key, so every message past the last one a replica saw is a key that changed since,
with its current value: reading them in turn costs one request per change, one when none.

A key's revision is the stream sequence of its last write: it only grows and is never given
to another write, in any key of the bucket. JetStream checks `expect` against the key's last
message as it stores the write, which is what makes compare-and-set, increment and token
buckets atomic across every instance. Keys are encoded (base64url, with a letter in front so
that an empty one is a token too), so any text is a key and no key can mean a wildcard.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType

OP_HEADER, DELETE, PURGE = "KV-Operation", "DEL", "PURGE"
EXPECT_HEADER = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's error codes for a failed `expect`


def token(text: str) -> str:
    """One subject token for any text (NATS subjects allow neither '.', '*', '>' nor spaces in one)."""
    return "k" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def untoken(tok: str) -> str:
    raw = tok[1:]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


@dataclass(frozen=True)
class Last:
    value: bytes | None  # None: absent (never written, deleted or purged)
    seq: int  # the stream sequence of the key's last message (a tombstone's too); 0: never written

    @property
    def revision(self) -> int:
        """The live entry's revision; 0 when absent."""
        return self.seq if self.value is not None else 0


class Bucket:
    def __init__(self, js: Any, name: str):
        self.js = js
        self.name = name
        self.stream = f"KV_{name}"
        self.prefix = f"$KV.{name}."

    @classmethod
    async def open(cls, js: Any, name: str, *, ttl_s: float | None = None, description: str = "") -> "Bucket":
        """The bucket, made when missing: one value per key (history 1), on disk, read directly."""
        try:
            await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            config = KeyValueConfig(bucket=name, history=1, storage=StorageType.FILE, direct=True, ttl=ttl_s, description=description)
            await js.create_key_value(config)
        return cls(js, name)

    async def last(self, key: str) -> Last:
        try:
            msg = await self.js.get_msg(self.stream, subject=self.prefix + key, direct=True)
        except nats.js.errors.NotFoundError:
            return Last(None, 0)
        if msg.headers and msg.headers.get(OP_HEADER) in (DELETE, PURGE):
            return Last(None, msg.seq)
        return Last(msg.data or b"", msg.seq)

    async def publish(self, key: str, value: bytes, expect: int | None, *, delete: bool = False) -> int | None:
        """The new revision, or None when the key's last sequence was not `expect` (None: write unconditionally)."""
        headers = {}
        if expect is not None:
            headers[EXPECT_HEADER] = str(expect)
        if delete:
            headers[OP_HEADER] = DELETE
        try:
            ack = await self.js.publish(self.prefix + key, value, headers=headers or None)
        except nats.js.errors.APIError as err:
            if err.err_code in WRONG_LAST_SEQUENCE:
                return None
            raise
        return ack.seq

    async def next(self, seq: int, pattern: str) -> tuple[str, Last] | None:
        """The first message at or after stream sequence `seq` whose key matches `pattern`: (key, Last); None when none."""
        try:
            msg = await self.js.get_msg(self.stream, seq=seq, subject=self.prefix + pattern, direct=True, next=True)
        except nats.js.errors.NotFoundError:
            return None
        key = msg.subject[len(self.prefix):]
        if msg.headers and msg.headers.get(OP_HEADER) in (DELETE, PURGE):
            return key, Last(None, msg.seq)
        return key, Last(msg.data or b"", msg.seq)

    async def keys(self) -> list[str]:
        """Every live key (the registry's few; never the kv stores')."""
        kv = await self.js.key_value(self.name)
        try:
            return await kv.keys()
        except nats.js.errors.NoKeysError:
            return []

    async def last_sequence(self) -> int:
        """The bucket's last stream sequence: it moves on every write, so an unchanged one means nothing changed."""
        info = await self.js.stream_info(self.stream)
        return info.state.last_seq
