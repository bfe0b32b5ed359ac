"""The HTTP side of gati: `build_app(project_dir)` and the path every request takes.

    ingress (request id, trace span, headers, auth, rate limit, body size)    runtime.http.ingress
      -> route (method + path)                                                 runtime.http.routing
      -> lifecycle under the route's timeout: request validation, before hooks,
         handler(req, res, gctx, lctx), after hooks, response validation       runtime.http.lifecycle
         on failure: catch hooks, compensations
      -> cleanup hooks (always) -> X-Request-Id, traceparent
      -> metrics, span end, execution record                                   runtime.http.metrics, runtime.http.executions

Start-up registers every module of the project (a broken manifest stops it), opens the
secrets manager and the pub/sub backend, builds gctx and runs hooks.py's STARTUP functions;
only then does /readyz answer 200. Shutdown runs SHUTDOWN in reverse and closes all of it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from opentelemetry.trace import Status, StatusCode

from runtime.core.call import CallContext, request_context
from runtime.core.errors import GatiError, HandlerTimeout
from runtime.core.audit_key import configured_key
from runtime.core.secrets import Grant, SecretAccess, Secrets, current_grant
from runtime.core.secrets import configured as configured_secrets
from runtime.core.state import StateDir
from runtime.http.auth import Authenticator
from runtime.http.context import GlobalContext, LocalContext
from runtime.http.executions import FILE as EXECUTIONS_FILE
from runtime.http.executions import ExecutionLog
from runtime.http.ingress import Ingress
from runtime.http.lifecycle import Lifecycle
from runtime.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from runtime.http.metrics import Metrics
from runtime.http.project import Project, ProjectError, load_project
from runtime.http.pubsub import MemoryBus
from runtime.http.pubsub_nats import NatsBus
from runtime.http.request import Request
from runtime.http.response import Response, encode_json
from runtime.http.routing import (
    ProjectHooks,
    Route,
    Router,
    load_project_hooks,
    load_routes,
)
from runtime.http.tracing import Tracer
from runtime.modules import ModuleManager, ModuleSet, register_module
from runtime.reports.endpoint import add_audit_routes

log = logging.getLogger("gati.http")


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
    executions: ExecutionLog | None = None
    status: str = "starting"  # starting | ready | stopping
    grants: dict[int, Grant] = field(default_factory=dict)


RUNTIME = web.AppKey("runtime", Runtime)
PROJECT = web.AppKey("project", Project)
ROUTER = web.AppKey("router", Router)
GCTX = web.AppKey("gctx", GlobalContext)
MANAGER = web.AppKey("manager", ModuleManager)
STATE = web.AppKey("state", StateDir)
TRACER = web.AppKey("tracer", Tracer)
METRICS = web.AppKey("metrics", Metrics)


def build_app(project_dir: str | Path) -> web.Application:
    """The aiohttp application serving a project. Handler files and hooks.py are imported now, modules start on startup."""
    project = load_project(project_dir)
    s = project.settings
    router = load_routes(project.handlers_dir)
    hooks = load_project_hooks(project.hooks_file)
    secrets = configured_secrets(project.settings.secrets, project.dir)
    rt = Runtime(
        project=project,
        router=router,
        hooks=hooks,
        lifecycles={},
        secrets=secrets,
        ingress=Ingress(s.ingress, Authenticator(s.auth, secrets, s.ingress.api_key_header)),
        metrics=Metrics(project.dir.name),
        tracer=Tracer(),
        global_grant=Grant(hooks.secrets, "hooks.py", "add {name} to SECRETS in hooks.py"),
    )
    for route in router.routes:
        rt.lifecycles[id(route)] = Lifecycle.build(
            route.handler,
            hooks.hooks,
            route.hooks,
            request_type=route.request_type,
            response_type=route.response_type,
            hook_timeout_ms=s.server.hook_timeout_ms,
            name=route.rel,
        )
        rt.grants[id(route)] = Grant(route.secrets | hooks.secrets, f"handler {route.rel}", f"add {{name}} to SECRETS in handlers/{route.rel}")
    largest_body = max([s.ingress.max_body_bytes] + [r.max_body_bytes or 0 for r in router.routes])
    app = web.Application(client_max_size=largest_body + 1)  # our Ingress gives the 413 with its fix
    app[RUNTIME], app[PROJECT], app[ROUTER], app[TRACER], app[METRICS] = rt, project, router, rt.tracer, rt.metrics
    app.cleanup_ctx.append(_lifespan)
    app.on_shutdown.append(_draining)
    _system_routes(app, rt)
    _audit_endpoint(app, rt)
    # Our Router owns the rest of the URL space: file-based routes, with our own 404/405 bodies.
    app.router.add_route("*", "/{path:.*}", _dispatch)
    return app


def _system_routes(app: web.Application, rt: Runtime) -> None:
    server = rt.project.settings.server
    taken = {r.pattern: r for r in rt.router.routes}
    for key, path, view in (("health_path", server.health_path, _health), ("ready_path", server.ready_path, _ready), ("metrics_path", server.metrics_path, _metrics)):
        if not path:
            continue
        if path.rstrip("/") in taken:
            raise ProjectError(
                rt.project.dir / "gati.toml", f"server.{key}", f"{path} is also served by handlers/{taken[path.rstrip('/')].rel}",
                f'rename the handler file, or set [server] {key} = "/another" (or "" to turn it off)',
            )
        app.router.add_get(path, view)


def _audit_endpoint(app: web.Application, rt: Runtime) -> None:
    """The `gati audit` report over HTTP: off unless [audit] endpoint names a path, always behind a token."""
    audit = rt.project.settings.audit
    if not audit.endpoint:
        return
    token = rt.secrets.get(audit.token_secret)
    if not token or len(token) < 16:
        raise ProjectError(
            rt.project.dir / "gati.toml", "audit.endpoint", f"the audit endpoint needs the secret {audit.token_secret!r}, 16 characters or more",
            f"set it, e.g. GATI_SECRET_{audit.token_secret.upper()}=$(openssl rand -hex 16), or remove [audit] endpoint",
        )
    add_audit_routes(app, lambda: app[STATE], token, path=audit.endpoint)


# start-up and shutdown ----------------------------------------------------------------------------


async def _lifespan(app: web.Application):
    rt = app[RUNTIME]
    project, s = rt.project, rt.project.settings
    state = StateDir.open(project.dir, configured_key(s.audit.key_secret, rt.secrets))
    try:
        for module_dir in project.module_dirs():
            register_module(state, module_dir)
        manager = ModuleManager(state, egress_hosts=dict(s.egress.hosts), secrets=rt.secrets)
        manager.observer = rt.metrics.module_call
        rt.bus = await _bus(s.pubsub)
    except BaseException:
        state.close()
        raise
    rt.state, rt.manager = state, manager
    rt.executions = ExecutionLog(state.path / EXECUTIONS_FILE) if s.audit.executions else None
    rt.gctx = GlobalContext(s.config, ModuleSet(manager), secrets=SecretAccess(rt.secrets, rt.global_grant), metrics=rt.metrics, pubsub=rt.bus)
    app[STATE], app[MANAGER], app[GCTX] = state, manager, rt.gctx
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
        await rt.bus.close()
        await manager.close()
        if rt.executions:
            rt.executions.close()
        rt.metrics.shutdown()
        state.close()


async def _bus(cfg) -> Any:
    if cfg.backend == "nats":
        return await NatsBus(cfg.url, queue_size=cfg.queue_size, prefix=cfg.subject_prefix).connect()
    return MemoryBus(cfg.queue_size, cfg.publish_timeout_ms / 1000)


async def _draining(app: web.Application) -> None:
    app[RUNTIME].status = "stopping"  # readiness goes 503 before connections close


async def _call(fn, *args) -> Any:
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


# health and metrics --------------------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    modules = rt.manager.health() if rt.manager else {}
    pubsub = "ok" if rt.bus is not None and rt.bus.healthy() else "down"
    ready = rt.status == "ready" and pubsub == "ok" and "down" not in modules.values()
    body = {"status": rt.status if rt.status != "ready" or ready else "degraded", "modules": modules, "pubsub": pubsub}
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


# one request ------------------------------------------------------------------------------------------


async def _dispatch(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    start = time.perf_counter()
    lctx = rt.ingress.open(request)
    span = rt.tracer.start(request.method, request.headers.get("traceparent"), lctx, {"gati.request_id": lctx.request_id})
    route: Route | None = None
    try:
        rt.ingress.check(request)
        match = rt.router.match(request.method, request.rel_url.raw_path)
        route = match.route
        lctx.route, lctx.version = route.pattern, route.version
        if span.is_recording():
            span.update_name(f"{request.method} {route.pattern}")
            span.set_attributes({"http.route": route.pattern, "gati.handler": route.rel, "gati.version": route.version})
        rt.ingress.admit(request, route, lctx)
        resp = await _handle(rt, request, route, match.params, lctx)
    except GatiError as err:
        level = logging.ERROR if err.http_status >= 500 else logging.INFO
        note = f" [{err.note}]" if err.note else ""  # the operator's, never in the body
        log.log(level, "%s %s -> %s %s%s (request %s)", request.method, request.path, err.http_status, err, note, lctx.request_id)
        resp = _error(err.http_status, err.to_dict(), lctx)
        resp.headers.update(getattr(err, "http_headers", None) or {})
        lctx.failed = True
    except Exception:
        # Details stay in the log: an exception message may hold things a client must not see.
        log.exception("%s %s failed (request %s)", request.method, request.path, lctx.request_id)
        message = f"the handler failed; the server log has the details under request id {lctx.request_id}"
        resp = _error(500, {"code": "internal", "message": message}, lctx)
        lctx.failed = True
    finally:
        await lctx.cleanup(rt.project.settings.server.hook_timeout_ms / 1000)
    resp.headers["X-Request-Id"] = lctx.request_id
    resp.headers["traceparent"] = lctx.traceparent
    _finish(rt, request, route, lctx, resp.status, time.perf_counter() - start, span)
    return resp


async def _handle(rt: Runtime, request: web.Request, route: Route, params: dict[str, str], lctx: LocalContext) -> web.StreamResponse:
    lifecycle = rt.lifecycles[id(route)]
    timeout_ms = route.timeout_ms or rt.project.settings.server.handler_timeout_ms
    req, res = Request(request, params, rt.ingress.max_body(route)), Response()
    # gctx is shared; these contextvars tell it which request (deadline, secret grants) a call belongs to.
    call_token = request_context.set(
        CallContext(request_id=lctx.request_id, trace_id=lctx.trace_id, caller=f"handler:{route.pattern}", deadline=time.monotonic() + timeout_ms / 1000)
    )
    grant = rt.grants[id(route)]
    if grant.names:
        grant = Grant(grant.names, grant.who, grant.where, on_read=lambda name: lctx.emit("secret:read", name=name))
    grant_token = current_grant.set(grant)
    deadline = asyncio.timeout(timeout_ms / 1000)
    try:
        try:
            async with deadline:
                value = await lifecycle.run(req, res, rt.gctx, lctx)
        except Exception as exc:
            err: Exception = exc
            if isinstance(exc, TimeoutError) and deadline.expired():
                err = HandlerTimeout(
                    f"{route.rel} did not finish within {timeout_ms} ms (hooks and handler together)",
                    fix=f"make it faster, or raise TIMEOUT_MS in {route.file.name} or [server] handler_timeout_ms in gati.toml",
                    route=route.pattern,
                    timeout_ms=timeout_ms,
                )
                lctx.emit("timeout", timeout_ms=timeout_ms)
            res = Response()  # what the handler half-wrote is not the error's answer
            if await lifecycle.recover(err, req, res, rt.gctx, lctx):
                log.info("%s %s: %s handled by a catch hook (request %s)", request.method, request.path, type(err).__name__, lctx.request_id)
                lctx.phase = "responding"
                return res.to_aiohttp()
            if err is exc:
                raise
            raise err from None
    finally:
        current_grant.reset(grant_token)
        request_context.reset(call_token)
    lctx.phase = "responding"
    if hasattr(value, "prepare"):
        return value  # the handler built its own aiohttp response (streaming, files)
    return res.to_aiohttp()


def _finish(rt: Runtime, request: web.Request, route: Route | None, lctx: LocalContext, status: int, seconds: float, span) -> None:
    pattern = route.pattern if route else "(unmatched)"
    rt.metrics.request(pattern, request.method, status, seconds)
    alerts = [e for e in lctx.events if e["type"] == "alert"] if lctx.failed else ()
    for alert in alerts:
        rt.metrics.alert(alert.get("reason", "alert"))
    if span.is_recording():
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
    if rt.executions is not None and route is not None:
        record = {
            "time": time.time(),
            "request_id": lctx.request_id,
            "trace_id": lctx.trace_id,
            "method": request.method,
            "path": request.path,
            "route": route.pattern,
            "handler": route.rel,
            "version": route.version,
            "handler_sha256": route.sha256,
            "status": status,
            "outcome": "ok" if not lctx.failed else "error",
            "duration_ms": round(seconds * 1000, 3),
            "principal": lctx.auth.subject if lctx.auth else None,
            "events": lctx.events,
        }
        if rt.project.settings.audit.snapshots:
            try:
                record["snapshot"] = lctx.snapshot()
            except Exception:
                log.exception("snapshot of request %s failed", lctx.request_id)
        rt.executions.write(record)


def _error(status: int, body: dict[str, Any], lctx: LocalContext) -> web.Response:
    payload = encode_json({"error": {**body, "request_id": lctx.request_id}})
    return web.Response(status=status, body=payload, content_type="application/json")
