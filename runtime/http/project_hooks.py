"""hooks.py at the project root: the hooks of every route, start-up and shutdown functions, secrets.

    BEFORE = [authenticate]          # global hooks, run before each route's own
    AFTER = [add_headers]
    CATCH = [report]                 # fn(err, req, res, gctx, lctx)
    STARTUP = [connect_db]           # fn(gctx), in order, before the app answers /readyz
    SHUTDOWN = [close_db]            # fn(gctx), in reverse order, while the app stops
    SECRETS = ["db_password"]        # granted to every request and to STARTUP/SHUTDOWN

It is imported as handler files are (runtime.http.routing), and its BEFORE/AFTER/CATCH and
SECRETS are read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from runtime.http.hooks import HookSet
from runtime.http.routing import (
    RouteError,
    declared_hooks,
    declared_secrets,
    import_file,
)


@dataclass(frozen=True)
class ProjectHooks:
    """hooks.py at the project root: hooks for every route, start-up and shutdown functions."""

    hooks: HookSet = field(default_factory=HookSet)
    startup: tuple[Callable[..., Any], ...] = ()  # fn(gctx), sync or async, in order, before the app is ready
    shutdown: tuple[Callable[..., Any], ...] = ()  # fn(gctx), in reverse order, while the app stops
    secrets: frozenset[str] = frozenset()  # granted to every request and to startup/shutdown


def load_project_hooks(file: Path) -> ProjectHooks:
    if not file.is_file():
        return ProjectHooks()
    module = import_file(file, "gati_project")
    hooks = declared_hooks(module, file, "global")
    lists = {}
    for name in ("STARTUP", "SHUTDOWN"):
        items = getattr(module, name, [])
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)) or not all(callable(f) for f in items):
            raise RouteError(file, f"{name} = {items!r} is not a list of functions", f"e.g. {name} = [connect_db]; each takes (gctx)")
        lists[name] = tuple(items)
    return ProjectHooks(hooks, lists["STARTUP"], lists["SHUTDOWN"], declared_secrets(module, file))
