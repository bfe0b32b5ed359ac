"""The HTTP side of gati: `build_app(project_dir)` and the path every request takes.

    request -> lctx (request id, trace id) -> route -> handler(req, res, gctx, lctx) under a timeout
            -> response (or a structured JSON error) -> cleanup hooks -> X-Request-Id, traceparent

The module side starts with the app: on startup every module of the project is
registered (a broken manifest stops start-up) and one ModuleManager is shared by all
requests as `gctx.modules`; on cleanup the manager is closed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from runtime.context import GlobalContext, LocalContext
from runtime.errors import GatiError, HandlerTimeout
from runtime.modules import CallContext, ModuleManager, request_context
from runtime.project import Project, load_project
from runtime.request import Request
from runtime.response import Response, encode_json
from runtime.routing import MethodNotAllowed, Route, Router, load_routes
from runtime.state import StateDir

log = logging.getLogger("gati.http")

PROJECT = web.AppKey("project", Project)
ROUTER = web.AppKey("router", Router)
GCTX = web.AppKey("gctx", GlobalContext)
MANAGER = web.AppKey("manager", ModuleManager)
STATE = web.AppKey("state", StateDir)


def build_app(project_dir: str | Path) -> web.Application:
    """The aiohttp application serving a project. Handler files are imported now, modules start on startup."""
    project = load_project(project_dir)
    app = web.Application()
    app[PROJECT] = project
    app[ROUTER] = load_routes(project.handlers_dir)
    app.cleanup_ctx.append(_modules)
    # Our Router owns the whole URL space: file-based routes, with our own 404/405 bodies.
    app.router.add_route("*", "/{path:.*}", _dispatch)
    return app


async def _modules(app: web.Application):
    project = app[PROJECT]
    state = StateDir.open(project.dir)
    try:
        for module_dir in project.module_dirs():
            state.registry.register(module_dir)
        manager = ModuleManager(state, egress_hosts=dict(project.settings.egress.hosts))
    except BaseException:
        state.close()
        raise
    app[STATE], app[MANAGER] = state, manager
    app[GCTX] = GlobalContext(project.settings.config, manager.modules)
    try:
        yield
    finally:
        await manager.close()
        state.close()


async def _dispatch(request: web.Request) -> web.StreamResponse:
    lctx = LocalContext(request.headers.get("X-Request-Id"), request.headers.get("traceparent"))
    try:
        resp = await _handle(request, lctx)
    except GatiError as err:
        level = logging.ERROR if err.http_status >= 500 else logging.INFO
        log.log(level, "%s %s -> %s %s (request %s)", request.method, request.path, err.http_status, err, lctx.request_id)
        resp = _error(err.http_status, err.to_dict(), lctx)
        if isinstance(err, MethodNotAllowed):
            resp.headers["Allow"] = err.details["allow"]
    except Exception:
        # Details stay in the log: an exception message may hold things a client must not see.
        log.exception("%s %s failed (request %s)", request.method, request.path, lctx.request_id)
        message = f"the handler failed; the server log has the details under request id {lctx.request_id}"
        resp = _error(500, {"code": "internal", "message": message}, lctx)
    finally:
        await lctx.cleanup()
    resp.headers["X-Request-Id"] = lctx.request_id
    resp.headers["traceparent"] = lctx.traceparent
    return resp


async def _handle(request: web.Request, lctx: LocalContext) -> web.StreamResponse:
    app = request.app
    match = app[ROUTER].match(request.method, request.rel_url.raw_path)
    route = match.route
    timeout_ms = route.timeout_ms or app[PROJECT].settings.server.handler_timeout_ms
    req, res = Request(request, match.params), Response()
    # gctx.modules is shared; this contextvar tells it which request (and deadline) a module call belongs to.
    token = request_context.set(
        CallContext(
            request_id=lctx.request_id,
            trace_id=lctx.trace_id,
            caller=f"handler:{route.pattern}",
            deadline=time.monotonic() + timeout_ms / 1000,
        )
    )
    lctx.phase = "handler"
    deadline = asyncio.timeout(timeout_ms / 1000)
    try:
        async with deadline:
            value = await _call(route, req, res, app[GCTX], lctx)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own TimeoutError, not ours
        raise HandlerTimeout(
            f"handler for {route.pattern} did not finish within {timeout_ms} ms",
            fix=f"make it faster, or raise TIMEOUT_MS in {route.file.name} or [server] handler_timeout_ms in gati.toml",
            route=route.pattern,
            timeout_ms=timeout_ms,
        ) from None
    finally:
        request_context.reset(token)
    lctx.phase = "responding"
    if isinstance(value, web.StreamResponse):
        return value  # the handler built its own aiohttp response (streaming, files)
    if value is not None and not res.has_body:
        res.json(value)
    return res.to_aiohttp()


async def _call(route: Route, *args: Any) -> Any:
    if inspect.iscoroutinefunction(route.handler):
        return await route.handler(*args)
    # A plain def may block; it runs in a worker thread (with this request's contextvars). On timeout the
    # client gets its 504 at once, but Python cannot stop the thread: it runs on until it returns.
    result = await asyncio.to_thread(route.handler, *args)
    return await result if inspect.isawaitable(result) else result


def _error(status: int, body: dict[str, Any], lctx: LocalContext) -> web.Response:
    payload = encode_json({"error": {**body, "request_id": lctx.request_id}})
    return web.Response(status=status, body=payload, content_type="application/json")
