"""What every `gati` sub-command shares: consoles, the --project option, user errors, the state."""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer
from rich.console import Console
from rich.markup import escape

from runtime.core.errors import GatiError
from runtime.core.state import StateDir

out = Console(soft_wrap=True)  # long paths stay on one line, copy-pasteable
err = Console(stderr=True, soft_wrap=True)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project directory; its .gati/ holds the state unless $GATI_HOME is set.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def user_errors(fn):
    """A GatiError is the user's to fix: print message and fix, exit 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GatiError as exc:
            err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
            if exc.fix:
                err.print(f"[bold]fix:[/] {escape(exc.fix)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def open_state(project: Path) -> Iterator[Any]:
    state = StateDir.open(project)
    try:
        yield state
    finally:
        state.close()


def print_json(value: Any) -> None:
    # Plain print, not rich: machine output must not be wrapped or coloured.
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
