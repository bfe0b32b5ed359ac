"""Health checks of a handler version: what takes it out of routing, and what puts it back.

A version file may declare

    HEALTH = {"interval_s": 10, "timeout_ms": 500, "failures": 3, "passes": 1}

    async def health(gctx):          # or a plain def; gctx is the app's global context
        await gctx.modules["db"].ping({})

A check passes when health(gctx) returns (anything but False) within timeout_ms; it fails when it
raises, returns False or takes longer. `failures` failed checks in a row take the version out of
routing (runtime.http.versions.availability), `passes` passed checks in a row put it back. Every
key is optional (the defaults are those above); a `health` function alone is checked with them.
The checks run in a background task (runtime.http.versions.service), never on the request path.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any, Callable

DEFAULTS = {"interval_s": 10, "timeout_ms": 500, "failures": 3, "passes": 1}


@dataclass(frozen=True)
class HealthSpec:
    check: Callable[[Any], Any]
    interval_s: float = 10
    timeout_ms: int = 500
    failures: int = 3
    passes: int = 1

    @classmethod
    def parse(cls, declared: Any, check: Any) -> HealthSpec | None:
        """From HEALTH and health in a file; ValueError saying what is wrong."""
        if declared is None and check is None:
            return None
        if not callable(check):
            raise ValueError("HEALTH is declared, but the file has no health(gctx) function to call")
        declared = {} if declared is None else declared
        if not isinstance(declared, dict) or set(declared) - set(DEFAULTS):
            raise ValueError(f"HEALTH = {declared!r} is not a mapping of {', '.join(DEFAULTS)}")
        values = {**DEFAULTS, **declared}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (key != "interval_s" and not isinstance(value, int)):
                raise ValueError(f"HEALTH {key} = {value!r} is not a positive {'number' if key == 'interval_s' else 'integer'}")
        return cls(check, **values)

    async def run(self, gctx: Any) -> None:
        """One check: returns when it passes, raises (with why) when it fails."""
        # A plain def runs in a thread, so a slow one cannot hold the event loop past its timeout.
        call = self.check(gctx) if inspect.iscoroutinefunction(self.check) else asyncio.to_thread(self.check, gctx)
        try:
            result = await asyncio.wait_for(call, self.timeout_ms / 1000)
        except asyncio.TimeoutError:
            raise TimeoutError(f"health check took longer than {self.timeout_ms} ms") from None
        if result is False:
            raise RuntimeError("health check returned False")


@dataclass
class Record:
    """A version's run of results: due time, consecutive failures and passes, in service or not."""

    due: float = 0.0
    failures: int = 0
    passes: int = 0
    healthy: bool = True
    reason: str = ""

    def result(self, spec: HealthSpec, error: BaseException | None) -> bool:
        """Count one check's result; True when the version's state changed."""
        if error is None:
            self.failures, self.passes = 0, self.passes + 1
            if not self.healthy and self.passes >= spec.passes:
                self.healthy, self.reason = True, ""
                return True
            return False
        self.passes, self.failures = 0, self.failures + 1
        self.reason = f"{self.failures} failed health checks in a row, the last: {str(error) or type(error).__name__}"
        if self.healthy and self.failures >= spec.failures:
            self.healthy = False
            return True
        return False
