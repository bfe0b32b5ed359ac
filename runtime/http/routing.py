"""File-based routes: the layout of `handlers/` is the URL space.

    handlers/index.py            ->  /
    handlers/users/index.py      ->  /users
    handlers/users/[id].py       ->  /users/{id}
    handlers/files/[...path].py  ->  /files/{path}   (the rest of the path, slashes included)

A file exports `handler` and may declare (all optional):

    METHODS = ["GET", "POST"]        # default ["GET"]
    TIMEOUT_MS = 5000                # the whole lifecycle; default [server] handler_timeout_ms
    VERSION = "2"                    # in lctx.meta, spans, execution records and snapshots
    SINCE = "2026-11-01"             # the day this version went live (date pins; runtime.http.versions)
    ROLLOUT = 10                     # percent of clients that get this new default (sticky per client)
    HEALTH = {"interval_s": 10}      # with def health(gctx): failing checks take the version out of routing
    DEPRECATED = "2026-12-01"        # Deprecation / Sunset headers on its answers (docs/versions.md)
    SUNSET = "2027-03-01"
    MODULES = ["greet"]              # modules it calls that the source does not show (handler manifest)
    BEFORE = [fn, hook(fn, timeout_ms=100, retries=2)]   # route hooks (runtime.http.lifecycle)
    AFTER = [fn]
    CATCH = [fn]                     # fn(err, req, res, gctx, lctx)
    REQUEST = NewUser                # body type (runtime.http.gtype); or `req: Request[NewUser]`
    RESPONSE = User                  # response type; or the handler's return annotation
    AUTH = {"roles": ["admin"]}      # or True (any authenticated caller); runtime.http.auth
    RATE_LIMIT = "10/s"              # per client; runtime.http.ratelimit
    MAX_BODY_BYTES = 65536           # default [ingress] max_body_bytes
    SECRETS = ["db_password"]        # what gctx.secrets.get may read here

Several versions of one route live side by side (docs/versions.md, runtime.http.versions):

    handlers/users/[id].py               version 1 (or the VERSION it declares)
    handlers/users/[id]@2.py             version 2 of /users/{id}
    handlers/users/[id]@2.transform.py   up(body) / down(body) between versions 1 and 2

Files and folders starting with `_` or `.` are not routes. `hooks.py` at the project root
holds the global hooks: BEFORE, AFTER, CATCH, STARTUP, SHUTDOWN and SECRETS
(runtime.http.project_hooks).
Static segments win over parameters, and parameters over catch-alls, whatever the
file names, so `users/me.py` answers /users/me and `users/[id].py` everything else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple
from urllib.parse import unquote

from runtime.core import versions
from runtime.core.errors import GatiError
from runtime.http.auth import AuthRule
from runtime.http.gtype import GType, GTypeError
from runtime.http.lifecycle import HookSet
from runtime.http.ratelimit import Rate
from runtime.http.request import Request
from runtime.http.versions.deprecation import Headers, announce
from runtime.http.versions.graph import Pinned, Version, VersionSet
from runtime.http.versions.health import HealthSpec
from runtime.http.versions.layout import LABEL_RE, split_name
from runtime.http.versions.resolver import parse_since
from runtime.http.versions.transformers import Transformer

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
    hooks: HookSet = field(default_factory=HookSet)
    request_type: GType | None = None
    response_type: GType | None = None
    auth: AuthRule | None = None
    rate_limit: Rate | None = None
    max_body_bytes: int | None = None
    secrets: frozenset[str] = frozenset()
    version: str = ""
    sha256: str = ""  # of the handler file, for execution records
    rel: str = ""  # the file, relative to handlers/
    since: str = ""  # SINCE = "2026-11-01": the day this version went live
    modules: tuple[str, ...] = ()  # MODULES = [...]: module dependencies the source does not show
    versions: VersionSet | None = None  # on the router's entry of a route with several versions
    rollout: int | None = None  # ROLLOUT = 10: percent of clients this version, as the new default, goes to
    pinned: Pinned | None = None  # serving an older version through transformers (runtime.http.versions.graph)
    health: HealthSpec | None = None  # HEALTH and health(gctx): checked in the background (runtime.http.versions.health)
    deprecated: str = ""  # DEPRECATED = "2026-12-01"
    sunset: str = ""  # SUNSET = "2027-03-01"
    announce: Headers = ()  # the Deprecation / Sunset / Link headers its answers carry (runtime.http.versions.deprecation)

    def allows(self, method: str) -> bool:
        # HEAD is a GET without a body; aiohttp drops the body for us.
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


MAX_INDEXED_PARTS = 64  # path lengths whose candidate routes are kept (Router.match)


class Match(NamedTuple):  # a tuple: made once per request, cheaper than a frozen dataclass
    route: Route
    params: dict[str, str]


class Router:
    """Routes in rank order; a request's route is the first that matches its path and allows its method.

    match() looks at fewer routes than all of them, with the same answer (a property test holds it
    to the plain scan, tests/test_http_routing.py; `python -m bench routing` measures it): a path
    that is exactly a static route's is looked up in a dict, since no route ranks before an
    all-static one on its own path (a rank is static 0, [param] 1, [...rest] 2 per part);
    otherwise only the routes that can match the path are scanned, in rank order: those with as
    many parts (or a catch-all with fewer) whose first part is the path's first segment or a parameter.
    """

    def __init__(self, routes: list[Route]):
        self.routes = sorted(routes, key=lambda r: r.rank)
        self._static = {r.pattern: r for r in self.routes if not any(r.rank)}
        self._firsts = {_first_literal(r) for r in self.routes} - {None}
        # (parts, first segment or None when no route names it) -> candidates; filled on first use,
        # bounded by the routes' first names and MAX_INDEXED_PARTS
        self._candidates: dict[tuple[int, str | None], tuple[Route, ...]] = {}

    def served(self) -> list[Route]:
        """Every Route a request may run: each plain route, and every version of the versioned ones."""
        return [r for route in self.routes for r in (route.versions.routes() if route.versions else (route,))]

    def match(self, method: str, raw_path: str) -> Match:
        """The route for method and path; NotFound or MethodNotAllowed (naming what is allowed) otherwise."""
        path = raw_path.rstrip("/") or "/"
        static = self._static.get(path)
        if static is not None and static.allows(method):
            return Match(static, {})
        parts = path.count("/") if path != "/" else 0
        first = path[1:].partition("/")[0]
        key = (parts, first if first in self._firsts else None)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = tuple(
                r for r in self.routes
                if (len(r.rank) == parts or (r.rank[-1:] == (2,) and len(r.rank) < parts)) and _first_literal(r) in (None, first)
            )
            if parts <= MAX_INDEXED_PARTS:  # a client choosing path lengths must not grow this without bound
                self._candidates[key] = candidates
        allowed: set[str] = set()
        for route in candidates:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.allows(method):
                params = m.groupdict()  # a new dict of its own: unquoted in place, no comprehension when there is nothing to unquote
                for k, v in params.items():
                    if "%" in v:
                        params[k] = unquote(v)
                return Match(route, params)
            allowed |= route.methods
        if allowed:
            methods = ", ".join(sorted(allowed))
            err = MethodNotAllowed(f"{method} is not allowed on {path}", fix=f"use one of: {methods}", allow=methods)
            err.http_headers = {"Allow": methods}
            raise err
        raise NotFound(f"no route for {path}", fix="add a handler file under handlers/ for this path", path=path)


def _first_literal(route: Route) -> str | None:
    """The route's first path part when it is a plain name; None for a parameter first (or the root)."""
    return route.pattern.split("/")[1] if route.rank and route.rank[0] == 0 else None


