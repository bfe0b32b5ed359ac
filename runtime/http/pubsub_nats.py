"""The NATS backend of gctx pub/sub: several gati instances share topics through a NATS server.

    [pubsub]
    backend = "nats"
    url = "nats://127.0.0.1:4222"
    subject_prefix = "gati."     # gati topic orders.created is NATS subject gati.orders.created

Same Subscription and Message as the memory backend. Core NATS delivers at most once: when
a subscriber's queue is full the message is dropped and counted (`sub.dropped`), so one slow
subscriber never stalls the connection that every other subscriber of this instance shares.
A publish waits for the server to take the message only when the client's outgoing buffer is
full (nats-py's flow control).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.errors import NoServersError

from runtime.core.errors import GatiError
from runtime.http.pubsub import (
    Message,
    Subscription,
    check_pattern,
    check_topic,
    encode,
)

log = logging.getLogger("gati.pubsub")


class NatsBus:
    def __init__(self, url: str, *, queue_size: int = 1000, prefix: str = "gati.", connect_timeout_s: float = 5.0):
        self.url = url
        self.queue_size = queue_size
        self.prefix = prefix
        self.connect_timeout_s = connect_timeout_s
        self.nc: Any = None
        self._subs: dict[Subscription, Any] = {}

    async def connect(self) -> "NatsBus":
        try:
            # nats-py keeps retrying the first connect too when reconnects are unlimited: bound start-up here
            async with asyncio.timeout(self.connect_timeout_s):
                self.nc = await nats.connect(
                    self.url,
                    connect_timeout=self.connect_timeout_s,
                    max_reconnect_attempts=-1,  # keep trying after start-up: readiness reports the outage
                    reconnect_time_wait=0.5,
                    allow_reconnect=True,
                    error_cb=self._error,
                    name="gati",
                )
        except (NoServersError, OSError, TimeoutError) as exc:
            raise GatiError(
                f"cannot reach the NATS server at {self.url}: {exc or type(exc).__name__}",
                fix="start nats-server there, fix [pubsub] url in gati.toml, or use backend = \"memory\"",
            ) from None
        return self

    async def publish(self, topic: str, data: Any = None) -> int:
        await self.nc.publish(self.prefix + check_topic(topic), encode(data))
        return 1  # handed to the server; how many subscribers it reaches, NATS does not say

    async def subscribe(self, pattern: str) -> Subscription:
        sub = Subscription(check_pattern(pattern), self.queue_size, on_close=self._unsubscribe)
        strip = len(self.prefix)

        async def deliver(msg) -> None:
            try:
                sub.queue.put_nowait(Message(msg.subject[strip:], msg.data))
            except asyncio.QueueFull:
                sub.dropped += 1
                if sub.dropped in (1, 10, 100) or sub.dropped % 1000 == 0:
                    log.warning("subscriber of %s is slow: %d messages dropped", pattern, sub.dropped)

        self._subs[sub] = await self.nc.subscribe(self.prefix + pattern, cb=deliver)
        await self.flush()  # the server knows of the subscription before we return
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        nats_sub = self._subs.pop(sub, None)
        if nats_sub is not None and self.nc is not None and self.nc.is_connected:
            await nats_sub.unsubscribe()

    async def flush(self, timeout_s: float = 2.0) -> None:
        """Wait until the server has taken every command sent so far (subscriptions, messages)."""
        # nats-py writes flush()'s PING straight to the socket, ahead of the commands still in its
        # buffer, which its flusher task writes on the loop's next turn. That turn comes before the
        # PONG can be read, so a second PING follows every earlier command, and its PONG proves them.
        await self.nc.flush(timeout=timeout_s)
        await self.nc.flush(timeout=timeout_s)

    def healthy(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()
        if self.nc is None or self.nc.is_closed:
            return
        try:
            # drain delivers what is in flight first; without a server there is nothing to drain
            await (self.nc.drain() if self.nc.is_connected else self.nc.close())
        except Exception as exc:
            log.warning("closing the NATS connection to %s: %s", self.url, exc)
            await self.nc.close()

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS %s: %s", self.url, exc)
