"""modules: the other modules a module may call through the host.

Manifest section: `[capabilities] modules = ["thumbs", "greet@^1"]`. A grant names a module,
and may pin it to a version constraint (runtime/core/versions.py): `greet` lets the module
call any version (the active one unless the call names another), `greet@^1` only versions
that ^1 covers. A call names the callee (`greet`) or a version of it (`greet@1.2.0`): a bare
name goes to the highest version the grant covers; a call naming a version the grant does not
cover is refused, the denial naming the grant that would allow it. The call itself runs
through a `call_module` callable the module manager hands the Host (the core does not know the
manager), with the grant's constraint added to the call's own. The nested call carries the
caller's deadline, never a later one, and its depth (runtime/core/call.py).

The pattern of a module name lives here too (the manifest's `name` is checked with it).
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from runtime.core import versions
from runtime.core.call import CallContext
from runtime.core.capabilities.decision import Decision, grant_line
from runtime.core.errors import ManifestError

FIELD = "modules"
# Anchored whole (fullmatch) and ASCII only: "greet\n" or a non-ASCII digit is not a name.
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)
NAME_RULE = "use lower-case letters, digits, - and _, starting with a letter (at most 63)"
ENTRY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)  # what this section has always accepted

# How the gate calls another module: (context, module or module@constraint, method, payload) -> result.
CallModule = Callable[[CallContext, str, str, Any], Awaitable[Any]]
# The registered versions of a module (the module manager's), to tell which one a constraint reaches.
ModuleVersions = Callable[[str], list[str]]


def check(entries: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries):
        key = f"capabilities.{FIELD}[{i}]"
        name, spec = versions.split(entry)
        if not ENTRY_RE.fullmatch(name):
            raise ManifestError(file, key, f"{entry!r} is not a valid name", "use letters, digits, _, . and -, then @ and a version constraint if any")
        if spec is not None and versions.problem(spec):
            raise ManifestError(file, key, versions.problem(spec) or "", f"after the @ write a version constraint: {versions.EXAMPLES}")
        if seen.get(name, entry) != entry:
            raise ManifestError(
                file, key, f"{name} is granted twice ({seen[name]!r} and {entry!r})",
                "keep one entry per module: a call without a version goes to the one its grant names",
            )
        seen[name] = entry


def parse(entries: list[str]) -> dict[str, str | None]:
    """Each granted module and its constraint (None: any version)."""
    return dict(versions.split(e) for e in entries)


class ModulesCapability:
    """The declared callees (config) and the manager's call (runtime state)."""

    def __init__(
        self,
        module: str,
        declared: list[str],
        call_module: CallModule | None,
        timeout_s: float,
        registered: ModuleVersions | None = None,
    ):
        self.module = module
        self.declared = list(declared)
        self.grants = parse(declared)
        self.call_module = call_module
        self.timeout_s = timeout_s
        self.registered = registered

    def decide(self, callee: str) -> Decision:
        """callee: `name` or `name@constraint`, as the module asked."""
        name, spec = versions.split(callee)
        if name not in self.grants:
            return Decision("module.call", callee, False, grant=grant_line(FIELD, callee), reason="not declared")
        granted = self.grants[name]
        rule = f"{FIELD}: {name}" if granted is None else f"{FIELD}: {name}@{granted}"
        if spec is None or granted is None:
            return Decision("module.call", callee, True, rule=rule)
        problem = versions.problem(spec)
        if problem:
            return Decision("module.call", callee, False, grant=f"a version constraint: {versions.EXAMPLES}", reason=problem)
        # The call names a version and the grant a constraint: the version the call reaches must be one the grant covers.
        reached = spec if versions.is_exact(spec) else versions.pick(self.registered(name), spec) if self.registered else None
        if reached is None or versions.satisfies(reached, granted):
            return Decision("module.call", callee, True, rule=rule)  # none reached: the manager's VersionNotFound says so
        return Decision(
            "module.call", callee, False, grant=grant_line(FIELD, callee),
            reason=f"version {reached} is not covered by the grant {name}@{granted}",
        )

    def target(self, callee: str) -> str:
        """What the call goes to: the callee narrowed by its grant's constraint (decide() allowed it)."""
        name, spec = versions.split(callee)
        granted = self.grants.get(name)
        if granted is None:
            return callee
        if spec is None:
            return f"{name}@{granted}"
        return f"{name}@{spec if versions.is_exact(spec) else versions.both(spec, granted)}"

    async def call(self, ctx: CallContext, callee: str, method: str, payload: Any) -> Any:
        nested = ctx.nested(f"module:{self.module}", self.timeout_s)
        return await self.call_module(nested, self.target(callee), method, payload)
