"""modules: the other modules a module may call through the host.

Manifest section: `[capabilities] modules = ["thumbs"]`. A call is decided by the callee's
name (`module.call`); the call itself runs through a `call_module` callable the module
manager hands the Host (the core does not know the manager). The nested call carries the
caller's deadline, never a later one, and its depth (runtime/core/call.py).

The pattern of a module name lives here too (the manifest's `name` is checked with it).
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from runtime.core.call import CallContext
from runtime.core.capabilities.decision import Decision, named
from runtime.core.errors import ManifestError

FIELD = "modules"
# Anchored whole (fullmatch) and ASCII only: "greet\n" or a non-ASCII digit is not a name.
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)
NAME_RULE = "use lower-case letters, digits, - and _, starting with a letter (at most 63)"
ENTRY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)  # what this section has always accepted

# How the gate calls another module: (context, module, method, payload) -> result.
CallModule = Callable[[CallContext, str, str, Any], Awaitable[Any]]


def check(names: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, name in enumerate(names):
        if not ENTRY_RE.fullmatch(name):
            raise ManifestError(file, f"capabilities.{FIELD}[{i}]", f"{name!r} is not a valid name", "use letters, digits, _, . and -")


class ModulesCapability:
    """The declared callees (config) and the manager's call (runtime state)."""

    def __init__(self, module: str, declared: list[str], call_module: CallModule | None, timeout_s: float):
        self.module = module
        self.declared = list(declared)
        self.call_module = call_module
        self.timeout_s = timeout_s

    def decide(self, callee: str) -> Decision:
        return named("module.call", FIELD, callee, self.declared)

    async def call(self, ctx: CallContext, callee: str, method: str, payload: Any) -> Any:
        nested = ctx.nested(f"module:{self.module}", self.timeout_s)
        return await self.call_module(nested, callee, method, payload)
