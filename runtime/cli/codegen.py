"""`gati codegen`: typed files from the project's contracts (runtime/codegen).

    gati codegen openapi [OUT]                 the OpenAPI 3.1 document (stdout without OUT or a setting)
    gati codegen typescript [OUT/]             a TypeScript SDK: types and a fetch client per route
        --version N                            either one as a client pinned to version N (or a date) sees the API
    gati codegen python [OUT/]                 gati_modules.pyi: the modules' payloads as TypedDicts and Protocols
    gati codegen module NAME --lang L [OUT/]   a module author's stubs: python (SDK server), c (gati.h), rust (gati.rs)
    gati codegen [--check]                     every output [codegen] in gati.toml names

`--check` writes nothing: it exits 1 listing the files that differ from what would be
generated (CI: checked-in output is never stale). OUT defaults to the [codegen] setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from runtime.cli.common import ProjectOpt, err, out, user_errors
from runtime.codegen.generate import KINDS, generate, module_output
from runtime.codegen.module_stubs import LANGS
from runtime.codegen.output import CodegenError, Output
from runtime.http.project import load_project

codegen_app = typer.Typer(help="Generate typed files from the project's contracts: OpenAPI, TypeScript SDK, Python and module stubs.")

CheckOpt = Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when the files on disk differ from what would be generated.")]
VersionOpt = Annotated[
    Optional[str],
    typer.Option("--version", help="Describe the API as a client pinned to this version (a label, or a date YYYY-MM-DD) sees it (docs/versions.md)."),
]
RegisteredOpt = Annotated[bool, typer.Option("--registered", help="Also type modules registered in the state directory, not only the project's own.")]


@codegen_app.callback(invoke_without_command=True)
@user_errors
def codegen(ctx: typer.Context, project: ProjectOpt = Path("."), check: CheckOpt = False) -> None:
    """With no sub-command: every output named under [codegen] in gati.toml."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_project(project).settings.codegen
    targets = [(kind, getattr(settings, kind)) for kind in KINDS if getattr(settings, kind)]
    if not targets:
        raise CodegenError(
            "gati.toml names no outputs under [codegen]",
            fix='add e.g. [codegen] openapi = "openapi.json", typescript = "sdk/ts", python = "typings"; or run gati codegen KIND OUT',
        )
    stale = 0
    for kind, target in targets:
        stale += _emit(generate(kind, project, target), project, target, check, single_file=kind == "openapi")
    if stale:
        raise typer.Exit(1)


@codegen_app.command("openapi")
@user_errors
def openapi(
    target: Annotated[Optional[str], typer.Argument(metavar="[OUT]", help="The file to write (relative to the project); - prints it.")] = None,
    project: ProjectOpt = Path("."),
    check: CheckOpt = False,
    version: VersionOpt = None,
) -> None:
    """The OpenAPI 3.1 document of the project's routes (with --version, as a client of that version sees them)."""
    target = target or load_project(project).settings.codegen.openapi or "-"
    result = generate("openapi", project, "-" if target == "-" else target, version=version)
    if target == "-":
        print(next(iter(result.files.values())), end="")
        return
    if _emit(result, project, target, check, single_file=True):
        raise typer.Exit(1)


@codegen_app.command("typescript")
@user_errors
def typescript(
    target: Annotated[Optional[str], typer.Argument(metavar="[OUT]", help="The folder to write types.ts, client.ts and index.ts in.")] = None,
    project: ProjectOpt = Path("."),
    check: CheckOpt = False,
    version: VersionOpt = None,
) -> None:
    """A TypeScript SDK for the HTTP API: types, and a fetch client with one method per route (with --version, pinned to it)."""
    target = _target(target, load_project(project).settings.codegen.typescript, "typescript")
    if _emit(generate("typescript", project, target, version=version), project, target, check):
        raise typer.Exit(1)


@codegen_app.command("python")
@user_errors
def python(
    target: Annotated[Optional[str], typer.Argument(metavar="[OUT]", help="The folder to write gati_modules.pyi in (put it on mypy_path).")] = None,
    project: ProjectOpt = Path("."),
    check: CheckOpt = False,
    registered: RegisteredOpt = False,
) -> None:
    """Typed stubs of the modules for handlers: TypedDicts, a Protocol per module, gctx.modules."""
    target = _target(target, load_project(project).settings.codegen.python, "python")
    if _emit(generate("python", project, target, registered=registered), project, target, check):
        raise typer.Exit(1)


@codegen_app.command("module")
@user_errors
def module(
    name: Annotated[str, typer.Argument(help="A module of the project, a registered one, or a module folder.")],
    lang: Annotated[str, typer.Option("--lang", help=f"One of: {', '.join(LANGS)}.")] = "python",
    target: Annotated[str, typer.Argument(metavar="[OUT]", help="The folder to write in.")] = ".",
    project: ProjectOpt = Path("."),
    check: CheckOpt = False,
) -> None:
    """A module author's stubs: the Python SDK server with typed methods, or the WASM ABI for C (gati.h) or Rust (gati.rs)."""
    if lang not in LANGS:
        raise CodegenError(f"unknown language {lang!r}", fix=f"use --lang with one of: {', '.join(LANGS)}")
    if _emit(module_output(project, name, lang, target), project, target, check, relative_to_project=False):
        raise typer.Exit(1)


def _target(given: str | None, setting: str, kind: str) -> str:
    if given:
        return given
    if setting:
        return setting
    raise CodegenError(f"no output folder for {kind}", fix=f'name one: gati codegen {kind} OUT, or set [codegen] {kind} = "..." in gati.toml')


def _emit(result: Output, project: Path, target: str, check: bool, *, single_file: bool = False, relative_to_project: bool = True) -> int:
    """Write (or, with check, compare) the files; the number of stale files."""
    where = (project / target) if relative_to_project else Path(target)
    folder = where.parent if single_file else where
    if check:
        stale = result.stale(folder)
        for name in stale:
            err.print(f"stale: {folder / name} (run: {result.command})", highlight=False)
        if not stale:
            out.print(f"up to date: {', '.join(str(folder / n) for n in sorted(result.files))}", highlight=False)
        return len(stale)
    for path in result.write(folder):
        out.print(f"wrote {path}", highlight=False)
    return 0
