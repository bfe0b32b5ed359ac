"""One request, from ingress to its execution record: the path every handler call takes.

    ingress (request id, trace span, headers, auth, rate limit, body size)    runtime.http.ingress
      -> route (method + path), its version (header, date pin, query, default) runtime.http.routing, runtime.http.versions
      -> lifecycle under the route's timeout: request validation, before hooks,
         handler(req, res, gctx, lctx), after hooks, response validation       runtime.http.lifecycle
         on failure: catch hooks, compensations
      -> cleanup hooks (always) -> X-Request-Id, traceparent
      -> metrics, span end, execution record, snapshot                         runtime.http.metrics, runtime.http.executions,
                                                                               runtime.http.recorder
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from runtime.core.call import CallContext, request_context
from runtime.core.errors import GatiError, HandlerTimeout
from runtime.core.secrets import Grant, current_grant
from runtime.http.appstate import RUNTIME, Runtime
from runtime.http.context import LocalContext, current_request
from runtime.http.executions import execution_record
from runtime.http.request import Request
from runtime.http.response import Response, encode_json
from runtime.http.plan import RoutePlan
from runtime.http.routing import Route

log = logging.getLogger("gati.http")


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every URL the app's own routes do not claim: ingress, route, lifecycle, then the records."""
    rt = request.app[RUNTIME]
    start = time.perf_counter()
    lctx = rt.ingress.open(request)
    request_token = current_request.set(lctx)  # for log lines that have no lctx at hand (runtime.http.logs)
    rt.tracer.start(request, lctx)  # a span (lctx.span) only when something exports
    route: Route | None = None
    error = None  # error.type of the request's span
    try:
        rt.ingress.check(request)
        match = rt.router.match(request.method, request.rel_url.raw_path)
        route = match.route
        if route.versions is not None:  # several versions live: the one this request asks for (runtime.http.versions)
            route = route.versions.pick(request)
        # The plan is looked up with no await since the match: a reload swaps routes and plans together.
        plan = rt.plans[id(route)]
        lctx.route, lctx.version, lctx.handler = route.pattern, route.version, route.rel
        if lctx.span is not None:
            rt.tracer.routed(lctx, request.method)
        waiting = rt.ingress.admit(request, plan, lctx)
        if waiting is not None:  # a rate limit shared across instances
            await waiting
        resp = await _handle(rt, request, plan, match.params, lctx)
    except GatiError as err:
        error = err.code
        level = logging.ERROR if err.http_status >= 500 else logging.INFO
        note = f" [{err.note}]" if err.note else ""  # the operator's, never in the body
        log.log(level, "%s %s -> %s %s%s (request %s)", request.method, request.path, err.http_status, err, note, lctx.request_id)
        resp = _error(err.http_status, err.to_dict(), lctx)
        resp.headers.update(getattr(err, "http_headers", None) or {})
        lctx.failed = True
    except Exception as exc:
        error = type(exc).__qualname__
        # Details stay in the log: an exception message may hold things a client must not see.
        log.exception("%s %s failed (request %s)", request.method, request.path, lctx.request_id)
        message = f"the handler failed; the server log has the details under request id {lctx.request_id}"
        resp = _error(500, {"code": "internal", "message": message}, lctx)
        lctx.failed = True
    finally:
        if lctx.needs_cleanup():
            await lctx.cleanup(rt.project.settings.server.hook_timeout_ms / 1000)
        else:
            lctx.phase = "done"
    headers = resp.headers
    headers["X-Request-Id"] = lctx.request_id
    headers["traceparent"] = lctx.traceparent
    if lctx.version:
        headers["Gati-Version"] = lctx.version
        if route.announce:  # DEPRECATED / SUNSET (runtime.http.versions.deprecation), made at load
            headers.extend(route.announce)
    _finish(rt, request, route, lctx, resp, time.perf_counter() - start, error)
    current_request.reset(request_token)
    return resp


