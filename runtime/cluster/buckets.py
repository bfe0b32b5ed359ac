"""Token buckets shared by every instance: one JetStream KV entry per bucket (`gati_<ns>_ratelimit`).

What runtime/http/ratelimit.py keeps in memory for one instance, kept here for all of them:
a bucket holds up to `capacity` tokens and refills at `per_s`; taking a token reads the
bucket, and writes it back expecting the revision it read, so two instances can never
spend the same token. A bucket no one touched for a day is dropped by JetStream (TTL): by
then it is full again, which is what an absent bucket means. Time is the wall clock, so the
instances' clocks should agree (NTP) to well under the limits' periods.
"""

from __future__ import annotations

import json
import time

from runtime.cluster.connection import Cluster
from runtime.cluster.jetstream import Bucket, token

IDLE_TTL_S = 24 * 3600  # longer than any period a limit is written with in practice (1000/h)


class SharedBuckets:
    def __init__(self, cluster: Cluster, bucket: Bucket):
        self.cluster = cluster
        self.bucket = bucket

    @classmethod
    def open(cls, cluster: Cluster) -> "SharedBuckets":
        bucket = cluster.run(Bucket.open(cluster.js, cluster.bucket("ratelimit"), ttl_s=IDLE_TTL_S, description="gati rate limits"))
        return cls(cluster, bucket)

    async def take(self, name: str, capacity: int, per_s: float) -> float:
        """Take one token from bucket `name`: 0.0 when taken, else the seconds until one is there."""
        key = token(name)

        async def take() -> float:
            while True:  # bounded by the connection's timeout
                last = await self.bucket.last(key)
                now = time.time()
                tokens = float(capacity)
                if last.value:
                    state = json.loads(last.value)
                    tokens = min(capacity, state["tokens"] + max(0.0, now - state["at"]) * per_s)
                if tokens < 1:
                    return (1 - tokens) / per_s  # nothing to write: refusing spends nothing
                written = json.dumps({"tokens": tokens - 1, "at": now}).encode()
                if await self.bucket.publish(key, written, last.seq) is not None:
                    return 0.0

        return await self.cluster.call(take())
