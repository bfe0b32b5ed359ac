"""A handler's module version pins: `MODULES` in its file says which versions its calls reach.

    MODULES = {"greet": "^1.2"}          # gctx.modules.greet here: the highest registered 1.x >= 1.2
    MODULES = ["greet@^1.2", "thumbs"]   # the same as a list; a name alone pins nothing

Constraints are npm's (runtime/core/versions.py). A call that names its own version
(`gctx.modules["greet@2"]`) goes there whatever MODULES says. The pins ride the request's
CallContext (runtime/http/dispatch.py), so gctx stays one object shared by every request; the
module manager resolves them (runtime/modules/versions.py). At start every pin must reach a
registered version, or the server does not start (check_pins).
"""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from runtime.core import versions
from runtime.core.errors import GatiError, ModuleNotFound
from runtime.core.registry import Registration
from runtime.http.plan import RoutePlan
from runtime.http.routing import Route, RouteError

NONE: Mapping[str, str] = MappingProxyType({})


class PinError(GatiError):
    """A handler's MODULES pin that no registered version satisfies: stops start-up."""

    code = "pin_unsatisfied"


def declared_pins(route: Route) -> Mapping[str, str]:
    """The route's MODULES as {name: constraint}; RouteError when it is not a valid declaration."""
    module = sys.modules.get(getattr(route.handler, "__module__", ""))
    declared = getattr(module, "MODULES", None)
    if declared is None:
        return NONE
    example = 'e.g. MODULES = {"greet": "^1.2"} or MODULES = ["greet@^1.2"]'
    if isinstance(declared, Mapping):
        items = list(declared.items())
    elif isinstance(declared, (list, tuple)) and all(isinstance(e, str) for e in declared):
        items = [versions.split(e) for e in declared]
    else:
        raise RouteError(route.file, f"MODULES = {declared!r} is neither a mapping nor a list of names", example)
    pins = {}
    for name, spec in items:
        if not isinstance(name, str) or not (spec is None or isinstance(spec, str)):
            raise RouteError(route.file, f"MODULES entry {name!r}: {spec!r} is not a module name and a constraint", example)
        if spec is None:
            continue
        problem = versions.problem(spec)
        if problem:
            raise RouteError(route.file, f"MODULES pins {name}: {problem}", f"write a version constraint: {versions.EXAMPLES}")
        pins[name] = spec
    return MappingProxyType(pins) if pins else NONE


def check_pins(
    plans: Iterable[RoutePlan],
    registered: Callable[[str], list[Registration]],
    *,
    skip: Callable[[str], bool] = lambda name: False,
) -> None:
    """Every route's pins reach a registered version (health aside); PinError naming the versions registered otherwise.

    registered: the module manager's VersionIndex.registered. skip: names not to check (simulated modules)."""
    for plan in plans:
        route = plan.route
        for name, spec in (plan.pins or NONE).items():
            if skip(name):
                continue
            try:
                found = [r.manifest.version for r in reversed(registered(name))]  # lowest first, as people list them
            except ModuleNotFound:
                raise PinError(
                    f"handlers/{route.rel}: MODULES pins {name} to {spec!r}, but no module {name} is registered",
                    fix=f"add the module to modules/ (or [modules] paths), or remove {name} from MODULES",
                    file=str(route.file),
                ) from None
            if versions.pick(found, spec) is None:
                raise PinError(
                    f"handlers/{route.rel}: MODULES pins {name} to {spec!r}, which none of the registered versions "
                    f"({', '.join(found)}) satisfies",
                    fix=f"change the constraint in MODULES (e.g. \"^{found[-1].split('.')[0]}\"), "
                    f"or register a version of {name} that satisfies {spec!r}: gati module register PATH",
                    file=str(route.file),
                )

