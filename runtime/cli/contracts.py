"""`gati contracts check`: what handlers send modules against the modules' schemas (runtime/http/contracts.py).

    gati contracts check [--json] [--strict]

Lists every incompatible pair by handler, line, module method and field path; exit 1 when there
is one (with --strict, also for warnings: bounds a module adds that the handler's types do not
show). Modules are the project's own (modules/*, [modules] paths), read afresh; pins are checked
against the versions registered in the state directory as well. Every handler file is checked,
each version of a versioned route with its own calls and MODULES pins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from runtime.cli.common import JsonOpt, ProjectOpt, out, print_json, user_errors
from runtime.codegen.generate import project_modules
from runtime.core.manifest import Manifest, load_manifest
from runtime.core.state import StateDir
from runtime.http.contracts import check_contracts, describe
from runtime.http.project import load_project
from runtime.http.routing import load_routes

contracts_app = typer.Typer(help="Check handlers against the modules they call.", no_args_is_help=True)

COLOURS = {"error": "bold red", "warning": "yellow", "info": "dim"}


@contracts_app.command("check")
@user_errors
def check(
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list what could not be checked.")] = False,
) -> None:
    """Each handler's module calls against the module's input and output schemas, and each pin against the registered versions."""
    proj = load_project(project)
    router = load_routes(proj.handlers_dir)
    modules = {m.name: m for m in project_modules(proj, registered=True)}
    # Every version a pin may reach, with its manifest: the project's module folders (several versions
    # of one name may sit side by side) and what the state directory registered.
    manifests: dict[str, dict[str, Manifest]] = {}
    if (proj.dir / ".gati").exists():
        state = StateDir.open(proj.dir)
        try:
            for n in state.registry.names():
                for r in state.registry.versions(n):
                    manifests.setdefault(n, {})[r.manifest.version] = r.manifest
        finally:
            state.close()
    for folder in proj.module_dirs():
        m = load_manifest(folder, built=False).manifest
        manifests.setdefault(m.name, {})[m.version] = m
    findings = check_contracts(router, modules, manifests=manifests)
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    if as_json:
        print_json({"ok": not errors and not (strict and warnings), "findings": [f.to_dict() for f in findings]})
    else:
        for f in findings:
            if verbose or f.severity != "info":
                out.print(f"[{COLOURS[f.severity]}]{f.severity:7}[/] {escape(describe(f))}", highlight=False)
        out.print(f"{len(errors)} incompatible, {len(warnings)} to review", highlight=False)
    if errors or (strict and warnings):
        raise typer.Exit(1)
