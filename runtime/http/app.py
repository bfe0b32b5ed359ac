"""The HTTP side of gati: `build_app(project_dir)` wires a project into an aiohttp application.

    runtime.http.appstate   Runtime, what the app shares between requests (app[RUNTIME])
    runtime.http.lifespan   start-up (modules, gctx, STARTUP) and shutdown
    runtime.http.system     /healthz, /readyz, /metrics
    runtime.http.dispatch   one request: ingress, route, lifecycle, execution record
    runtime.reports         the audit report over HTTP, when [audit] endpoint names a path
    runtime.http.recorder   replayable snapshots, when [audit] snapshots or the playground is on
    runtime.http.playground the playground, when [playground] enabled (or asked for: gati dev)

Handler files and hooks.py are imported here, when the app is built; modules start on start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from aiohttp import web

from runtime.core.secrets import Grant
from runtime.core.secrets import configured as configured_secrets
from runtime.http.appstate import RUNTIME, STATE, Runtime
from runtime.http.auth import Authenticator
from runtime.http.catchall import add_catchall
from runtime.http.dispatch import dispatch
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.ingress import Ingress
from runtime.http.lifecycle import Lifecycle
from runtime.http.lifespan import draining, lifespan
from runtime.http.metrics import Metrics
from runtime.http.module_pins import check_pins, declared_pins
from runtime.http.plan import RoutePlan
from runtime.http.playground import add_playground
from runtime.http.project import Project, ProjectError, load_project
from runtime.http.project_hooks import load_project_hooks
from runtime.http.recorder import Recorder
from runtime.http.routing import Router, load_routes
from runtime.http.system import add_system_routes
from runtime.http.telemetry import Telemetry
from runtime.http.telemetry import from_env as telemetry_from_env
from runtime.http.tracing import Tracer
from runtime.http.versions.transformers import TransformedLifecycle
from runtime.modules.manager import Intercept
from runtime.reports.endpoint import add_audit_routes

# For those who hold the app: the project it serves (the CLI), its tracer (to add exporters);
# app[STATE] (runtime.http.appstate) is its state directory once started.
PROJECT = web.AppKey("project", Project)
TRACER = web.AppKey("tracer", Tracer)


def build_app(
    project_dir: str | Path,
    *,
    intercept: Intercept | None = None,
    unregistered: Iterable[Path] = (),
    telemetry: bool = False,
    playground: bool | None = None,
    host: str | None = None,
) -> web.Application:
    """The aiohttp application serving a project. Handler files and hooks.py are imported now, modules start on startup.

    telemetry: configure OpenTelemetry from the OTEL_* variables (runtime.http.telemetry), as
    `gati serve` and `gati dev` do; once per process, since it installs the global providers.
    intercept and unregistered are the testing kit's (runtime.testing): see Runtime. playground: serve the
    playground (None: as [playground] enabled says); host: where the server listens (default [server] host),
    beyond loopback the playground needs its token."""
    project = load_project(project_dir)
    otel = telemetry_from_env(project.dir.name) if telemetry else Telemetry()
    s = project.settings
    play = s.playground.enabled if playground is None else playground
    router = load_routes(project.handlers_dir)
    hooks = load_project_hooks(project.hooks_file)
    secrets = configured_secrets(project.settings.secrets, project.dir)
    rt = Runtime(
        project=project,
        router=router,
        hooks=hooks,
        secrets=secrets,
        ingress=Ingress(s.ingress, Authenticator(s.auth, secrets, s.ingress.api_key_header)),
        metrics=Metrics(project.dir.name, otel.metric_readers, otel.resource),
        tracer=Tracer(otel.tracer_provider),
        telemetry=otel,
        global_grant=Grant(hooks.secrets, "hooks.py", "add {name} to SECRETS in hooks.py"),
        intercept=intercept,
        unregistered=frozenset(Path(p).resolve() for p in unregistered),
        recorder=Recorder(s.audit) if s.audit.snapshots or play else None,
        gates={} if play else None,
    )
    use_routes(rt, router)
    largest_body = max([s.ingress.max_body_bytes] + [r.max_body_bytes or 0 for r in router.served()])
    app = web.Application(client_max_size=largest_body + 1)  # our Ingress gives the 413 with its fix
    app[RUNTIME], app[PROJECT], app[TRACER] = rt, project, rt.tracer
    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(draining)
    add_system_routes(app, rt)
    _audit_endpoint(app, rt)
    if play:
        add_playground(app, rt, host or s.server.host)
    # Our Router owns the rest of the URL space: file-based routes, with our own 404/405 bodies.
    add_catchall(app, dispatch)
    return app


def use_routes(rt: Runtime, router: Router) -> None:
    """Serve router's routes from now on: their lifecycles and secret grants, swapped in at once.

    No await runs between a request's route match and its lifecycle lookup (runtime.http.dispatch),
    so a request sees either the old routes or the new ones whole (reload_handlers, `gati dev`)."""
    s, hooks = rt.project.settings, rt.hooks
    plans, manifests = {}, {}
    for route in router.served():
        manifests[id(route)] = manifest = HandlerManifest.of(route)
        lifecycle = Lifecycle.build(
            route.handler,
            hooks.hooks,
            route.hooks,
            request_type=route.request_type,
            response_type=route.response_type,
            hook_timeout_ms=s.server.hook_timeout_ms,
            name=route.rel,
            gates=rt.gates,
        )
        if route.pinned is not None:  # an older version served by this one through transformers
            p = route.pinned
            lifecycle = TransformedLifecycle(lifecycle, p.chain, p.request_type, p.response_type, f"version {p.label} of {route.pattern}")
        plans[id(route)] = RoutePlan(
            route=route,
            lifecycle=lifecycle,
            grant=Grant(route.secrets | hooks.secrets, f"handler {route.rel}", f"add {{name}} to SECRETS in handlers/{route.rel}"),
            timeout_ms=route.timeout_ms or s.server.handler_timeout_ms,
            max_body=rt.ingress.max_body(route),
            rate=route.rate_limit or rt.ingress.default_rate,
            caller=f"handler:{route.pattern}",
            fingerprint=manifest.fingerprint(),
            pins=declared_pins(route) or None,
        )
    if rt.manager is not None:  # a reload while serving: its pins must reach registered versions too
        check_pins(plans.values(), rt.manager.versions.registered, skip=lambda name: rt.intercept is not None and name not in rt.manager.state.registry.names())
    rt.router, rt.plans, rt.manifests = router, plans, manifests
    if rt.timescape is not None:  # a reload while serving: the store learns the new versions, marks carry over
        rt.timescape.adopt(router, manifests)


def reload_handlers(app: web.Application) -> Router:
    """Import handlers/ again and serve it; a file that fails to import raises RouteError and the old routes stay."""
    rt = app[RUNTIME]
    router = load_routes(rt.project.handlers_dir)
    use_routes(rt, router)
    return router


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
