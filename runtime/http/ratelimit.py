"""Rate limits per route and per client: token buckets, 429 with Retry-After.

    RATE_LIMIT = "10/s"        # in a handler file; also "100/m", "1000/h", "5/10s"
    [ingress] rate_limit = "100/s"   # gati.toml: the default for routes that set none

The client is the authenticated subject when there is one, else the peer address. A
bucket holds `count` tokens and refills at count per period, so short bursts up to the
limit pass and a steady flow above it gets 429. Limits are per server instance, unless
[cluster] nats is set: then SharedRateLimiter keeps the buckets in JetStream
(runtime/cluster/buckets.py) and a limit holds across every instance; while NATS is
down a limited route answers 503 rather than go unlimited.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from runtime.core.errors import GatiError

RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)s?\s*$")
UNIT_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
MAX_BUCKETS = 100_000  # past this, full (idle) buckets are dropped: memory stays bounded


class RateLimited(GatiError):
    code = "rate_limited"
    http_status = 429


@dataclass(frozen=True)
class Rate:
    count: int
    period_s: float
    text: str

    @classmethod
    def parse(cls, text: str) -> "Rate":
        m = RATE_RE.match(text) if isinstance(text, str) else None
        if not m or int(m.group(1)) <= 0:
            raise ValueError(f"rate {text!r} is not like '10/s', '100/m', '1000/h' or '5/10s'")
        period = int(m.group(2) or 1) * UNIT_S[m.group(3)]
        if period <= 0:
            raise ValueError(f"rate {text!r} has an empty period")
        return cls(int(m.group(1)), float(period), text.strip())


def _limited(route: str, rate: Rate, wait_s: float) -> RateLimited:
    err = RateLimited(
        f"more than {rate.text} on {route} from this client",
        fix=f"retry after {math.ceil(wait_s)} s, or send fewer requests",
        limit=rate.text,
        retry_after_s=math.ceil(wait_s),
    )
    err.http_headers = {"Retry-After": str(max(1, math.ceil(wait_s)))}
    return err


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}  # key -> [tokens, last refill time]

    def hit(self, route: str, client: str, rate: Rate) -> None:
        """Take one token for (route, client); RateLimited with the seconds to wait when there is none."""
        now = self.clock()
        per_s = rate.count / rate.period_s
        bucket = self._buckets.get((route, client))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now, per_s, rate.count)
            bucket = self._buckets[(route, client)] = [float(rate.count), now]
        else:
            bucket[0] = min(rate.count, bucket[0] + (now - bucket[1]) * per_s)
            bucket[1] = now
        if bucket[0] >= 1:
            bucket[0] -= 1
            return
        raise _limited(route, rate, (1 - bucket[0]) / per_s)

    def _prune(self, now: float, per_s: float, capacity: int) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * per_s >= capacity:
                del self._buckets[key]


class Buckets(Protocol):
    async def take(self, name: str, capacity: int, per_s: float) -> float: ...


class SharedRateLimiter:
    """The same buckets, kept where every instance takes from them (runtime.cluster.buckets.SharedBuckets)."""

    def __init__(self, buckets: Buckets):
        self.buckets = buckets

    async def hit(self, route: str, client: str, rate: Rate) -> None:
        wait_s = await self.buckets.take(f"{route} {client}", rate.count, rate.count / rate.period_s)
        if wait_s > 0:
            raise _limited(route, rate, wait_s)
