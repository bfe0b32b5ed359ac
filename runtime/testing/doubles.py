"""What stands in front of every module call in a test: simulated modules, injected faults, a record of calls.

A ModuleDoubles is the ModuleManager's `intercept` (runtime.modules.manager): faults matching a
call apply first (raise, or slow it down), then a simulated module answers if there is one, else
the real module does.
"""

from __future__ import annotations

from typing import Any, Iterable

from runtime.core.call import CallContext
from runtime.modules.manager import Proceed
from runtime.testing.faults import Fault
from runtime.testing.simulate import Call, SimulatedModule

DEFAULT_TIMEOUT_S = 30.0


class ModuleDoubles:
    def __init__(self, simulated: Iterable[SimulatedModule] = (), faults: Iterable[Fault] = ()):
        self.simulated: dict[str, SimulatedModule] = {}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []  # every call, to real and simulated modules alike
        for sim in simulated:
            self.simulate(sim)
        for fault in faults:
            self.inject(fault)

    def simulate(self, sim: SimulatedModule) -> SimulatedModule:
        self.simulated[sim.name] = sim
        return sim

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def calls_to(self, module: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.module == module and method in (None, c.method)]

    async def __call__(self, module: str, method: str, payload: Any, ctx: CallContext, proceed: Proceed) -> Any:
        self.calls.append(Call(module, method, payload, ctx.request_id, ctx.caller))
        name = module.partition("@")[0]  # a simulation stands in for every version of its module (greet@^1 too)
        sim = self.simulated.get(name)
        timeout_s = sim.manifest.method_timeout_ms(method) / 1000 if sim and method in sim.manifest.methods else DEFAULT_TIMEOUT_S
        for fault in list(self.faults):
            if fault.matches(name, method):
                await fault.apply(module, method, timeout_s, ctx)
        if sim is not None:
            return await sim.call(method, payload, ctx)
        return await proceed(module, method, payload, ctx)
