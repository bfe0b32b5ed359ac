"""`[health]`: how a module version says it is fit to serve, checked off the request path.

    [health]
    method = "ping"          # optional: a declared method to call; without it the check is that
    payload = {}             #   an instance starts and its sandbox says it is healthy
    interval_ms = 10000      # between two checks of one running version
    timeout_ms = 1000        # a check that takes longer fails
    unhealthy_after = 3      # failures in a row that take the version out of service
    healthy_after = 1        # successes in a row that put it back

The module manager runs the checks (runtime/modules/health.py); a version out of service
stops receiving calls resolved through a constraint, and an exact pin to it is refused with
a 503 (runtime/modules/versions.py). The section is validated here, at parse.
"""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.core.errors import ManifestError

# (lowest, highest) of each number; docs/manifest.md states the same table.
BOUNDS = {
    "interval_ms": (100, 3_600_000),
    "timeout_ms": (1, 600_000),
    "unhealthy_after": (1, 100),
    "healthy_after": (1, 100),
}


class Health(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    method: str | None = None
    payload: Any = None
    interval_ms: int = 10_000
    timeout_ms: int = 1_000
    unhealthy_after: int = 3
    healthy_after: int = 1


def check(health: Health | None, methods: dict, file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    if health is None:
        return
    for field, (low, high) in BOUNDS.items():
        value = getattr(health, field)
        if not (isinstance(value, int) and low <= value <= high):
            raise ManifestError(file, f"health.{field}", f"{value!r} is outside {low}..{high}", f"set {field} between {low} and {high}")
    if health.method is not None and health.method not in methods:
        raise ManifestError(
            file, "health.method", f"{health.method!r} is not a declared method",
            f"declare [methods.{health.method}], or use one of: {', '.join(sorted(methods))}",
        )

