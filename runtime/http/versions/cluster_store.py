"""Timescape's manifest store shared by every instance of a cluster: JetStream KV bucket `gati_<namespace>_versions`.

The same Store as versions.db (runtime/http/versions/store.py), so the Timescape and `gati
versions` do not care which one they hold; runtime/http/state.py chooses it in cluster mode. It
lives here, not in runtime/cluster, because what it keeps is Timescape's (version rows and their
states, served times, graphs, handler manifests, all defined in runtime.http.versions) and
runtime.cluster sits below runtime.http: it must not import them. runtime.cluster gives it the
transport (the connection, a bucket's compare-and-set and replica steps), which http may use.

Keys (each name part is jetstream.token(text): any text is one subject token):

    v.<route>.<version>          the version's row (VersionRow as JSON)
    g.<route>                    the route's version graph (the last instance to record it wins)
    m.<fingerprint>              a handler manifest                      written once
    h.<route>.<version>.<fp>     when that manifest was first stored     written once
    t.<digest>                   a REQUEST / RESPONSE JSON Schema        written once

Rows are read on every round of the Timescape and never wait on the network: each instance keeps
a replica of the v.* keys, refreshed every REFRESH_S on the connection's loop from the messages
past the last one it saw (one request when nothing moved), and after each of its own writes.
A retire or restore made anywhere (an instance, the CLI) is in every replica within about
REFRESH_S; data_version() moves with it, so each Timescape applies it on its next round.
While NATS is down the replica keeps what it knew, and writes fail with StateUnavailable.

Every change of a row is a compare-and-set on the key's revision, retried until it lands:
served times merge (served_times: the earliest first, the latest last) whatever the instances
write at once, and a retire is not undone by a served batch written at the same moment.
Manifests, their history and gtypes are written expecting no revision: the first instance to
store a fingerprint keeps it. graph, manifest, gtype and manifest_history ask NATS (`gati
versions` and its in-place check read them, never a request).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from functools import partial
from typing import Any, Awaitable, Callable, Iterable, Mapping

from runtime.cluster.connection import Cluster
from runtime.cluster.jetstream import Bucket, token, untoken
from runtime.http.versions.store import (
    LIVE,
    VersionRow,
    canonical_json,
    schema_digest,
    served_times,
)

log = logging.getLogger("gati.versions")

REFRESH_S = 0.25
LOAD_TIMEOUT_S = 60.0  # the first read of every row, and a record of many routes: more than one operation's timeout

Key = tuple[str, str]
Row = dict[str, Any]


class ClusterVersionStore:
    def __init__(self, cluster: Cluster, bucket: Bucket):
        self.cluster = cluster
        self.bucket = bucket
        # (the last stream sequence applied, the rows): replaced whole, so readers on any thread need no lock
        self._replica: tuple[int, dict[Key, VersionRow]] = (0, {})
        self._refreshing = asyncio.Lock()  # used on the connection's loop only
        self._refresher = None

    @classmethod
    def open(cls, cluster: Cluster) -> "ClusterVersionStore":
        bucket = cluster.run(Bucket.open(cluster.js, cluster.bucket("versions"), description="gati Timescape: handler versions, manifests, served times"))
        store = cls(cluster, bucket)
        cluster.run(store._refresh(), LOAD_TIMEOUT_S)
        store._refresher = cluster.keep_fresh(
            store._refresh, every_s=REFRESH_S, timeout_s=LOAD_TIMEOUT_S, logger=log, what="versions replica", meanwhile="the Timescape keeps the states it knew"
        )
        return store

    def close(self) -> None:
        # the connection is the ClusterState's to close
        if self._refresher is not None:
            self._refresher.cancel()

    # the replica of the rows -------------------------------------------------------------------------
    async def _refresh(self) -> None:
        async with self._refreshing:
            seen, rows = self._replica
            changed: dict[Key, VersionRow | None] = {}
            while (found := await self.bucket.next(seen + 1, "v.*.*")) is not None:
                key, last = found
                _, route, version = key.split(".")
                changed[(untoken(route), untoken(version))] = None if last.value is None else VersionRow.of(json.loads(last.value))
                seen = last.seq
            if changed:
                rows = {**rows, **changed}
                rows = {k: row for k, row in rows.items() if row is not None}  # a deleted key: gone
            self._replica = (seen, rows)

    def data_version(self) -> int:
        """Moves whenever a row changed, on any instance (the last stream sequence the replica applied)."""
        return self._replica[0]

    def versions(self, route: str | None = None) -> dict[Key, VersionRow]:
        rows = self._replica[1]
        return dict(rows) if route is None else {k: row for k, row in rows.items() if k[0] == route}

    # writes --------------------------------------------------------------------------------------------
    def _run(self, *steps: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Run the steps at once on the connection's loop, then bring the replica up to them (read your writes).
        Steps are made there: when the connection refuses the run, none was made to be left unawaited."""

        async def run() -> list[Any]:
            results = await asyncio.gather(*(step() for step in steps))
            await self._refresh()
            return results

        return self.cluster.run(run(), LOAD_TIMEOUT_S)

    async def _change(self, route: str, version: str, change: Callable[[Row | None], Row | None]) -> bool:
        """Compare-and-set of a row, retried until no other write came between its read and its write.
        change(current) gives the new row, or None to write nothing; False when nothing was written
        because change said so."""
        key = f"v.{token(route)}.{token(version)}"
        while True:
            last = await self.bucket.last(key)
            current = json.loads(last.value) if last.value is not None else None
            new = change(current)
            if new is None:
                return False
            if new == current or await self.bucket.publish(key, canonical_json(new).encode(), last.seq) is not None:
                return True

    async def _once(self, key: str, value: bytes) -> None:
        """Write a key that is never rewritten: the first write stays, later ones change nothing."""
        await self.bucket.publish(key, value, 0)

    def record(self, graphs: Iterable[Mapping[str, Any]], manifests: Mapping[str, Mapping[str, Any]], now: float) -> None:
        """As VersionStore.record: a version seen for the first time is known from now; one whose
        fingerprint changed keeps its times and state; manifests by fingerprint are written once."""
        steps = []
        for fingerprint, m in manifests.items():
            for role in ("request", "response"):
                if m.get(role) is not None:
                    digest, text = schema_digest(m[role])
                    steps.append(partial(self._once, f"t.{token(digest)}", text.encode()))
            label = m["version"] or "1"  # as graph_of labels a single file
            steps.append(partial(self._once, f"m.{token(fingerprint)}", canonical_json(dict(m)).encode()))
            steps.append(partial(self._once, f"h.{token(m['path'])}.{token(label)}.{token(fingerprint)}", canonical_json({"stored_at": now}).encode()))
        for g in graphs:
            steps.append(partial(self.bucket.publish, f"g.{token(g['route'])}", canonical_json(dict(g)).encode(), None))
            for v in g["versions"]:
                steps.append(partial(self._change, g["route"], v["version"], _known(g["route"], v["version"], v["fingerprint"], now)))
        self._run(*steps)

    def served(self, hits: Iterable[tuple[str, str]], now: float) -> None:
        """Clients asked for these (route, version) pairs: each row's served times merged with now."""

        def merge(row: Row | None) -> Row | None:
            if row is None:
                return None  # a version the store does not know (as VersionStore: nothing to update)
            first, last = served_times(row["first_served"], row["last_served"], now)
            return {**row, "first_served": first, "last_served": last}

        self._run(*(partial(self._change, route, version, merge) for route, version in set(hits)))

    def set_state(self, route: str, version: str, state: str, reason: str, now: float) -> bool:
        """Retire, drain or restore a version; False when the store does not know it.
        Restoring starts its drain clock again (as if a client had just asked for it)."""

        def to(row: Row | None) -> Row | None:
            if row is None:
                return None
            return {**row, "state": state, "reason": reason, "state_at": now, "last_served": now if state == LIVE else row["last_served"]}

        return self._run(partial(self._change, route, version, to))[0]

    def set_last_served(self, route: str, version: str, when: float) -> None:
        """For tests and imports: when a client last asked for it."""
        self._run(partial(self._change, route, version, lambda row: None if row is None else {**row, "last_served": when}))

    # read from NATS (the CLI) ----------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        last = self.cluster.run(self.bucket.last(key))
        return None if last.value is None else json.loads(last.value)

    def graph(self, route: str) -> dict[str, Any] | None:
        return self._get(f"g.{token(route)}")

    def manifest(self, fingerprint: str) -> dict[str, Any] | None:
        return self._get(f"m.{token(fingerprint)}")

    def gtype(self, digest: str) -> dict[str, Any] | None:
        return self._get(f"t.{token(digest)}")

    def manifest_history(self, route: str, version: str) -> list[tuple[str, float]]:
        """Every manifest stored for this version, oldest first: (fingerprint, stored_at)."""

        async def history() -> list[tuple[str, float]]:
            found, seq = [], 1
            while (entry := await self.bucket.next(seq, f"h.{token(route)}.{token(version)}.*")) is not None:
                key, last = entry
                if last.value is not None:
                    found.append((untoken(key.rsplit(".", 1)[1]), json.loads(last.value)["stored_at"]))
                seq = last.seq + 1
            return sorted(found, key=lambda h: (h[1], h[0]))

        return self.cluster.run(history(), LOAD_TIMEOUT_S)


def _known(route: str, version: str, fingerprint: str, now: float) -> Callable[[Row | None], Row]:
    def change(row: Row | None) -> Row:
        if row is None:
            return dataclasses.asdict(VersionRow(route, version, fingerprint, now, None, None, LIVE, "", None))
        return {**row, "fingerprint": fingerprint}

    return change
