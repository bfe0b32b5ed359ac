"""The playground's page and JSON API, mounted under [playground] path (runtime.http.playground).

    GET    /                          the page (?token= once beyond loopback: runtime.http.playground.access)
    GET    /static/{file}             its script and style
    GET    /api/routes                routes: versions, manifests (runtime.http.handler_manifest), hooks one can gate
    GET    /api/modules               modules: capabilities, limits, health, the audit's may / did / refused
    GET    /api/requests              the latest snapshots, newest first
    GET    /api/requests/{id}         one snapshot with its timeline
    GET    /api/events                server-sent events (runtime.http.playground.live)
    POST   /api/replay                {"id", "mode": "real" | "recorded", "version"?, "headers"?} -> the replay's id
    GET    /api/diff?a=ID&b=ID        two executions side by side
    GET    /api/gates                 gates and the requests waiting at them
    POST   /api/gates                 {"route", "when": "before" | "after", "hook"}
    DELETE /api/gates/{gate}          (its waiting requests go on)
    PUT    /api/paused/{id}/state     the waiting request's lctx state, replaced
    POST   /api/paused/{id}/resume    let it go on
    POST   /api/paused/{id}/fail      {"status"?, "message"?}: end it with an error

Errors are JSON, {"error": {"code", "message", "fix"}}, as the app's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from runtime.core.errors import GatiError
from runtime.http.appstate import Runtime
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.playground.access import Access
from runtime.http.playground.diff import diff
from runtime.http.playground.gates import Gates
from runtime.http.playground.live import Live
from runtime.http.playground.replay import replay
from runtime.http.playground.timeline import decisions, timeline
from runtime.http.project import ProjectError
from runtime.http.request import BadRequest
from runtime.reports.report import build_report

STATIC = Path(__file__).parent / "static"
FILES = {"playground.js": "text/javascript", "playground.css": "text/css"}
PLAYGROUND = web.AppKey("playground", object)


class NotStored(GatiError):
    code = "not_found"
    http_status = 404


class Playground:
    def __init__(self, rt: Runtime, listen_host: str):
        self.rt = rt
        self.base = rt.project.settings.playground.path.rstrip("/")
        self.access = Access(rt.project, rt.secrets, listen_host, self.base)
        self.live = Live()
        self.gates = Gates(rt.gates, self.live.publish)
        rt.recorder.listeners.append(lambda summary: self.live.publish("request", summary))

    # helpers -------------------------------------------------------------------------------

    def _snapshot(self, request_id: str) -> dict[str, Any]:
        store = self.rt.recorder.store
        found = store.get(request_id) if store is not None else None
        if found is None:
            raise NotStored(f"no snapshot of request {request_id}", fix="it may be older than [audit] snapshot_keep allows; reload the list")
        return found

    async def _timeline(self, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        state = self.rt.state
        found = await asyncio.to_thread(decisions, state.audit_path, snapshot["id"]) if state is not None else []
        return timeline(snapshot, found)

    def _route(self, pattern: str):
        return next((r for r in self.rt.router.routes if r.pattern == pattern), None)

    def _hooks(self, route) -> list[str]:
        """The names a gate on route can use: every hook its versions run, and "handler"."""
        names: dict[str, None] = {}
        for served in route.versions.routes() if route.versions else (route,):
            lifecycle = self.rt.plans[id(served)].lifecycle
            lifecycle = getattr(lifecycle, "inner", lifecycle)  # a version served through transformers runs a newer one's
            names.update(dict.fromkeys([h.name for h in lifecycle.before] + ["handler"] + [h.name for h in reversed(lifecycle.after)]))
        return list(names)

    @staticmethod
    def _versions(route) -> list[str]:
        return [v.label for v in route.versions.versions] if route.versions else [route.version]

    # views ---------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        html = (STATIC / "index.html").read_text().replace("{{BASE}}", self.base)
        return web.Response(text=html, content_type="text/html", headers=_NO_STORE)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in FILES:
            raise NotStored(f"no playground file {name}", fix="reload the page")
        return web.Response(body=(STATIC / name).read_bytes(), content_type=FILES[name], headers=_NO_STORE)

    async def routes(self, request: web.Request) -> web.StreamResponse:
        out = []
        for route in self.rt.router.routes:
            vs = route.versions  # several versions live (docs/versions.md)
            own = {v.label: v.route for v in vs.versions} if vs else {route.version: route}
            out.append({
                "route": route.pattern, "methods": sorted(vs.methods if vs else route.methods), "versions": self._versions(route),
                "default": vs.default if vs else route.version, "graph": vs.describe() if vs else None,
                "hooks": self._hooks(route), "manifests": {label: HandlerManifest.of(r).to_dict() for label, r in own.items()},
            })
        return web.json_response(out, dumps=_dumps)

    async def modules(self, request: web.Request) -> web.StreamResponse:
        state, manager = self.rt.state, self.rt.manager
        if state is None:
            return web.json_response([])
        health = manager.health() if manager else {}
        report = await asyncio.to_thread(lambda: build_report(state).to_dict())
        audit = {m["name"]: m for m in report["modules"]}
        out = []
        for reg in state.registry.all():
            m = reg.manifest
            seen = audit.get(reg.name, {})
            out.append({
                "name": reg.name, "version": m.version, "kind": m.kind, "health": health.get(reg.name, "idle"),
                "methods": sorted(m.methods), "capabilities": msgspec.to_builtins(m.capabilities), "limits": msgspec.to_builtins(m.limits),
                "may": seen.get("may", []), "did": seen.get("exercised", []), "refused": seen.get("refused", []), "unused": seen.get("unused", []),
            })
        return web.json_response(out, dumps=_dumps)

    async def requests(self, request: web.Request) -> web.StreamResponse:
        store = self.rt.recorder.store
        limit = min(int(request.query.get("limit", "100")), 1000)
        return web.json_response(store.recent(limit) if store is not None else [], dumps=_dumps)

    async def one(self, request: web.Request) -> web.StreamResponse:
        snapshot = self._snapshot(request.match_info["id"])
        return web.json_response({"snapshot": snapshot, "timeline": await self._timeline(snapshot)}, dumps=_dumps)

    async def events(self, request: web.Request) -> web.StreamResponse:
        return await self.live.stream(request)

    async def replay(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        snapshot = self._snapshot(str(body.get("id", "")))
        route = self._route(snapshot["route"])
        if route is None:
            raise NotStored(f"route {snapshot['route']} is no longer served", fix="replay a request of a route that is")
        versions = self._versions(route)
        version = str(body.get("version") or "") or None
        if version is not None and version not in versions:
            raise NotStored(f"route {snapshot['route']} has no live version {version!r}", fix=f"choose one of: {', '.join(versions) or '(none)'}")
        if route.versions is None:
            version = None  # one version: nothing to choose, no header to send
        elif version is None:
            version = snapshot["version"] if snapshot["version"] in versions else None  # the version it ran, when still live
        headers = body.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise BadRequest("headers is an object of header names to values", fix='e.g. {"Authorization": "Bearer ..."}')
        return web.json_response(await replay(request, self.rt.recorder, snapshot, mode=body.get("mode", "real"), version=version, headers=headers))

    async def diff(self, request: web.Request) -> web.StreamResponse:
        a, b = self._snapshot(request.query.get("a", "")), self._snapshot(request.query.get("b", ""))
        return web.json_response(diff(a, b, await self._timeline(a), await self._timeline(b)), dumps=_dumps)

    async def list_gates(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"gates": self.gates.views(), "paused": [p.view() for p in self.gates.paused.values()]}, dumps=_dumps)

    async def add_gate(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        route = self._route(str(body.get("route", "")))
        if route is None:
            raise NotStored(f"no route {body.get('route')!r}", fix="choose one of the routes listed")
        gate = self.gates.set(route.pattern, str(body.get("when", "before")), str(body.get("hook", "handler")), self._hooks(route))
        return web.json_response(gate.view(), status=201)

    async def remove_gate(self, request: web.Request) -> web.StreamResponse:
        if not self.gates.remove(request.match_info["gate"]):
            raise NotStored(f"no gate {request.match_info['gate']}", fix="reload the list")
        return web.json_response({"removed": request.match_info["gate"]})

    async def state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.gates.set_state(request.match_info["id"], await _json(request)), dumps=_dumps)

    async def resume(self, request: web.Request) -> web.StreamResponse:
        self.gates.resume(request.match_info["id"])
        return web.json_response({"resumed": request.match_info["id"]})

    async def fail(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request) if request.can_read_body else {}
        self.gates.fail(request.match_info["id"], int(body.get("status", 500)), str(body.get("message", "")))
        return web.json_response({"failed": request.match_info["id"]})


_NO_STORE = {"Cache-Control": "no-store"}
_encoder = msgspec.json.Encoder(enc_hook=repr)  # what a handler left in lctx may not be JSON: shown as its repr


def _dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


async def _json(request: web.Request) -> Any:
    try:
        return msgspec.json.decode(await request.read()) if request.can_read_body else {}
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", fix="send a JSON body") from None


def add_playground(app: web.Application, rt: Runtime, listen_host: str) -> Playground:
    """Serve the playground under [playground] path; refuses (ProjectError) where it would be open beyond loopback."""
    play = Playground(rt, listen_host)
    base = play.base
    for route in rt.router.routes:
        if route.pattern == base or route.pattern.startswith(base + "/"):
            raise ProjectError(
                rt.project.dir / "gati.toml", "playground.path", f"{base} is also served by handlers/{route.rel}",
                'rename the handler file, or set [playground] path = "/another"',
            )

    def guarded(view):
        async def run(request: web.Request) -> web.StreamResponse:
            entered = play.access.enter(request)  # ?token= on any page: into the cookie, out of the address
            if entered is not None:
                return entered
            refused = play.access.refused(request)
            if refused is not None:
                return refused
            try:
                return await view(request)
            except GatiError as err:
                return web.json_response({"error": err.to_dict()}, status=err.http_status if 400 <= err.http_status < 600 else 500)

        return run

    r = app.router
    r.add_get(base, guarded(play.page))
    r.add_get(base + "/", guarded(play.page))
    r.add_get(base + "/static/{name}", guarded(play.static))
    r.add_get(base + "/api/routes", guarded(play.routes))
    r.add_get(base + "/api/modules", guarded(play.modules))
    r.add_get(base + "/api/requests", guarded(play.requests))
    r.add_get(base + "/api/requests/{id}", guarded(play.one))
    r.add_get(base + "/api/events", guarded(play.events))
    r.add_post(base + "/api/replay", guarded(play.replay))
    r.add_get(base + "/api/diff", guarded(play.diff))
    r.add_get(base + "/api/gates", guarded(play.list_gates))
    r.add_post(base + "/api/gates", guarded(play.add_gate))
    r.add_delete(base + "/api/gates/{gate}", guarded(play.remove_gate))
    r.add_put(base + "/api/paused/{id}/state", guarded(play.state))
    r.add_post(base + "/api/paused/{id}/resume", guarded(play.resume))
    r.add_post(base + "/api/paused/{id}/fail", guarded(play.fail))

    async def stopping(app: web.Application) -> None:
        play.gates.close()
        play.live.close()

    app.on_shutdown.append(stopping)
    app[PLAYGROUND] = play
    return play
