"""The `gati` command.

    gati init DIR                       scaffold a project
    gati serve DIR [--host --port]      serve it over HTTP
    gati module register|list|show|remove|serve
    gati call MODULE METHOD [JSON]      call a module once, in this process
    gati audit [MODULE...]              what modules may do, did, were refused; findings (runtime/reports)
    gati audit diff OLD NEW | verify    permission diff between manifests; check the log's hash chain
    gati deploy k8s --image IMG         write the project's Kubernetes objects (runtime/cli/deploy.py)
    gati versions list|show|diff|check|retire|restore   handler versions (runtime/cli/versions.py)

Every command takes --project DIR (default: the current directory) to find the state
directory (DIR/.gati, or $GATI_HOME). User errors print what went wrong and how to fix
it and exit 1, without a traceback; anything unexpected is one line naming the file that
holds its traceback. Verbs that keep state refuse a folder that is not a project.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Optional

import msgspec
import typer
from aiohttp import web
from rich.markup import escape
from rich.table import Table

from runtime.cli.audit import audit_app
from runtime.cli.build import build_command
from runtime.cli.codegen import codegen_app
from runtime.cli.common import (
    JsonOpt,
    LogFormatOpt,
    ProjectOpt,
    Terminated,
    err,
    open_state,
    out,
    print_json,
    run,
    user_errors,
)
from runtime.cli.contracts import contracts_app
from runtime.cli.deploy import deploy_app
from runtime.cli.dev import dev_command
from runtime.cli.doctor import doctor_command
from runtime.cli.drift import DriftWatch
from runtime.cli.listen import cannot_listen
from runtime.cli.new import new_app
from runtime.cli.publish import publish_command
from runtime.cli.runtests import TEST_SETTINGS, test_command
from runtime.cli.serving import claim_state
from runtime.cli.version import main_options
from runtime.cli.versions import versions_app
from runtime.core.call import CallContext
from runtime.core.errors import BadPayload, GatiError
from runtime.core.secrets import configured as configured_secrets
from runtime.http.app import PROJECT, build_app
from runtime.http.logs import access_log_options, setup_logging
from runtime.http.project import PROJECT_TEMPLATES, is_project, load_settings, scaffold
from runtime.http.workers import default_count, serve_workers
from runtime.modules import ModuleManager, register_module
from runtime.modules.grpc_module_server import serve_module

# pretty_exceptions_enable=False: Rich's traceback is never what a user sees (user_errors catches first).
app = typer.Typer(
    name="gati", help="Serve handlers that call sandboxed modules.", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False
)
module_app = typer.Typer(help="Register, inspect, remove and serve modules.", no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(module_app, name="module")
app.add_typer(audit_app, name="audit")
app.add_typer(codegen_app, name="codegen")
app.add_typer(contracts_app, name="contracts")
app.add_typer(deploy_app, name="deploy")
app.add_typer(versions_app, name="versions")

# project --------------------------------------------------------------------------------


@app.command()
@user_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project (new or empty).")],
    template: Annotated[str, typer.Option("--template", "-t", help=f"The starting project: {', '.join(PROJECT_TEMPLATES)}.")] = "hello",
    as_json: JsonOpt = False,
) -> None:
    """Scaffold a project: handlers/, modules/, tests/ and gati.toml (--template: see gati init --help)."""
    root = scaffold(directory, template)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    if as_json:
        return print_json({"dir": str(root), "template": template, "files": files})
    out.print(f"created {escape(str(root))} ({PROJECT_TEMPLATES[template]})", highlight=False)
    for f in files:
        out.print(f"  {escape(f)}", highlight=False)
    out.print(f"next: gati test --project {directory}   then: gati dev {directory}", highlight=False)


@app.command()
@user_errors
def serve(
    directory: Annotated[Path, typer.Argument(help="The project to serve.")] = Path("."),
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default: host in gati.toml, section \\[server]).")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="TCP port (default: port in gati.toml, section \\[server]).")] = None,
    workers: Annotated[
        Optional[int], typer.Option(min=1, help="Processes serving the port together (default: one per core; see docs/performance.md).")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log a line per request (written to stderr in batches, every 50 ms).")] = True,
    log_format: LogFormatOpt = "text",
) -> None:
    """Serve a project over HTTP; its modules are registered on start."""
    setup_logging(log_format)
    settings = load_settings(directory)
    host, port = host or settings.server.host, port or settings.server.port
    count = workers or default_count()
    if settings.playground.enabled:
        # The playground's live list, gates and replays live in one process: every request must reach it.
        if workers is not None and workers > 1:
            raise GatiError(
                f"the playground needs one serving process, not --workers {workers}",
                fix="serve with --workers 1 (the default with the playground), or set [playground] enabled = false",
            )
        count = 1
    drift = DriftWatch(directory)  # warns of modules on disk that are not what is served
    if is_project(directory):  # once per `gati serve`, whatever its workers
        claim_state(directory, settings, port)
    try:
        if count == 1:
            application = build_app(directory, telemetry=True, host=host)

            def ready(_: str) -> None:
                drift.start()
                out.print(f"gati: serving {application[PROJECT].dir} on http://{host}:{port} (Ctrl+C stops)", highlight=False)
                if settings.playground.enabled:
                    out.print(f"gati: the playground is on http://{host}:{port}{settings.playground.path}/", highlight=False)

            web.run_app(application, host=host, port=port, print=ready, **access_log_options(access_log, log_format))
        else:

            def all_ready(bound: int) -> None:
                drift.start()
                out.print(f"gati: serving {directory.resolve()} on http://{host}:{bound} with {count} workers (Ctrl+C stops)", highlight=False)

            serve_workers(directory, host, port, count, all_ready, access_log=access_log, log_format=log_format)
    except OSError as exc:
        raise cannot_listen(host, port, exc) from None
    finally:
        drift.stop()


# modules --------------------------------------------------------------------------------


@module_app.command("register")
@user_errors
def module_register(
    path: Annotated[Path, typer.Argument(help="A module folder holding module.toml (or the file itself).")],
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Register a module (again, after a rebuild): validates its manifest and records its artifact's sha256."""
    with open_state(project) as state:
        s = register_module(state, path).summary()
    if as_json:
        return print_json(s)
    out.print(f"registered {s['name']} {s['version']} ({s['kind']}), sha256 {s['artifact_sha256'][:12]}", highlight=False)


