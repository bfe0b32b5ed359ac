"""Which registered version of a module a constraint reaches: `greet@^1` -> greet 1.4.0.

The highest registered version satisfying the constraint (runtime/core/versions.py) that is in
service: a version its health checks took out (runtime/modules/health.py) is passed over for the
next highest, and an exact pin to it (`greet@1.4.0`) is refused with a 503 naming it.

Calls resolve on every call, so answers are kept: the versions of a name until the registry's
active registration of that name changes (every registration makes itself the active one, so
any new version changes it), the picks until then or until a version's health changes.
"""

from __future__ import annotations

from runtime.core import versions
from runtime.core.errors import VersionNotFound, VersionUnhealthy
from runtime.core.registry import Registration, Registrations

MAX_PICKS = 4096  # (name, constraint) answers kept: constraints computed per call cannot grow memory without end


class VersionIndex:
    def __init__(self, registry: Registrations):
        self.registry = registry
        self._by_name: dict[str, tuple[Registration, list[Registration]]] = {}  # name -> (active, every version, highest first)
        self._picks: dict[tuple[str, str], Registration] = {}
        self.out_of_service: dict[str, str] = {}  # "name@version" -> why (the last failed check)
        self._marked: dict[str, float] = {}  # "name@version" -> registered_at of the registration taken out

    def registered(self, name: str) -> list[Registration]:
        """Every registered version of name, highest first (ModuleNotFound when there is none)."""
        active = self.registry.get(name)
        known = self._by_name.get(name)
        if known is not None and known[0] is active:
            return known[1]
        # The active registration object itself stands for its version, so that a pin reaching it
        # shares its running sandbox (the manager compares registrations).
        every = {r.manifest.version: r for r in self.registry.versions(name)}
        every[active.manifest.version] = active
        ordered = [every[v] for v in versions.highest_first(every)]
        self._by_name[name] = (active, ordered)
        for version, registration in every.items():
            key = f"{name}@{version}"
            if key in self._marked and self._marked[key] != registration.registered_at:
                del self._marked[key]  # registered again (fixed, we hope): in service until its own checks fail
                self.out_of_service.pop(key, None)
        self._picks = {k: v for k, v in self._picks.items() if k[0] != name}
        return ordered

    def version_names(self, name: str) -> list[str]:
        """The registered version numbers of name (the host gate's collaborator: which version a call reaches)."""
        return [r.manifest.version for r in self.registered(name)]

    def resolve(self, name: str, spec: str, *, in_service: bool = True) -> Registration:
        """The version of name that spec reaches; VersionNotFound or VersionUnhealthy otherwise."""
        ordered = self.registered(name)
        key = (name, spec)
        picked = self._picks.get(key)
        if picked is not None and in_service:
            return picked
        problem = versions.problem(spec)
        if problem:
            raise VersionNotFound(f"{name}@{spec}: {problem}", fix=f"write a version constraint after the @: {versions.EXAMPLES}", module=name)
        matching = [r for r in ordered if versions.satisfies(r.manifest.version, spec)]
        if not matching:
            missing = VersionNotFound(
                f"no registered version of {name} satisfies {spec!r}",
                fix=f"register a version that does (gati module register PATH), or change the constraint {spec!r}",
                module=name,
                constraint=spec,
            )
            missing.note = f"registered: {', '.join(r.manifest.version for r in ordered)}"  # the operator's, not the client's
            raise missing
        if not in_service:
            return matching[0]
        serving = [r for r in matching if f"{name}@{r.manifest.version}" not in self.out_of_service]
        if not serving:
            down = ", ".join(f"{r.manifest.version} ({self.out_of_service[f'{name}@{r.manifest.version}']})" for r in matching)
            raise VersionUnhealthy(
                f"{name}@{matching[0].manifest.version} is out of service: its health checks fail ({down})"
                if len(matching) == 1
                else f"every version of {name} satisfying {spec!r} is out of service: {down}",
                fix="see /readyz; fix the module and register it again, or pin a version in service",
                module=name,
                constraint=spec,
            )
        if len(self._picks) < MAX_PICKS:
            self._picks[key] = serving[0]
        return serving[0]

    def mark(self, registration: Registration, in_service: bool, why: str = "") -> None:
        """A version's health changed (runtime/modules/health.py): the picks are made again."""
        name = registration.name
        key = f"{name}@{registration.manifest.version}"
        if in_service:
            self.out_of_service.pop(key, None)
            self._marked.pop(key, None)
        else:
            self.out_of_service[key] = why
            self._marked[key] = registration.registered_at
        self._picks = {k: v for k, v in self._picks.items() if k[0] != name}

    def is_active(self, registration: Registration) -> bool:
        """Is this the registration a call without a version reaches?"""
        active = self.registry.get(registration.name)
        return registration is active or registration == active