async def _handle(rt: Runtime, request: web.Request, plan: RoutePlan, params: dict[str, str], lctx: LocalContext) -> web.StreamResponse:
    req, res = Request(request, params, plan.max_body), Response()
    timeout_s = plan.timeout_s
    # gctx is shared; these contextvars tell it which request (deadline, secret grants) a call belongs to.
    call_token = request_context.set(
        CallContext.of_request(
            lctx.request_id, lctx.trace_id, plan.caller, time.monotonic() + timeout_s,
            plan.pins,  # its MODULES (runtime.http.module_pins)
            lctx,  # its traceparent, tracestate and baggage, read only when a module is called
        )
    )
    grant = plan.grant
    if grant.names:
        grant = Grant(grant.names, grant.who, grant.where, on_read=lambda name: lctx.emit("secret:read", name=name))
    grant_token = current_grant.set(grant)
    deadlines = rt.deadlines
    try:
        watch = lctx.watch = deadlines.watch(timeout_s)  # a debug gate holds it while paused
        try:
            try:
                value = await plan.lifecycle.run(req, res, rt.gctx, lctx)
            finally:
                timed_out = deadlines.end(watch)
        except asyncio.CancelledError:
            if not timed_out:
                raise  # not ours: the client went away, the server stops
            route = plan.route
            err = HandlerTimeout(
                f"{route.rel} did not finish within {plan.timeout_ms} ms (hooks and handler together)",
                fix=f"make it faster, or raise TIMEOUT_MS in {route.file.name} or [server] handler_timeout_ms in gati.toml",
                route=route.pattern,
                timeout_ms=plan.timeout_ms,
            )
            lctx.emit("timeout", timeout_ms=plan.timeout_ms)
            return await _recover(rt, request, plan, lctx, req, err, None)
        except Exception as exc:
            return await _recover(rt, request, plan, lctx, req, exc, exc)
    finally:
        current_grant.reset(grant_token)
        request_context.reset(call_token)
    lctx.phase = "responding"
    if hasattr(value, "prepare"):
        return value  # the handler built its own aiohttp response (streaming, files)
    return res.to_aiohttp()


async def _recover(rt: Runtime, request: web.Request, plan: RoutePlan, lctx: LocalContext, req: Request, err: Exception, raised: Exception | None) -> web.StreamResponse:
    """Catch hooks and compensations for err; the catch hooks' response, or err raised again."""
    res = Response()  # what the handler half-wrote is not the error's answer
    if await plan.lifecycle.recover(err, req, res, rt.gctx, lctx):
        log.info("%s %s: %s handled by a catch hook (request %s)", request.method, request.path, type(err).__name__, lctx.request_id)
        lctx.phase = "responding"
        return res.to_aiohttp()
    if err is raised:
        raise err
    raise err from None


def _finish(rt: Runtime, request: web.Request, route: Route | None, lctx: LocalContext, resp: web.StreamResponse, seconds: float, error: str | None) -> None:
    status = resp.status
    pattern = route.pattern if route else "(unmatched)"
    rt.metrics.request(pattern, request.method, status, seconds)
    alerts = [e for e in lctx.events if e["type"] == "alert"] if lctx.failed else ()
    for alert in alerts:
        rt.metrics.alert(alert.get("reason", "alert"))
    if lctx.span is not None:
        rt.tracer.end(lctx, status, error)
    if rt.executions is not None and route is not None:
        plan = rt.plans.get(id(route))  # none when the version asked for does not exist
        fingerprint = plan.fingerprint if plan is not None else ""
        rt.executions.write(execution_record(request, route, lctx, status, seconds, fingerprint=fingerprint))
    if rt.recorder is not None and route is not None:
        rt.recorder.finish(request, route, lctx, resp, seconds)


def _error(status: int, body: dict[str, Any], lctx: LocalContext) -> web.Response:
    payload = encode_json({"error": {**body, "request_id": lctx.request_id}})
    return web.Response(status=status, body=payload, content_type="application/json")
