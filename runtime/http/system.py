"""The routes every app serves beside its handlers: liveness, readiness, metrics and the OpenAPI document.

    [server] health_path  (default /healthz)   200 while the process runs
    [server] ready_path   (default /readyz)    200 once started and every module and pub/sub is up, else 503;
                                               "versions" lists module versions out of service
                                               (runtime/modules/health.py); one that is a module's
                                               active version makes that module "down"
    [server] metrics_path (default /metrics)   Prometheus text format (runtime.http.metrics)
    [server] openapi_path (default /openapi.json)   the routes as OpenAPI 3.1 (runtime.http.openapi);
                                               ?version=N (or Gati-Version: N) as a client of version N sees them
    [server] versions_path (default /_gati/versions) every route's versions: graph, states, served times
                                               (runtime.http.versions.service); /readyz's "versions"
                                               also lists handler versions failing HEALTH ("/route@2")

A path set to "" is not served; a path a handler file also claims stops start-up.
"""

from __future__ import annotations

from aiohttp import web

from runtime.http.appstate import Runtime
from runtime.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from runtime.http.openapi import openapi_view
from runtime.http.project import ProjectError


def add_system_routes(app: web.Application, rt: Runtime) -> None:
    server = rt.project.settings.server
    taken = {r.pattern: r for r in rt.router.routes}

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        modules = rt.manager.health() if rt.manager else {}
        out_of_service = rt.manager.out_of_service() if rt.manager else {}
        if rt.timescape is not None:  # handler versions failing their HEALTH checks: "/route@2"
            out_of_service = {**out_of_service, **rt.timescape.out_of_service()}
        pubsub = "ok" if rt.bus is not None and rt.bus.healthy() else "down"
        shared = rt.state.health() if rt.state else {}  # cluster mode: {"cluster": "ok" | "down"}
        is_ready = rt.status == "ready" and pubsub == "ok" and "down" not in modules.values() and "down" not in shared.values()
        body = {
            "status": rt.status if rt.status != "ready" or is_ready else "degraded",
            "modules": modules,
            "versions": {v: {"status": "down", "reason": why} for v, why in sorted(out_of_service.items())},
            "pubsub": pubsub,
            **shared,
        }
        return web.json_response(body, status=200 if is_ready else 503)

    async def versions(request: web.Request) -> web.Response:
        if rt.timescape is None:
            return web.json_response({"error": {"code": "starting", "message": "not started yet"}}, status=503)
        return web.json_response(rt.timescape.describe())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=rt.metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    openapi = openapi_view(rt.project, lambda: rt.router) if server.openapi_path else None
    for key, path, view in (
        ("health_path", server.health_path, health),
        ("ready_path", server.ready_path, ready),
        ("metrics_path", server.metrics_path, metrics),
        ("openapi_path", server.openapi_path, openapi),
        ("versions_path", server.versions_path, versions),
    ):
        if not path:
            continue
        if path.rstrip("/") in taken:
            raise ProjectError(
                rt.project.dir / "gati.toml", f"server.{key}", f"{path} is also served by handlers/{taken[path.rstrip('/')].rel}",
                f'rename the handler file, or set [server] {key} = "/another" (or "" to turn it off)',
            )
        app.router.add_get(path, view)
