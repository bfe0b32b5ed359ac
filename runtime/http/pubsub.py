"""Global publish/subscribe across requests, with bounded queues and backpressure.

    sub = await gctx.subscribe("orders.*")          # NATS-style topics: `*` one token, `>` the rest
    await gctx.publish("orders.created", {"id": 7})  # JSON values; each subscriber gets its own copy
    async for message in sub:                        # message.topic, message.data
        ...
    await sub.close()

Backends (gati.toml [pubsub] backend):
- memory (default): one process. Each subscription has a bounded queue (queue_size); a
  publish waits while a subscriber's queue is full and, past publish_timeout_ms, fails with
  Backpressure (503): a slow consumer slows its producers instead of growing memory.
- nats (runtime.http.pubsub_nats): several instances through a NATS server. Core NATS is
  at-most-once: a subscriber whose queue is full loses messages (counted in `dropped`)
  rather than stalling the connection every other subscriber shares.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgspec

from runtime.core.errors import GatiError

TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
PATTERN_RE = re.compile(r"^([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$|^>$")
_CLOSED = object()


class Backpressure(GatiError):
    code = "pubsub_backpressure"
    http_status = 503


class TopicInvalid(GatiError):
    code = "topic_invalid"
    http_status = 500


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes  # JSON

    @cached_property
    def data(self) -> Any:
        return msgspec.json.decode(self.payload)


def check_topic(topic: str) -> str:
    if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
        raise TopicInvalid(f"topic {topic!r} is not dot-separated words", fix="use letters, digits, _ and -, separated by dots: orders.created")
    return topic


def check_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not PATTERN_RE.fullmatch(pattern):
        raise TopicInvalid(f"subscription {pattern!r} is not a topic pattern", fix="use words, * for one word and a final > for the rest: orders.*")
    return pattern


def matches(pattern: str, topic: str) -> bool:
    p, t = pattern.split("."), topic.split(".")
    for i, word in enumerate(p):
        if word == ">":
            return len(t) > i
        if i >= len(t) or (word != "*" and word != t[i]):
            return False
    return len(p) == len(t)


def encode(data: Any) -> bytes:
    try:
        return msgspec.json.encode(data)
    except TypeError as exc:
        raise GatiError(f"cannot publish {type(data).__name__}: {exc}", fix="publish JSON values: dicts, lists, strings, numbers") from None


class Subscription:
    """Messages of one subscription, in order: `async for m in sub`, or `await sub.get(timeout_s)`."""

    def __init__(self, pattern: str, queue_size: int, on_close=None):
        self.pattern = pattern
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0  # messages lost to a full queue (NATS backend only; memory applies backpressure)
        self.closed = False
        self._on_close = on_close

    async def get(self, timeout_s: float | None = None) -> Message:
        """The next message; TimeoutError after timeout_s, StopAsyncIteration once closed."""
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        async with asyncio.timeout(timeout_s):
            item = await self.queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        return item

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        return await self.get()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._on_close is not None:
            result = self._on_close(self)
            if asyncio.iscoroutine(result):
                await result
        try:
            self.queue.put_nowait(_CLOSED)  # wake a reader waiting in get()
        except asyncio.QueueFull:
            pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class MemoryBus:
    """In-process pub/sub: bounded queues, publishers wait (then fail) when a subscriber lags."""

    def __init__(self, queue_size: int = 1000, publish_timeout_s: float = 1.0):
        self.queue_size = queue_size
        self.publish_timeout_s = publish_timeout_s
        self._subs: list[Subscription] = []

    async def publish(self, topic: str, data: Any = None) -> int:
        message = Message(check_topic(topic), encode(data))
        delivered = 0
        for sub in [s for s in self._subs if matches(s.pattern, topic)]:
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                try:
                    async with asyncio.timeout(self.publish_timeout_s):
                        await sub.queue.put(message)
                except TimeoutError:
                    raise Backpressure(
                        f"a subscriber of {sub.pattern!r} has {self.queue_size} messages waiting and took none "
                        f"for {self.publish_timeout_s:g} s; {delivered} subscriber(s) got this message",
                        fix="consume faster, or raise [pubsub] queue_size / publish_timeout_ms",
                        topic=topic,
                    ) from None
            delivered += 1
        return delivered

    async def subscribe(self, pattern: str) -> Subscription:
        sub = Subscription(check_pattern(pattern), self.queue_size, on_close=self._subs.remove)
        self._subs.append(sub)
        return sub

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()

    def healthy(self) -> bool:
        return True
