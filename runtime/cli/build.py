"""`gati build [MODULE...]`: build the project's modules, skipping what is up to date (runtime.modules.build).

People see a live display: one line per module with a spinner and the newest line of its
build's output (docker build steps, debootstrap, the compiler), then a table. `--json` prints
one object per module for CI. Exit 1 when any build failed, after trying them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table

from runtime.cli.common import JsonOpt, ProjectOpt, err, print_json, run, user_errors
from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest
from runtime.http.project import load_project
from runtime.modules.build import BuildResult, build_module

STATUS_STYLE = {"built": "green", "up-to-date": "dim", "nothing-to-build": "dim", "failed": "bold red"}


def module_folders(project: Path, names: list[str]) -> list[Path]:
    """The folders to build: every module of the project, or those named (by manifest name or path).

    Folders need no project around them (`make modules` builds the repo's samples this way)."""
    if names and all((Path(name) / "module.toml").is_file() for name in names):
        return [Path(name).resolve() for name in names]
    folders = load_project(project).module_dirs()
    if not names:
        return folders
    by_name = {load_manifest(d, built=False).name: d for d in folders}
    chosen = []
    for name in names:
        if name in by_name:
            chosen.append(by_name[name])
        elif (Path(name) / "module.toml").is_file():
            chosen.append(Path(name).resolve())
        else:
            raise GatiError(f"no module {name!r} in {Path(project).resolve()}", fix=f"name one of: {', '.join(sorted(by_name)) or 'none yet (gati new module NAME)'}")
    return chosen


async def build_all(folders: list[Path], *, force: bool, show: bool) -> list[BuildResult]:
    results: list[BuildResult] = []
    if not show:
        for folder in folders:
            results.append(await build_module(folder, force=force))
        return results
    lines: dict[Path, str] = {}

    def view() -> Table:
        table = Table.grid(padding=(0, 1))
        for folder in folders:
            done = next((r for r in results if Path(r.dir) == Path(folder).resolve()), None)
            if done is not None:
                table.add_row(f"[{STATUS_STYLE[done.status]}]{done.status:>16}[/]", escape(done.name), f"[dim]{done.seconds:.1f} s[/]" if done.status in ("built", "failed") else "")
            elif folder in lines:
                table.add_row(Spinner("dots", style="cyan"), escape(folder.name), f"[dim]{escape(lines[folder][-100:])}[/]")
        return table

    with Live(view(), console=err, refresh_per_second=8, transient=False) as live:
        for folder in folders:
            lines[folder] = "checking"
            live.update(view())

            def on_line(text: str, folder: Path = folder) -> None:
                lines[folder] = text  # the Live display redraws on its own clock
                live.update(view())

            results.append(await build_module(folder, force=force, on_line=on_line))
            live.update(view())
    if not err.is_terminal:
        err.print()  # Live leaves its last frame unterminated off a terminal
    return results


def build(
    modules: Annotated[Optional[list[str]], typer.Argument(help="Module names (or folders); default: every module of the project.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Build even what is up to date.")] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Build the project's modules (\\[artifact] build_command, and oci images), skipping what is up to date."""
    folders = module_folders(project, modules or [])

    async def main() -> list[BuildResult]:
        return await build_all(folders, force=force, show=not as_json)

    results = run(main)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        if not results:
            err.print("no modules to build (add one with: gati new module NAME --lang L)")
        for r in failed:
            err.print(f"[bold red]error:[/] {escape(r.name)}: {escape(r.error)}", highlight=False)
            for line in r.output or []:
                err.print(f"  [dim]{escape(line)}[/]", highlight=False)
    if failed:
        raise typer.Exit(1)


build_command = user_errors(build)
