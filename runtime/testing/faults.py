"""Faults to inject into module calls, real or simulated, so a handler's error paths can be tested.

    client.modules.inject(faults.timeout("thumbs"))                  # every call to thumbs
    client.modules.inject(faults.crash("thumbs", method="resize", times=1))
    faults.slow("greet", 0.2)           # answers, 0.2 s later (past the call's deadline: ModuleTimeout)
    faults.busy("greet")                # ModuleBusy, as at its concurrency limit
    faults.denied("greet", "egress", "https://api.example.com:443")    # CapabilityDenied

Each raises the typed error the real runtime raises (runtime.core.errors), so what a handler
catches, and what the client receives, is what production gives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from runtime.core.call import CallContext
from runtime.core.errors import CapabilityDenied, ModuleBusy, ModuleCrashed, ModuleTimeout

GRANTS = {
    "egress": 'egress = ["{target}"]',
    "files": 'files = {{ "{target}" = "ro" }}',
    "env": 'env = ["{target}"]',
    "secrets": 'secrets = ["{target}"]',
    "kv": 'kv = ["{target}"]',
    "modules": 'modules = ["{target}"]',
}


@dataclass
class Fault:
    kind: str  # slow | timeout | crash | denied | busy
    module: str
    method: str | None = None  # None: every method
    times: int | None = None  # None: every matching call; else this many, then the fault is spent
    seconds: float = 0.0  # slow
    capability: str = ""  # denied
    target: str = ""  # denied
    hits: int = field(default=0, init=False)

    def matches(self, module: str, method: str) -> bool:
        spent = self.times is not None and self.hits >= self.times
        return not spent and module == self.module and self.method in (None, method)

    async def apply(self, module: str, method: str, timeout_s: float, ctx: CallContext) -> None:
        """Raise the fault's error, or (slow) wait and return; the caller counts on this being called once per hit."""
        self.hits += 1
        where = f"{module}.{method}"
        if self.kind == "slow":
            wait = min(self.seconds, ctx.remaining(timeout_s))
            await asyncio.sleep(wait)
            if wait < self.seconds:
                raise ModuleTimeout(f"{where} did not answer within {wait:.1f} s (injected: slow by {self.seconds} s)", module=module, method=method)
            return
        if self.kind == "timeout":
            raise ModuleTimeout(f"{where} did not answer within {timeout_s:.1f} s (injected)", module=module, method=method)
        if self.kind == "crash":
            raise ModuleCrashed(f"module {module} crashed during {method} (injected)", fix="see the module's log", module=module, method=method)
        if self.kind == "busy":
            raise ModuleBusy(f"module {module} is at its concurrency limit (injected)", fix="retry later, or raise [limits] concurrency / queue", module=module)
        if self.kind == "denied":
            grant = GRANTS.get(self.capability, "{target}").format(target=self.target)
            raise CapabilityDenied(module, self.capability, self.target, grant)
        raise ValueError(f"unknown fault kind {self.kind!r}")


def slow(module: str, seconds: float, *, method: str | None = None, times: int | None = None) -> Fault:
    return Fault("slow", module, method, times, seconds=seconds)


def timeout(module: str, *, method: str | None = None, times: int | None = None) -> Fault:
    return Fault("timeout", module, method, times)


def crash(module: str, *, method: str | None = None, times: int | None = None) -> Fault:
    return Fault("crash", module, method, times)


def busy(module: str, *, method: str | None = None, times: int | None = None) -> Fault:
    return Fault("busy", module, method, times)


def denied(module: str, capability: str = "egress", target: str = "https://example.com:443", *, method: str | None = None, times: int | None = None) -> Fault:
    return Fault("denied", module, method, times, capability=capability, target=target)
