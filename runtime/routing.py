"""File-based routes: the layout of `handlers/` is the URL space.

    handlers/index.py            ->  /
    handlers/users/index.py      ->  /users
    handlers/users/[id].py       ->  /users/{id}
    handlers/files/[...path].py  ->  /files/{path}   (the rest of the path, slashes included)

A file exports `handler` and may set `METHODS = ["GET", "POST"]` (default GET) and
`TIMEOUT_MS`. Files and folders starting with `_` or `.` are not routes.
Static segments win over parameters, and parameters over catch-alls, whatever the
file names, so `users/me.py` answers /users/me and `users/[id].py` everything else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from runtime.errors import GatiError

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
PARAM_RE = re.compile(r"^\[(\.\.\.)?([A-Za-z_][A-Za-z0-9_]*)\]$")


class RouteError(GatiError):
    """A handler file that cannot be served: names the file, the problem and the fix."""

    code = "route_invalid"

    def __init__(self, file: Path | str, problem: str, fix: str):
        super().__init__(f"{file}: {problem}", fix=fix, file=str(file), problem=problem)


class NotFound(GatiError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(GatiError):
    code = "method_not_allowed"
    http_status = 405


@dataclass(frozen=True)
class Route:
    pattern: str  # "/users/{id}", as people read it
    file: Path
    handler: Callable[..., Any]
    methods: frozenset[str]
    timeout_ms: int | None
    regex: re.Pattern
    rank: tuple  # sort key: static segments first, catch-alls last

    def allows(self, method: str) -> bool:
        # HEAD is a GET without a body; aiohttp drops the body for us.
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


class Router:
    def __init__(self, routes: list[Route]):
        self.routes = sorted(routes, key=lambda r: r.rank)

    def match(self, method: str, raw_path: str) -> Match:
        """The route for method and path; NotFound or MethodNotAllowed (naming what is allowed) otherwise."""
        path = raw_path.rstrip("/") or "/"
        allowed: set[str] = set()
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.allows(method):
                return Match(route, {k: unquote(v) for k, v in m.groupdict().items()})
            allowed |= route.methods
        if allowed:
            methods = ", ".join(sorted(allowed))
            raise MethodNotAllowed(f"{method} is not allowed on {path}", fix=f"use one of: {methods}", allow=methods)
        raise NotFound(f"no route for {path}", fix="add a handler file under handlers/ for this path", path=path)


def load_routes(handlers_dir: str | Path) -> Router:
    """Import every handler file under handlers_dir; any bad file stops start-up with a RouteError."""
    root = Path(handlers_dir).resolve()
    if not root.is_dir():
        raise RouteError(root, "no handlers directory", "create it, or scaffold a project with: gati init DIR")
    routes: list[Route] = []
    seen: dict[str, Path] = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        pattern, regex, rank, shape = _compile(rel)
        if shape in seen:
            raise RouteError(file, f"serves the same paths as {seen[shape]}", "remove or rename one of the two files")
        seen[shape] = file
        routes.append(_load(file, root, pattern, regex, rank))
    return Router(routes)


def _compile(rel: Path) -> tuple[str, re.Pattern, tuple, str]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "index":
        parts.pop()
    shown, regex, rank, shape = [], [], [], []
    for i, part in enumerate(parts):
        m = PARAM_RE.match(part)
        if m is None:
            if "[" in part or "]" in part or "{" in part or "}" in part:
                raise RouteError(rel, f"{part!r} is neither a plain name nor a [param]", "name it like [id] or [...rest]")
            shown.append(part)
            regex.append(re.escape(part))
            rank.append(0)
            shape.append(part)
            continue
        catch_all, name = m.groups()
        if catch_all and i != len(parts) - 1:
            raise RouteError(rel, f"[...{name}] must be the last part of the path", "move the catch-all to the file name")
        shown.append("{" + name + "}")
        regex.append(f"(?P<{name}>.+)" if catch_all else f"(?P<{name}>[^/]+)")
        rank.append(2 if catch_all else 1)
        shape.append("**" if catch_all else "*")
    try:
        compiled = re.compile("^/" + "/".join(regex) + "$")
    except re.error:
        raise RouteError(rel, "a parameter name is used twice in the path", "give each [param] its own name") from None
    return "/" + "/".join(shown), compiled, tuple(rank), "/".join(shape)


def _load(file: Path, root: Path, pattern: str, regex: re.Pattern, rank: tuple) -> Route:
    # A unique module name per project and file, so two projects (or tests) never share handler modules.
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    name = f"gati_handlers.{re.sub(r'[^A-Za-z0-9_]', '_', file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RouteError(file, f"importing it failed: {type(exc).__name__}: {exc}", "fix the error in the handler file") from exc
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise RouteError(file, "exports no handler", "define: async def handler(req, res, gctx, lctx)")
    methods = getattr(module, "METHODS", ["GET"])
    if isinstance(methods, str) or not methods or not all(isinstance(m, str) and m.upper() in KNOWN_METHODS for m in methods):
        raise RouteError(file, f"METHODS = {methods!r} is not a list of HTTP methods", 'e.g. METHODS = ["GET", "POST"]')
    timeout_ms = getattr(module, "TIMEOUT_MS", None)
    if timeout_ms is not None and (not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) or timeout_ms <= 0):
        raise RouteError(file, f"TIMEOUT_MS = {timeout_ms!r} is not a positive number", "e.g. TIMEOUT_MS = 5000")
    return Route(pattern, file, handler, frozenset(m.upper() for m in methods), timeout_ms, regex, rank)
