"""`gati --version`: the installed distribution's version (pyproject.toml's, in a checkout)."""

from __future__ import annotations

import importlib.metadata
from typing import Annotated

import typer

from runtime.cli.common import out


def installed_version() -> str:
    try:
        return importlib.metadata.version("gati")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _show(value: bool) -> None:
    if value:
        out.print(f"gati {installed_version()}", highlight=False)
        raise typer.Exit()


def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_show, is_eager=True, help="Print gati's version and exit.")] = False,
) -> None:
    """Serve handlers that call sandboxed modules."""