def load_routes(handlers_dir: str | Path) -> Router:
    """Import every handler file under handlers_dir; any bad file stops start-up with a RouteError."""
    root = Path(handlers_dir).resolve()
    if not root.is_dir():
        raise RouteError(root, "no handlers directory", "create it, or scaffold a project with: gati init DIR")
    # shape ("users/*") -> its files: (label or None, file); and the transformer files by (shape, label)
    groups: dict[str, list[tuple[str | None, Path]]] = {}
    bases: dict[str, Path] = {}
    compiled: dict[str, tuple[str, re.Pattern, tuple]] = {}
    transforms: dict[tuple[str, str], Path] = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        name = split_name(rel)
        if name.label is not None and not LABEL_RE.match(name.label):
            raise RouteError(file, f"version {name.label!r} after @ is not a positive integer", "name versions like [id]@2.py")
        if name.transform and name.label is None:
            raise RouteError(file, "a transformer file must name the version it leads to", "name it like [id]@2.transform.py")
        pattern, regex, rank, shape = _compile(name.base)
        if shape in bases and bases[shape] != name.base:
            raise RouteError(file, f"serves the same paths as {root / bases[shape]}", "remove or rename one of the two files")
        bases[shape], compiled[shape] = name.base, (pattern, regex, rank)
        if name.transform:
            transforms[(shape, name.label)] = file
        else:
            groups.setdefault(shape, []).append((name.label, file))
    routes: list[Route] = []
    for shape, files in groups.items():
        pattern, regex, rank = compiled[shape]
        loaded = [(label, _load(file, root, pattern, regex, rank)) for label, file in files]
        if len(loaded) == 1 and loaded[0][0] is None and not any(k[0] == shape for k in transforms):
            if loaded[0][1].rollout is not None:
                raise RouteError(files[0][1], "ROLLOUT, but this route has one version: there is no previous default to keep", "remove it, or add it to a newer version ([name]@2.py)")
            routes.append(loaded[0][1])
            continue
        routes.append(_versioned(pattern, loaded, {k[1]: f for k, f in transforms.items() if k[0] == shape}))
    for shape, label in transforms:
        if shape not in groups:
            raise RouteError(transforms[(shape, label)], "transforms a route that has no handler file", "add the handler files, or remove this one")
    return Router(routes)


