"""Start-up and shutdown of an app: what exists only while it runs.

Start-up registers every module of the project (a broken manifest stops it, and so does a handler's
MODULES pin that no registered version satisfies, runtime.http.module_pins; handlers whose module
calls do not fit the modules' schemas are logged, runtime.http.contracts), opens the state
directory, the module manager, the pub/sub backend, the execution records, the snapshot store and
the versions' store and checks (runtime.http.versions.service), builds gctx and
runs hooks.py's STARTUP functions; only then does /readyz answer 200. Shutdown runs SHUTDOWN in
reverse and closes all of it, whatever failed before.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from aiohttp import web

from runtime.cluster.state import ClusterState
from runtime.core.audit_key import configured_key
from runtime.core.secrets import SecretAccess
from runtime.core.state import StateDir
from runtime.http.appstate import RUNTIME, STATE
from runtime.http.context import GlobalContext
from runtime.http.contracts import registered_contracts, start_up_lines
from runtime.http.deadlines import Deadlines
from runtime.http.executions import FILE as EXECUTIONS_FILE
from runtime.http.executions import ExecutionRecords
from runtime.http.module_pins import check_pins
from runtime.http.pubsub import MemoryBus
from runtime.http.pubsub_nats import NatsBus
from runtime.http.ratelimit import SharedRateLimiter
from runtime.http.recorder import chain
from runtime.http.snapshot_store import FILE as SNAPSHOTS_FILE
from runtime.http.state import open_state, open_version_store
from runtime.http.versions.service import Timescape
from runtime.modules import ModuleManager, ModuleSet, register_module

log = logging.getLogger("gati.http")


async def lifespan(app: web.Application):
    """aiohttp cleanup context: start-up before the yield, shutdown after it."""
    rt = app[RUNTIME]
    project, s = rt.project, rt.project.settings
    key = configured_key(s.audit.key_secret, rt.secrets)
    state = await asyncio.to_thread(open_state, project.dir, s, key)  # in cluster mode: connecting to NATS
    store = None
    try:
        if isinstance(state, ClusterState):  # limits across instances; this instance's audit log mirrored
            rt.ingress.shared = SharedRateLimiter(state.buckets)
            state.mirror_audit()
        for module_dir in project.module_dirs():
            if module_dir.resolve() not in rt.unregistered:  # a simulated module (runtime.testing) is not registered
                register_module(state, module_dir)
        _warn_contracts(rt, state)
        manager = ModuleManager(state, egress_hosts=dict(s.egress.hosts), secrets=rt.secrets)
        manager.observer = rt.metrics.module_call
        manager.tracer = rt.tracer.otel  # a span per module call made under a recording span
        manager.intercept = rt.intercept
        registered = set(state.registry.names())
        # A pin nothing satisfies stops start-up (a simulated module of the testing kit is not registered: not checked).
        check_pins(rt.plans.values(), manager.versions.registered, skip=lambda name: rt.intercept is not None and name not in registered)
        if rt.recorder is not None:  # module calls recorded for snapshots, in front of any other intercept
            rt.recorder.open(state.path / SNAPSHOTS_FILE)
            manager.intercept = chain(rt.recorder.intercept, rt.intercept)
        store = open_version_store(state)  # the manifest store: versions.db, or in cluster mode every instance's
        rt.bus = await _bus(s.pubsub)
    except BaseException:
        if rt.recorder is not None:
            rt.recorder.close()
        if store is not None:
            store.close()
        state.close()
        raise
    rt.state, rt.manager = state, manager
    rt.deadlines = Deadlines(asyncio.get_running_loop())
    app[STATE] = state
    rt.executions = ExecutionRecords(state.path / EXECUTIONS_FILE) if s.audit.executions else None
    rt.gctx = GlobalContext(s.config, ModuleSet(manager), secrets=SecretAccess(rt.secrets, rt.global_grant), metrics=rt.metrics, pubsub=rt.bus)
    # Handler versions: their manifests and graphs stored, health checks, served times, drains.
    timescape = Timescape(store, drain_after_s=s.versions.drain_after_s, interval_s=s.versions.check_interval_s)
    timescape.adopt(rt.router, rt.manifests)
    rt.timescape = timescape
    timescape.start(rt.gctx)
    try:
        for fn in rt.hooks.startup:
            await _call(fn, rt.gctx)
        rt.status = "ready"
        yield
    finally:
        rt.status = "stopping"
        for fn in reversed(rt.hooks.shutdown):
            try:
                await _call(fn, rt.gctx)
            except Exception:
                log.exception("shutdown function %s failed; the others still run", getattr(fn, "__name__", fn))
        await timescape.close()
        rt.timescape = None
        await rt.bus.close()
        await manager.close()
        rt.deadlines.close()
        if rt.executions:
            rt.executions.close()
        if rt.recorder is not None:
            rt.recorder.close()
        state.close()
        # Last, once nothing makes spans or measurements: what is batched goes out (a collector may be slow: off the loop).
        await asyncio.to_thread(rt.metrics.shutdown)
        await asyncio.to_thread(rt.telemetry.shutdown)


async def draining(app: web.Application) -> None:
    """aiohttp on_shutdown: readiness goes 503 before connections close."""
    app[RUNTIME].status = "stopping"


def _warn_contracts(rt: Any, state: StateDir) -> None:
    """Handlers whose module payloads do not fit the modules' schemas: logged, never fatal (`gati contracts check` fails CI)."""
    try:
        findings = registered_contracts(rt.router, state.registry)
        # Warnings are things to review (a module stricter than the handler's types), not faults.
        level = logging.WARNING if any(f.severity == "error" for f in findings) else logging.INFO
        for line in start_up_lines(findings):
            log.log(level, "contracts: %s", line)
    except Exception:
        log.exception("contract check failed; serving anyway")


async def _bus(cfg) -> Any:
    if cfg.backend == "nats":
        return await NatsBus(cfg.url, queue_size=cfg.queue_size, prefix=cfg.subject_prefix).connect()
    return MemoryBus(cfg.queue_size, cfg.publish_timeout_ms / 1000)


async def _call(fn, *args) -> Any:
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result