@module_app.command("list")
@user_errors
def module_list(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List registered modules (the newest version of each)."""
    with open_state(project) as state:
        summaries = [r.summary() for r in state.registry.all()]
    if as_json:
        return print_json(summaries)
    if not summaries:
        out.print("no modules registered; add one with: gati module register PATH")
        return
    table = Table("name", "version", "kind", "methods", "sha256")
    for s in summaries:
        table.add_row(s["name"], s["version"], s["kind"], ", ".join(s["methods"]), s["artifact_sha256"][:12])
    out.print(table)


@module_app.command("show")
@user_errors
def module_show(name: str, project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Show one module: summary, methods, capabilities and limits."""
    with open_state(project) as state:
        reg = state.registry.get(name)
    m = reg.manifest
    info = {
        **reg.summary(),
        "description": m.description,
        "methods": {k: msgspec.to_builtins(v) for k, v in sorted(m.methods.items())},
        "capabilities": msgspec.to_builtins(m.capabilities),
        "limits": msgspec.to_builtins(m.limits),
    }
    if as_json:
        return print_json(info)
    table = Table(show_header=False, box=None)
    for key in ("name", "version", "kind", "description", "manifest", "artifact_sha256"):
        table.add_row(f"[bold]{key}[/]", escape(str(info[key])))
    for method, spec in info["methods"].items():
        table.add_row("[bold]method[/]", escape(f"{method} (timeout {m.method_timeout_ms(method)} ms) {spec.get('description', '')}"))
    for cap, value in info["capabilities"].items():
        table.add_row(f"[bold]{cap}[/]", escape(json.dumps(value)) if value else "[dim]none[/]")
    table.add_row("[bold]limits[/]", ", ".join(f"{k}={v}" for k, v in info["limits"].items() if v is not None))
    out.print(table)


@module_app.command("remove")
@user_errors
def module_remove(name: str, project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Forget a module (every registered version of it)."""
    with open_state(project) as state:
        count = state.registry.remove(name)
    if as_json:
        return print_json({"name": name, "versions_removed": count})
    out.print(f"removed {name} ({count} version{'s' if count != 1 else ''})", highlight=False)


@module_app.command("serve")
@user_errors
def module_serve(
    name: str,
    listen: Annotated[str, typer.Option(help="Where to listen, e.g. unix:/tmp/greet.sock")],
    project: ProjectOpt = Path("."),
) -> None:
    """Serve one module over gRPC (gati.module.v1 ModuleService and grpc.health.v1) until stopped."""
    async def serve(manager: Any) -> None:
        err.print(f"gati: serving module {name} on {listen} (Ctrl+C stops)", highlight=False)
        await serve_module(manager, name, listen)

    try:
        _with_manager(project, serve)
    except (KeyboardInterrupt, Terminated):
        pass  # asked to stop; the module's sandbox is closed by now


# calls ------------------------------------------------------------------------


@app.command()
@user_errors
def call(
    module: str,
    method: str,
    payload: Annotated[Optional[str], typer.Argument(help="The payload as JSON (default: {}).")] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Call a module method once, in this process; prints the JSON result (or the error JSON on stderr, exit 1)."""
    async def one_call(manager: Any) -> Any:
        ctx = CallContext(request_id=uuid.uuid4().hex, trace_id=uuid.uuid4().hex, caller="cli")
        return await manager.call(module, method, data, ctx=ctx)

    try:
        try:
            data = json.loads(payload) if payload is not None else {}
        except ValueError as exc:
            raise BadPayload(f"the payload is not JSON: {exc}", fix="quote it for the shell, e.g. '{\"name\": \"x\"}'") from None
        result = _with_manager(project, one_call)
    except GatiError as exc:
        body = {**exc.to_dict(), **({"note": exc.note} if exc.note else {})}  # the CLI's user is the operator
        print(json.dumps({"error": body}, indent=2, ensure_ascii=False, default=str), file=sys.stderr)
        raise typer.Exit(1) from None
    print_json(result)


def _with_manager(project: Path, fn) -> Any:
    """Run fn(manager) on a fresh event loop with a ModuleManager set up as `gati serve` sets it up
    for this project (its state, [egress] hosts, [secrets]); the manager is always closed, also
    on Ctrl+C and SIGTERM (see common.run)."""
    settings = load_settings(project)

    async def main() -> Any:
        with open_state(project) as state:
            secrets = configured_secrets(settings.secrets, Path(project).resolve())
            manager = ModuleManager(state, egress_hosts=dict(settings.egress.hosts), secrets=secrets)
            try:
                return await fn(manager)
            finally:
                await manager.close()

    return run(main)


# the module author's workflow: one file each under runtime/cli/ --------------------------------

app.add_typer(new_app, name="new")
app.command("build")(build_command)
app.command("test", **TEST_SETTINGS)(test_command)
app.command("dev")(dev_command)
app.command("doctor")(doctor_command)
app.command("publish")(publish_command)
app.callback()(main_options)


if __name__ == "__main__":
    app()