def _versioned(pattern: str, loaded: list[tuple[str | None, Route]], transform_files: dict[str, Path]) -> Route:
    """The router's entry for a route with several versions: the default version's, carrying the VersionSet."""
    by_label: dict[str, Route] = {}
    for label, route in loaded:
        if label is None:  # the file without @: version 1, unless it declares another
            label = route.version or "1"
            if not LABEL_RE.match(label):
                raise RouteError(route.file, f"VERSION = {label!r}: a route with several versions numbers them", 'e.g. VERSION = "1", or leave it out')
        elif route.version and route.version != label:
            raise RouteError(route.file, f"declares VERSION = {route.version!r} but its name says @{label}", "remove VERSION from the file, or rename it")
        if label in by_label:
            raise RouteError(route.file, f"is version {label} of {pattern}, and so is {by_label[label].file}", "give each version its own number")
        by_label[label] = dataclasses.replace(route, version=label)
    ordered = [by_label[k] for k in sorted(by_label, key=int)]
    versions, since = [], 0
    for i, route in enumerate(ordered):
        if route.since:
            try:
                day = parse_since(route.since)
            except ValueError as exc:
                raise RouteError(route.file, str(exc), 'e.g. SINCE = "2026-11-01"') from None
            if day < since:
                raise RouteError(route.file, f"SINCE = {route.since!r} is before an older version's SINCE", "a newer version goes live on or after the older ones")
            since = day
        file = transform_files.pop(route.version, None)
        if file is not None and i == 0:
            raise RouteError(file, f"version {route.version} is the oldest of {pattern}: there is nothing to transform from", "remove it, or add the older version's file")
        versions.append(Version(route.version, route, since, Transformer.of(import_file(file, "gati_transformers"), file) if file else None))
    for label, file in transform_files.items():
        raise RouteError(file, f"transforms to version {label} of {pattern}, which has no handler file", f"add the handler file for version {label}, or remove this one")
    vs = VersionSet(pattern, versions)
    # The entry the router matches (any version's methods) and what OpenAPI and codegen describe: the default.
    default = next(v.route for v in versions if v.label == vs.default)
    return dataclasses.replace(default, methods=vs.methods, versions=vs)


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


