"""What every `gati` sub-command shares: consoles, the --project option, errors, the state, the event loop."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable, Iterator, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from runtime.core.errors import GatiError
from runtime.core.state import StateDir
from runtime.core.audit_key import AuditKey, configured_key
from runtime.core.secrets import configured as configured_secrets
from runtime.http.project import CONFIG_FILE, ProjectError, is_project, load_settings
from runtime.http.state import open_state as open_project_state

out = Console(soft_wrap=True)  # long paths stay on one line, copy-pasteable
err = Console(stderr=True, soft_wrap=True)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project directory; its .gati/ holds the state unless $GATI_HOME is set.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
LogFormatOpt = Annotated[str, typer.Option("--log-format", help="text (for people) or json (one object per line, for log pipelines).")]

T = TypeVar("T")

INTERRUPTED, TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM: what a shell reports for either


class Terminated(Exception):
    """SIGTERM stopped the command (after its cleanup ran): see run()."""


def user_errors(fn):
    """Nothing reaches the user as a traceback.

    A GatiError is the user's to fix: its message and fix, exit 1. Ctrl+C and SIGTERM exit
    130 and 143, quietly. Anything else is a bug of ours: one line naming it and the file
    that holds its traceback, exit 1.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GatiError as exc:
            print_error(exc)
            raise typer.Exit(1) from None
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise  # typer's own ways out, with their own status
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None
        except Terminated:
            raise typer.Exit(TERMINATED) from None
        except Exception as exc:
            where = _save_traceback(exc)
            err.print(f"[bold red]error:[/] gati failed unexpectedly ({escape(_one_line(exc))}); {escape(where)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_error(exc: GatiError) -> None:
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    if exc.fix:
        err.print(f"[bold]fix:[/] {escape(exc.fix)}", highlight=False)
    if exc.note:
        err.print(escape(exc.note), highlight=False)


def _one_line(exc: BaseException) -> str:
    # The first line only, and short: an exception's text can quote whatever it was reading.
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _save_traceback(exc: BaseException) -> str:
    try:
        fd, path = tempfile.mkstemp(prefix="gati-error-", suffix=".txt")  # 0600: only its owner reads it
        with os.fdopen(fd, "w") as f:
            f.write(f"gati {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exception(exc, file=f)
    except OSError as save_failed:
        return f"its traceback could not be saved ({save_failed.strerror})"
    return f"the traceback is in {path}"


def run(main: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run(main()), where SIGTERM stops the work as Ctrl+C does.

    Either signal cancels the main task, so every `finally` in it runs and what the command
    started (a container module's container) is stopped and removed before the process exits;
    then KeyboardInterrupt (Ctrl+C) or Terminated (SIGTERM) is raised here.
    """

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        try:
            return await main()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        raise Terminated() from None


@contextmanager
def open_state(project: Path) -> Iterator[Any]:
    """The state of --project: $GATI_HOME when set, else PROJECT/.gati, with the audit key gati.toml
    configures (the same one `serve` signs with); its registry and kv on NATS when gati.toml has
    [cluster] nats.

    Like serve, a command refuses a folder that is not a project (no gati.toml) rather than leave
    a .gati/ behind wherever it was run; a folder whose .gati/ already exists is used as it is.
    """
    if not os.environ.get("GATI_HOME") and not is_project(project) and not StateDir.locate(project).is_dir():
        raise ProjectError(
            Path(project).resolve() / CONFIG_FILE,
            "(file)",
            "not a gati project (no gati.toml), so there is no state here to use",
            "run it in a project or pass --project DIR (create one with: gati init DIR), or set GATI_HOME to a state directory",
        )

    def audit_key() -> AuditKey | None:  # read when the log is first used: `gati module list` never needs the secret
        settings = load_settings(project)
        return configured_key(settings.audit.key_secret, configured_secrets(settings.secrets, Path(project).resolve()))

    state = open_project_state(project, load_settings(project), audit_key)
    try:
        yield state
    finally:
        state.close()


def print_json(value: Any) -> None:
    # Plain print, not rich: machine output must not be wrapped or coloured.
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
