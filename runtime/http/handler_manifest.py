"""A handler's manifest: the facts about one handler file that clients, codegen and checks read.

    HandlerManifest.of(route).to_dict() ->
      {"file": "orders/index.py", "path": "/orders", "methods": ["POST"],
       "params": [], "request": {JSON Schema} | None, "response": {JSON Schema} | None,
       "auth": {"roles": ["orders:write"]} | None, "rate_limit": "10/s" | None,
       "max_body_bytes": 65536 | None, "timeout_ms": 5000 | None, "version": "2",
       "secrets": ["payments_key"], "modules": [{"module", "method", "line", "payload", "result"}],
       "dependencies": ["payments", "thumbs"], "pins": {"payments": "^2"}, "since": "2026-11-01" | None,
       "hooks": [{"name", "level", "phase", "timeout_ms", "retries", "backoff_ms"}],
       "pinned": {"runs": "3", "transformers": ["orders/index@2.transform.py", ...]} | None}
    fingerprint(manifest) -> sha256 hex of its canonical JSON (sorted keys, no whitespace)

The policies are auth, rate_limit, max_body_bytes, timeout_ms and secrets. "dependencies" are
the modules the source calls (found statically) and those MODULES = [...] declares; "pins" the
version constraints MODULES puts on them (a change of pin is a change of contract). "hooks" are
the file's own BEFORE/AFTER/CATCH (hooks.py's global hooks belong to the project, not the file).
The fingerprint leaves out what does not change the handler's contract: the summary and the line
numbers of module calls; anything else that changes in the manifest changes it.

Everything comes from what the file declares (runtime.http.routing) and, for module calls, from
its source (runtime.http.module_calls). The OpenAPI document, the TypeScript SDK and
`gati contracts check` are made from these; versions and fingerprints can build on them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from runtime.http.gtype import GType
from runtime.http.module_calls import ModuleCall, find_module_calls
from runtime.http.module_pins import declared_pins
from runtime.http.routing import PARAM_RE, Route
from runtime.http.versions.layout import split_name


@dataclass(frozen=True)
class Param:
    name: str
    catch_all: bool  # [...name]: the rest of the path, slashes included


@dataclass(frozen=True)
class HandlerManifest:
    file: str  # relative to handlers/
    path: str  # "/users/{id}"
    methods: tuple[str, ...]
    params: tuple[Param, ...]
    request: GType | None
    response: GType | None
    auth_roles: tuple[str, ...] | None  # None: public; (): any authenticated caller
    rate_limit: str | None  # the route's own RATE_LIMIT; the [ingress] default applies otherwise
    max_body_bytes: int | None
    timeout_ms: int | None
    version: str
    secrets: tuple[str, ...]
    modules: tuple[ModuleCall, ...]
    summary: str = ""  # the first line of the file's docstring
    declared_modules: tuple[str, ...] = ()  # MODULES = [...]
    pins: dict[str, str] | None = None  # MODULES' version constraints, {name: constraint} (runtime.http.module_pins)
    hooks: tuple[dict[str, Any], ...] = ()
    since: str = ""
    pinned: dict[str, Any] | None = None  # a version served through transformers by a newer one

    @classmethod
    def of(cls, route: Route) -> HandlerManifest:
        # the file as if it had no version: users/[id]@2.py names the parameter id too
        parts = [PARAM_RE.match(p) for p in str(split_name(PurePosixPath(route.rel)).base).removesuffix(".py").split("/")]
        module = _module_of(route)
        return cls(
            file=route.rel,
            path=route.pattern,
            methods=tuple(sorted(route.methods)),
            params=tuple(Param(m.group(2), bool(m.group(1))) for m in parts if m),
            request=route.request_type,
            response=route.response_type,
            auth_roles=tuple(sorted(route.auth.roles)) if route.auth is not None else None,
            rate_limit=route.rate_limit.text if route.rate_limit else None,
            max_body_bytes=route.max_body_bytes,
            timeout_ms=route.timeout_ms,
            version=route.version,
            secrets=tuple(sorted(route.secrets)),
            modules=tuple(find_module_calls(route.file, module, route.request_type, route.response_type)) if module else (),
            summary=((getattr(module, "__doc__", None) or "").strip().splitlines() or [""])[0],
            declared_modules=route.modules,
            pins=dict(sorted(declared_pins(route).items())),
            hooks=tuple(
                {"name": h.name, "level": h.level, "phase": phase, "timeout_ms": h.timeout_ms, "retries": h.retries, "backoff_ms": h.backoff_ms}
                for phase in ("before", "after", "catch")
                for h in getattr(route.hooks, phase)
            ),
            since=route.since,
            pinned=(
                {"runs": route.pinned.runs, "transformers": [str(PurePosixPath(route.rel).with_name(t.file.name)) for t in route.pinned.chain.steps]}
                if route.pinned is not None
                else None
            ),
        )

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Module names, without version pins: those the source calls and those MODULES declares."""
        return tuple(sorted({c.module.split("@")[0] for c in self.modules} | set(self.declared_modules)))

    def fingerprint(self) -> str:
        """sha256 of the canonical manifest: stable across runs and machines, changed by any change of contract."""
        canonical = self.to_dict()
        canonical.pop("summary")
        for call in canonical["modules"]:
            call.pop("line")
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "summary": self.summary,
            "path": self.path,
            "methods": list(self.methods),
            "params": [{"name": p.name, "catch_all": p.catch_all} for p in self.params],
            "request": self.request.json_schema() if self.request else None,
            "response": self.response.json_schema() if self.response else None,
            "auth": {"roles": list(self.auth_roles)} if self.auth_roles is not None else None,
            "rate_limit": self.rate_limit,
            "max_body_bytes": self.max_body_bytes,
            "timeout_ms": self.timeout_ms,
            "version": self.version,
            "secrets": list(self.secrets),
            "modules": [c.to_dict() for c in self.modules],
            "dependencies": list(self.dependencies),
            "pins": dict(self.pins or {}),
            "hooks": [dict(h) for h in self.hooks],
            "since": self.since or None,
            "pinned": self.pinned,
        }


def _module_of(route: Route) -> Any:
    """The imported handler file (its globals name the types its annotations use)."""
    return sys.modules.get(getattr(route.handler, "__module__", ""))