def import_file(file: Path, prefix: str = "gati_handlers") -> ModuleType:
    """Import a project's Python file under a name unique to it, so projects (and tests) never share modules."""
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    name = f"{prefix}.{re.sub(r'[^A-Za-z0-9_]', '_', file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RouteError(file, f"importing it failed: {type(exc).__name__}: {exc}", "fix the error in the file") from exc
    return module


def declared_hooks(module: ModuleType, file: Path, level: str) -> HookSet:
    """BEFORE, AFTER and CATCH of a handler file or of hooks.py, as hooks at level."""
    found = {}
    for name in ("BEFORE", "AFTER", "CATCH"):
        items = getattr(module, name, [])
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise RouteError(file, f"{name} = {items!r} is not a list", f"e.g. {name} = [my_hook]")
        found[name.lower()] = items
    try:
        return HookSet.of(level, **found)
    except (TypeError, ValueError) as exc:
        raise RouteError(file, str(exc), "hooks take (req, res, gctx, lctx); catch hooks take (err, req, res, gctx, lctx)") from None


def declared_secrets(module: ModuleType, file: Path) -> frozenset[str]:
    """SECRETS of a handler file or of hooks.py."""
    names = getattr(module, "SECRETS", [])
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in names):
        raise RouteError(file, f"SECRETS = {names!r} is not a list of secret names", 'e.g. SECRETS = ["db_password"]')
    return frozenset(names)


def _types(module: ModuleType, handler: Callable, file: Path) -> tuple[GType | None, GType | None]:
    """REQUEST / RESPONSE, else the handler's hints: `req: Request[T]` and its return annotation."""
    request, response = getattr(module, "REQUEST", None), getattr(module, "RESPONSE", None)
    params = list(inspect.signature(handler).parameters)
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:
        # gctx: "GlobalContext" from generated stubs exists only for type checkers (TYPE_CHECKING):
        # only the request's hint and the return hint say anything to the runtime.
        wanted = ([params[0]] if params and request is None else []) + (["return"] if response is None else [])
        hints = _hints_of(handler, wanted)
        if hints is None:
            raise RouteError(file, f"the handler's type hints cannot be resolved: {exc}", "import the types the hints name") from None
    req_hint = hints.get(params[0]) if params else None
    if request is None and typing.get_origin(req_hint) is Request:
        request = typing.get_args(req_hint)[0]
    returned = hints.get("return")
    # `-> web.Response` or `-> None` say how the handler answers, not what the body holds
    http_object = isinstance(returned, type) and returned.__module__.split(".")[0] in ("aiohttp", "runtime")
    if response is None and returned not in (None, type(None), Any) and not http_object:
        response = returned
    try:
        return (GType.of(request) if request is not None else None, GType.of(response) if response is not None else None)
    except GTypeError as err:
        raise RouteError(file, err.message, err.fix or "use a TypedDict or a dataclass") from None


def _hints_of(fn: Callable, names: list[str]) -> dict[str, Any] | None:
    """The resolved hints of just these parameters (and "return"); None when one of them cannot be resolved."""
    raw = inspect.get_annotations(fn)
    out = {}
    for name in names:
        if name not in raw:
            continue
        # a bare function over fn's globals, holding this one annotation: get_type_hints resolves just it
        probe = types.FunctionType(_EMPTY, getattr(fn, "__globals__", {}))
        probe.__annotations__ = {name: raw[name]}
        try:
            out[name] = typing.get_type_hints(probe)[name]
        except Exception:
            return None
    return out


_EMPTY = (lambda: None).__code__


