"""One request, from ingress to its execution record: the path every handler call takes.

    ingress (request id, trace span, headers, auth, rate limit, body size)    runtime.http.ingress
      -> route (method + path)                                                 runtime.http.routing
      -> lifecycle under the route's timeout: request validation, before hooks,
         handler(req, res, gctx, lctx), after hooks, response validation       runtime.http.lifecycle
         on failure: catch hooks, compensations
      -> cleanup hooks (always) -> X-Request-Id, traceparent
      -> metrics, span end, execution record                                   runtime.http.metrics, runtime.http.executions
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from opentelemetry.trace import Status, StatusCode

from runtime.core.call import CallContext, request_context
from runtime.core.errors import GatiError, HandlerTimeout
from runtime.core.secrets import Grant, current_grant
from runtime.http.appstate import RUNTIME, Runtime
from runtime.http.context import LocalContext, current_request
from runtime.http.executions import execution_record
from runtime.http.request import Request
from runtime.http.response import Response, encode_json
from runtime.http.routing import Route

log = logging.getLogger("gati.http")


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every URL the app's own routes do not claim: ingress, route, lifecycle, then the records."""
    rt = request.app[RUNTIME]
    start = time.perf_counter()
    lctx = rt.ingress.open(request)
    request_token = current_request.set(lctx)  # for log lines that have no lctx at hand (runtime.http.logs)
    span = rt.tracer.start(request.method, request.headers.get("traceparent"), lctx, {"gati.request_id": lctx.request_id})
    route: Route | None = None
    try:
        rt.ingress.check(request)
        match = rt.router.match(request.method, request.rel_url.raw_path)
        route = match.route
        lctx.route, lctx.version, lctx.handler = route.pattern, route.version, route.rel
        if span.is_recording():
            span.update_name(f"{request.method} {route.pattern}")
            span.set_attributes({"http.route": route.pattern, "gati.handler": route.rel, "gati.version": route.version})
        await rt.ingress.admit(request, route, lctx)
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
    current_request.reset(request_token)
    return resp


async def _handle(rt: Runtime, request: web.Request, route: Route, params: dict[str, str], lctx: LocalContext) -> web.StreamResponse:
    lifecycle = rt.lifecycles[id(route)]
    timeout_ms = route.timeout_ms or rt.project.settings.server.handler_timeout_ms
    req, res = Request(request, params, rt.ingress.max_body(route)), Response()
    # gctx is shared; these contextvars tell it which request (deadline, secret grants) a call belongs to.
    call_token = request_context.set(
        CallContext(
            request_id=lctx.request_id, trace_id=lctx.trace_id, caller=f"handler:{route.pattern}",
            deadline=time.monotonic() + timeout_ms / 1000, pins=rt.pins.get(id(route)),  # its MODULES (runtime.http.module_pins)
        )
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
        rt.executions.write(execution_record(request, route, lctx, status, seconds, snapshot=rt.project.settings.audit.snapshots))


def _error(status: int, body: dict[str, Any], lctx: LocalContext) -> web.Response:
    payload = encode_json({"error": {**body, "request_id": lctx.request_id}})
    return web.Response(status=status, body=payload, content_type="application/json")
