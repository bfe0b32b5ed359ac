"""`gati test`: build the project's modules, then run its tests with the testing kit (runtime.testing).

Runs pytest in a child process in the project's folder, on tests/ and each module's own
tests (modules/*/tests; `gati test NAME` runs module NAME's), with the kit's plugin loaded, async tests allowed (asyncio_mode=auto)
and --gati-project set; arguments after `--` go to pytest as they are. Its exit status is gati
test's: 0 passed, 1 a test failed, 5 no tests found.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from runtime.cli.build import build_all, module_folders
from runtime.cli.common import ProjectOpt, err, run, user_errors
from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest
from runtime.http.project import load_project

PLUGIN = "runtime.testing.plugin"


def pytest_args(project: Path, paths: list[str], extra: list[str]) -> list[str]:
    paths = [_module_tests(project, p) for p in paths]
    if not paths:
        paths = [str(p.relative_to(project)) for p in [project / "tests", *sorted(project.glob("modules/*/tests"))] if p.is_dir()]
        paths += [str(p) for p in load_project(project).module_dirs() if (p / "tests").is_dir() and not p.is_relative_to(project)]
    # The kit's plugin comes by its entry point once gati is installed; -p twice would register it twice.
    loaded = any(ep.value == PLUGIN for ep in importlib.metadata.entry_points(group="pytest11"))
    return [
        *([] if loaded else ["-p", PLUGIN]),
        "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "--import-mode=importlib",  # tests/test_x.py in two modules do not collide
        f"--rootdir={project}",
        f"--gati-project={project}",
        *extra,
        *paths,
    ]


def _module_tests(project: Path, path: str) -> str:
    """A module's name stands for its tests folder (`gati test greeter`); anything else is pytest's."""
    if (project / path).exists():
        return path
    for folder in load_project(project).module_dirs():
        if load_manifest(folder, built=False).name == path and (folder / "tests").is_dir():
            return str(folder / "tests")
    return path


def test(
    ctx: typer.Context,
    paths: Annotated[Optional[list[str]], typer.Argument(help="Test files or folders, or module names (default: tests/ and modules/*/tests).")] = None,
    no_build: Annotated[bool, typer.Option("--no-build", help="Test the modules as they are built now.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Run the project's tests (pytest, with gati's testing kit), after building its modules."""
    if importlib.util.find_spec("pytest") is None or importlib.util.find_spec("pytest_asyncio") is None:
        raise GatiError("gati test needs pytest and pytest-asyncio", fix=f"{sys.executable} -m pip install 'gati[testing]' (or pytest pytest-asyncio)")
    root = Path(project).resolve()
    load_project(root)  # a clear error for a folder that is not a project
    if not no_build:
        results = run(lambda: build_all(module_folders(root, []), force=False, show=True))
        failed = [r for r in results if r.status == "failed"]
        if failed:
            raise GatiError(f"building {', '.join(r.name for r in failed)} failed: {failed[0].error}", fix="fix the build (gati build shows its output), or run with --no-build")
    args = pytest_args(root, list(paths or []), list(ctx.args))
    err.print(f"gati: pytest {' '.join(args)}", highlight=False, style="dim")
    code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=root)
    raise typer.Exit(code)


test_command = user_errors(test)
TEST_SETTINGS = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}