def _load(file: Path, root: Path, pattern: str, regex: re.Pattern, rank: tuple) -> Route:
    module = import_file(file)
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise RouteError(file, "exports no handler", "define: async def handler(req, res, gctx, lctx)")
    methods = getattr(module, "METHODS", ["GET"])
    if isinstance(methods, str) or not methods or not all(isinstance(m, str) and m.upper() in KNOWN_METHODS for m in methods):
        raise RouteError(file, f"METHODS = {methods!r} is not a list of HTTP methods", 'e.g. METHODS = ["GET", "POST"]')
    timeout_ms = _positive(module, "TIMEOUT_MS", file, "TIMEOUT_MS = 5000")
    max_body = _positive(module, "MAX_BODY_BYTES", file, "MAX_BODY_BYTES = 65536")
    try:
        auth = AuthRule.parse(getattr(module, "AUTH", None))
    except ValueError as exc:
        raise RouteError(file, str(exc), 'e.g. AUTH = {"roles": ["admin"]} or AUTH = True') from None
    rate = getattr(module, "RATE_LIMIT", None)
    try:
        rate = Rate.parse(rate) if rate is not None else None
    except ValueError as exc:
        raise RouteError(file, str(exc), 'e.g. RATE_LIMIT = "10/s"') from None
    version = getattr(module, "VERSION", "")
    if not isinstance(version, (str, int)) or isinstance(version, bool):
        raise RouteError(file, f"VERSION = {version!r} is not a string", 'e.g. VERSION = "2"')
    since = getattr(module, "SINCE", "")
    if not isinstance(since, str):
        raise RouteError(file, f"SINCE = {since!r} is not a date string", 'e.g. SINCE = "2026-11-01"')
    # The modules it calls, by name: MODULES = ["greet", "thumbs@^2"] or {"greet": "^1.2"}; the
    # version constraints are read and checked by runtime.http.module_pins.
    declared_modules = getattr(module, "MODULES", [])
    if isinstance(declared_modules, dict) and all(isinstance(m, str) for m in declared_modules):
        declared_modules = list(declared_modules)
    elif isinstance(declared_modules, (list, tuple)) and all(isinstance(m, str) for m in declared_modules):
        declared_modules = [versions.split(m)[0] for m in declared_modules]
    else:
        raise RouteError(file, f"MODULES = {declared_modules!r} is neither a list of module names nor a mapping of names to versions", 'e.g. MODULES = ["greet"] or MODULES = {"greet": "^1.2"}')
    rollout = getattr(module, "ROLLOUT", None)
    if rollout is not None and (not isinstance(rollout, int) or isinstance(rollout, bool) or not 0 <= rollout <= 100):
        raise RouteError(file, f"ROLLOUT = {rollout!r} is not a percentage", "e.g. ROLLOUT = 10 (0 to 100: the share of clients)")
    try:
        health = HealthSpec.parse(getattr(module, "HEALTH", None), getattr(module, "health", None))
    except ValueError as exc:
        raise RouteError(file, str(exc), 'e.g. HEALTH = {"interval_s": 10, "timeout_ms": 500, "failures": 3, "passes": 1} with async def health(gctx): ...') from None
    deprecated, sunset = getattr(module, "DEPRECATED", ""), getattr(module, "SUNSET", "")
    try:
        announced = announce(deprecated, sunset)
    except ValueError as exc:
        raise RouteError(file, str(exc), 'e.g. DEPRECATED = "2026-12-01" and SUNSET = "2027-03-01"') from None
    request_type, response_type = _types(module, handler, file)
    return Route(
        pattern, file, handler, frozenset(m.upper() for m in methods), timeout_ms, regex, rank,
        hooks=declared_hooks(module, file, "route"),
        request_type=request_type,
        response_type=response_type,
        auth=auth,
        rate_limit=rate,
        max_body_bytes=max_body,
        secrets=declared_secrets(module, file),
        version=str(version),
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
        rel=str(file.relative_to(root)),
        since=since,
        rollout=rollout,
        modules=tuple(sorted(set(declared_modules))),
        health=health,
        deprecated=deprecated,
        sunset=sunset,
        announce=announced,
    )


def _positive(module: ModuleType, name: str, file: Path, example: str) -> Any:
    value = getattr(module, name, None)
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
        raise RouteError(file, f"{name} = {value!r} is not a positive number", f"e.g. {example}")
    return value
