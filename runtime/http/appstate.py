"""Runtime: what one app shares between requests, stored on the aiohttp app under RUNTIME (and its
state directory, once started, under STATE).

build_app (runtime.http.app) makes it; start-up (runtime.http.lifespan) fills in the parts that
exist only while the app runs; every request (runtime.http.dispatch) and the system routes
(runtime.http.system) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from aiohttp import web

from runtime.core.secrets import Grant, Secrets
from runtime.core.state import StateDir
from runtime.http.context import GlobalContext
from runtime.http.executions import ExecutionRecords
from runtime.http.ingress import Ingress
from runtime.http.lifecycle import Lifecycle
from runtime.http.metrics import Metrics
from runtime.http.project import Project
from runtime.http.project_hooks import ProjectHooks
from runtime.http.routing import Router
from runtime.http.tracing import Tracer
from runtime.modules import ModuleManager
from runtime.modules.manager import Intercept


@dataclass
class Runtime:
    """Everything one app shares between requests; the parts made at start-up are None before it."""

    project: Project
    router: Router
    hooks: ProjectHooks
    lifecycles: dict[int, Lifecycle]  # id(route) -> its lifecycle
    secrets: Secrets
    ingress: Ingress
    metrics: Metrics
    tracer: Tracer
    global_grant: Grant
    gctx: GlobalContext | None = None
    manager: ModuleManager | None = None
    state: StateDir | None = None
    bus: Any = None
    executions: ExecutionRecords | None = None
    status: str = "starting"  # starting | ready | stopping
    grants: dict[int, Grant] = field(default_factory=dict)
    pins: dict[int, Mapping[str, str]] = field(default_factory=dict)  # id(route) -> its MODULES pins (runtime.http.module_pins)
    # For tests (runtime.testing): what sees every module call first, and module folders not to
    # register because intercept answers for them (simulated modules).
    intercept: Intercept | None = None
    unregistered: frozenset[Path] = frozenset()


RUNTIME = web.AppKey("runtime", Runtime)
# The running app's state directory (set at start-up): for those who hold the app, e.g. the audit endpoint, tests.
STATE = web.AppKey("state", StateDir)
