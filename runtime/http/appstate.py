"""Runtime: what one app shares between requests, stored on the aiohttp app under RUNTIME (and its
state directory, once started, under STATE).

build_app (runtime.http.app) makes it; start-up (runtime.http.lifespan) fills in the parts that
exist only while the app runs; every request (runtime.http.dispatch) and the system routes
(runtime.http.system) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from runtime.core.secrets import Grant, Secrets
from runtime.core.state import StateDir
from runtime.http.context import GlobalContext
from runtime.http.executions import ExecutionRecords
from runtime.http.ingress import Ingress
from runtime.http.deadlines import Deadlines
from runtime.http.metrics import Metrics
from runtime.http.plan import RoutePlan
from runtime.http.project import Project
from runtime.http.project_hooks import ProjectHooks
from runtime.http.recorder import Recorder
from runtime.http.routing import Router
from runtime.http.telemetry import Telemetry
from runtime.http.tracing import Tracer
from runtime.http.versions.service import Timescape
from runtime.modules import ModuleManager
from runtime.modules.manager import Intercept


@dataclass
class Runtime:
    """Everything one app shares between requests; the parts made at start-up are None before it."""

    project: Project
    router: Router
    hooks: ProjectHooks
    secrets: Secrets
    ingress: Ingress
    metrics: Metrics
    tracer: Tracer
    global_grant: Grant
    telemetry: Telemetry = field(default_factory=Telemetry)  # what OTEL_* configured: flushed on shutdown
    gctx: GlobalContext | None = None
    manager: ModuleManager | None = None
    state: StateDir | None = None
    bus: Any = None
    executions: ExecutionRecords | None = None
    status: str = "starting"  # starting | ready | stopping
    plans: dict[int, RoutePlan] = field(default_factory=dict)  # id(route) -> what it runs (runtime.http.plan)
    deadlines: Deadlines | None = None  # of the requests in flight, made on the serving loop at start-up
    # Replayable snapshots ([audit] snapshots, or the playground): None when off, and nothing of it runs.
    recorder: Recorder | None = None
    # route pattern -> debug gate, looked up by each Lifecycle (runtime.http.playground.gates); None without the playground.
    gates: dict[str, Any] | None = None
    manifests: dict[int, Any] = field(default_factory=dict)  # id(route) -> its HandlerManifest, for every served route
    timescape: Timescape | None = None  # versions' store, health and drains (runtime.http.versions.service), from start-up
    # For tests (runtime.testing): what sees every module call first, and module folders not to
    # register because intercept answers for them (simulated modules).
    intercept: Intercept | None = None
    unregistered: frozenset[Path] = frozenset()


RUNTIME = web.AppKey("runtime", Runtime)
# The running app's state directory (set at start-up): for those who hold the app, e.g. the audit endpoint, tests.
STATE = web.AppKey("state", StateDir)
