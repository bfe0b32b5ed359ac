"""Timescape's background side: the manifest store, health checks, served times and drains.

One task per running app (started at start-up, runtime.http.lifespan) that, every
[versions] check_interval_s:
  - writes to the store the versions clients asked for since the last time (VersionSet.seen:
    the request path only adds a label to a set);
  - reads the store's states again when another process changed it (`gati versions retire`, or
    in cluster mode any instance), by the store's data_version: requests never read the store,
    they read VersionSet.out;
  - drains: a version no client asked for in [versions] drain_after is marked drained in the
    store and stops being served (never a route's default, nor the previous default of a rollout);
and runs the HEALTH checks of handler versions when they are due (runtime.http.versions.health),
taking a failing version out of routing and putting it back when it passes again.

adopt(router, manifests) is called with every set of routes served (start-up, `gati dev` reload):
it writes the manifests and version graphs to the store and carries the marks over to the new
VersionSets.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any, Callable, Mapping

from runtime.core.errors import GatiError, StateUnavailable
from runtime.http.versions.availability import RETIRED, UNHEALTHY, Out, drained
from runtime.http.versions.health import HealthSpec, Record
from runtime.http.versions.store import DRAINED, LIVE, Store, VersionRow

log = logging.getLogger("gati.versions")

Key = tuple[str, str]  # (route pattern, version label)


def graph_of(route: Any, fingerprints: Mapping[int, str]) -> dict[str, Any]:
    """The version graph of a router entry, as stored: VersionSet.describe() with each version's
    fingerprint; a route with one file is a graph of one version."""
    vs = route.versions
    if vs is None:
        label = route.version or "1"
        g = {
            "route": route.pattern, "default": label, "rollout": None, "steps": [],
            "versions": [{"version": label, "file": route.rel, "since": route.since or None, "served_by": label}],
        }
        own = {label: route}
    else:
        g = vs.describe()
        own = {v.label: v.route for v in vs.versions}
    for v in g["versions"]:
        r = own[v["version"]]
        v["fingerprint"] = fingerprints.get(id(r), "")
        v["deprecated"], v["sunset"], v["health"] = r.deprecated or None, r.sunset or None, r.health is not None
    return g


class Timescape:
    def __init__(self, store: Store | None, *, drain_after_s: float | None = None, interval_s: float = 1.0, clock: Callable[[], float] = time.time):
        self.store = store
        self.drain_after_s = drain_after_s
        self.interval_s = interval_s
        self.clock = clock
        self.router: Any = None
        self.graphs: dict[str, dict[str, Any]] = {}
        self.rows: dict[Key, VersionRow] = {}
        self.health: dict[Key, Record] = {}
        self._checks: dict[Key, HealthSpec] = {}
        self._data_version = -1
        self._unsent: set[Key] = set()  # served, not yet written (the store was unavailable: a cluster's NATS down)
        self._task: asyncio.Task | None = None

    # --- the routes served

    def adopt(self, router: Any, manifests: Mapping[int, Any]) -> None:
        """Serve these routes' versions from now on: store their manifests and graphs, carry marks over."""
        self.router = router
        fingerprints = {key: m.fingerprint() for key, m in manifests.items()}
        self.graphs = {r.pattern: graph_of(r, fingerprints) for r in router.routes}
        if self.store is not None:
            by_fp = {fingerprints[key]: m.to_dict() for key, m in manifests.items()}
            self.store.record(self.graphs.values(), by_fp, self.clock())
            self.rows = self.store.versions()
        checks: dict[Key, HealthSpec] = {}
        for r in router.routes:
            for label, own in self._own(r).items():
                if own.health is not None:
                    checks[(r.pattern, label)] = own.health
        self._checks = checks
        self.health = {k: rec for k, rec in self.health.items() if k in checks}
        self._apply()

    @staticmethod
    def _own(route: Any) -> dict[str, Any]:
        if route.versions is None:
            return {route.version or "1": route}
        return {v.label: v.route for v in route.versions.versions}

    def _sets(self) -> dict[str, Any]:
        return {r.pattern: r.versions for r in self.router.routes if r.versions is not None} if self.router else {}

    def _apply(self) -> None:
        """Set every VersionSet's marks from the store's states and the health records."""
        for pattern, vs in self._sets().items():
            for label in vs.labels:
                row, rec = self.rows.get((pattern, label)), self.health.get((pattern, label))
                mark = None
                if row is not None and row.state != LIVE:
                    mark = Out(RETIRED, row.reason or row.state)
                elif rec is not None and not rec.healthy:
                    mark = Out(UNHEALTHY, rec.reason)
                if vs.mark(label, mark):
                    log.warning("%s version %s: %s", pattern, label, f"out of service ({mark.kind}: {mark.reason})" if mark else "back in service")

    def out_of_service(self) -> dict[str, str]:
        """For /readyz: handler versions failing their health checks, "/route@version" -> why."""
        return {f"{p}@{label}": rec.reason for (p, label), rec in sorted(self.health.items()) if not rec.healthy}

    def describe(self) -> dict[str, Any]:
        """Every route's version graph with each version's state and served times (the /_gati/versions view)."""
        out = []
        for pattern, g in sorted(self.graphs.items()):
            g = {**g, "versions": [dict(v) for v in g["versions"]]}
            for v in g["versions"]:
                key = (pattern, v["version"])
                row, rec = self.rows.get(key), self.health.get(key)
                v["state"] = row.state if row else LIVE
                v["healthy"] = rec.healthy if rec else True
                v["first_served"], v["last_served"] = (row.first_served, row.last_served) if row else (None, None)
            out.append(g)
        return {"routes": out}

    # --- the background task

    def start(self, gctx: Any) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(gctx), name="gati-versions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.store is not None:
            try:
                self.sync(self.take_seen())  # what was served since the last round
            except GatiError as exc:  # shutting down: the rest of it must still run
                log.warning("versions: served times since the last round not written: %s", exc.message)
            finally:
                self.store.close()

    async def _loop(self, gctx: Any) -> None:
        next_sync, failing = 0.0, False
        while True:
            now = time.monotonic()
            try:
                if now >= next_sync:
                    next_sync = now + self.interval_s
                    await asyncio.to_thread(self.sync, self.take_seen())
                    self._apply()
                    failing = False
                await self.check_health(gctx, now)
            except StateUnavailable as exc:  # said once per outage; served times wait, the states known stay in force
                if not failing:
                    log.warning("versions: the store is unavailable (%s); served times are written once it is back", exc.message)
                failing = True
            except Exception:
                log.exception("versions: a background round failed; the next one runs as usual")
            due = [rec.due for rec in self.health.values()] + [next_sync]
            await asyncio.sleep(min(max(min(due) - time.monotonic(), 0.01), self.interval_s))

    def take_seen(self) -> list[Key]:
        """The versions asked for since the last call (on the event loop, where requests add to them)."""
        hits = []
        for pattern, vs in self._sets().items():
            if vs.seen:
                seen, vs.seen = vs.seen, set()
                hits += [(pattern, label) for label in seen]
        return hits

    def sync(self, hits: list[Key]) -> None:
        """Served times to the store; the store's states back if another process changed them; drains."""
        if self.store is None:
            return
        now = self.clock()
        hits = sorted(self._unsent.union(hits))
        if hits:
            self._unsent = set(hits)  # until written: an outage of a shared store loses no served version
            self.store.served(hits, now)
            self._unsent = set()
        version = self.store.data_version()
        if hits or version != self._data_version:
            self._data_version = version
            self.rows = self.store.versions()
        if self.drain_after_s is not None and self._drain(now):
            self.rows = self.store.versions()

    def _drain(self, now: float) -> bool:
        changed = False
        for pattern, vs in self._sets().items():
            keep = {vs.default, vs.table.previous} if vs.table.rollout < 100 else {vs.default}
            candidates = {
                label: row.seen for label in vs.labels
                if label not in keep and (row := self.rows.get((pattern, label))) is not None and row.state == LIVE
            }
            for label in sorted(drained(candidates, now, self.drain_after_s)):
                since = datetime.datetime.fromtimestamp(candidates[label], datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                reason = f"drained: no client asked for it since {since}"
                changed |= self.store.set_state(pattern, label, DRAINED, reason, now)
                log.warning("%s version %s %s; it is no longer served", pattern, label, reason)
        return changed

    async def check_health(self, gctx: Any, now: float) -> None:
        due = [(key, spec) for key, spec in self._checks.items() if self.health.setdefault(key, Record()).due <= now]
        if not due:
            return
        results = await asyncio.gather(*(spec.run(gctx) for _, spec in due), return_exceptions=True)
        changed = False
        for (key, spec), result in zip(due, results):
            rec = self.health[key]
            rec.due = time.monotonic() + spec.interval_s
            if isinstance(result, asyncio.CancelledError):
                raise result
            changed |= rec.result(spec, result if isinstance(result, BaseException) else None)
        if changed:
            self._apply()
