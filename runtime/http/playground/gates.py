"""Debug gates: pause a route's requests before or after a chosen hook (or the handler).

    gates.set("/orders", "before", "handler")   every request of /orders now waits there
    gates.state(id, {...}); gates.resume(id)     look at and edit its lctx state, let it go on
    gates.fail(id, status, message)              or end it with an error

A route has at most one gate. Runtime.gates, the dict of route pattern -> gate, is what each
Lifecycle looks up once per request (runtime.http.lifecycle): a route without a gate costs that
one lookup and nothing else. While a request waits, its deadline is held: the time paused is not
counted against the route's timeout nor against its module calls' deadlines. Stopping the server
fails every waiting request.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import msgspec

from runtime.core.call import request_context
from runtime.core.errors import GatiError
from runtime.http.context import LocalContext

WHEN = ("before", "after")
_encode = msgspec.json.Encoder(enc_hook=repr).encode


def shown(value: Any) -> Any:
    """A state value as the playground shows it: JSON, whatever is not JSON as its repr."""
    return msgspec.json.decode(_encode(value))


class FailedAtGate(GatiError):
    code = "failed_at_gate"

    def __init__(self, message: str, status: int):
        super().__init__(message, fix="this request was ended in the playground; send it again")
        self.http_status = status


class GateError(GatiError):
    code = "gate_invalid"
    http_status = 400


@dataclass(frozen=True)
class Gate:
    id: str
    route: str
    when: str  # before | after
    hook: str  # a hook's name, or "handler"
    gates: "Gates" = field(compare=False, repr=False)

    async def reach(self, when: str, hook: str, lctx: LocalContext) -> None:
        if when == self.when and hook == self.hook:
            await self.gates.pause(self, lctx)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "route": self.route, "when": self.when, "hook": self.hook}


@dataclass
class Paused:
    gate: Gate
    lctx: LocalContext
    future: asyncio.Future
    since: float

    def view(self) -> dict[str, Any]:
        lctx = self.lctx
        return {
            "id": lctx.request_id, "route": self.gate.route, "when": self.gate.when, "hook": self.gate.hook,
            "method": lctx.method, "path": lctx.path, "phase": lctx.phase, "since": self.since,
            "state": {k: shown(lctx.get(k)) for k in lctx.keys()},
        }


class Gates:
    def __init__(self, by_route: dict[str, Gate], notify: Callable[[str, Any], None]):
        self.by_route = by_route  # the very dict every Lifecycle looks up (Runtime.gates)
        self.paused: dict[str, Paused] = {}
        self.notify = notify

    def set(self, route: str, when: str, hook: str, hooks: list[str]) -> Gate:
        """Gate route at when/hook; hooks: the names the route runs (its hooks and "handler")."""
        if when not in WHEN:
            raise GateError(f"a gate is set before or after a hook, not {when!r}", fix='use "before" or "after"')
        if hook not in hooks:
            raise GateError(f"route {route} runs no hook {hook!r}", fix=f"choose one of: {', '.join(hooks)}")
        old = self.by_route.get(route)
        gate = Gate(os.urandom(6).hex(), route, when, hook, self)
        self.by_route[route] = gate
        if old is not None:
            self._release(old)
        self.notify("gates", self.views())
        return gate

    def remove(self, gate_id: str) -> bool:
        for route, gate in list(self.by_route.items()):
            if gate.id == gate_id:
                del self.by_route[route]
                self._release(gate)
                self.notify("gates", self.views())
                return True
        return False

    def views(self) -> list[dict[str, Any]]:
        return [g.view() for g in self.by_route.values()]

    def _release(self, gate: Gate) -> None:
        """A gate removed or replaced lets its waiting requests go on."""
        for paused in list(self.paused.values()):
            if paused.gate is gate and not paused.future.done():
                paused.future.set_result(None)

    async def pause(self, gate: Gate, lctx: LocalContext) -> None:
        loop = asyncio.get_running_loop()
        paused = Paused(gate, lctx, loop.create_future(), time.time())
        self.paused[lctx.request_id] = paused
        lctx.emit("gate:paused", when=gate.when, hook=gate.hook)
        watch = lctx.watch  # the request's deadline (runtime.http.deadlines)
        left = watch.when - loop.time() if watch is not None else None
        if watch is not None:
            watch.when = math.inf  # the time paused is the debugger's, not the request's
        ctx, held = request_context.get(), time.monotonic()
        self.notify("paused", paused.view())
        try:
            failure = await paused.future
        finally:
            self.paused.pop(lctx.request_id, None)
            if watch is not None:
                watch.when = loop.time() + left
            if ctx.deadline is not None:  # module calls from here on get the time they had when paused
                request_context.set(replace(ctx, deadline=ctx.deadline + (time.monotonic() - held)))
            self.notify("resumed", {"id": lctx.request_id})
        lctx.emit("gate:resumed", when=gate.when, hook=gate.hook, failed=failure is not None)
        if failure is not None:
            raise failure

    def _waiting(self, request_id: str) -> Paused:
        paused = self.paused.get(request_id)
        if paused is None or paused.future.done():
            raise GateError(f"request {request_id} is not waiting at a gate", fix="it may have gone on already: reload the list")
        return paused

    def view(self, request_id: str) -> dict[str, Any]:
        return self._waiting(request_id).view()

    def set_state(self, request_id: str, state: Any) -> dict[str, Any]:
        """Replace the waiting request's lctx state with state (a JSON object)."""
        if not isinstance(state, dict):
            raise GateError("lctx state is a JSON object", fix='send e.g. {"user": "ada"}')
        paused = self._waiting(request_id)
        lctx = paused.lctx
        before = {k: lctx.get(k) for k in lctx.keys()}
        lctx.clean()
        for key, value in state.items():
            # a value shown unchanged keeps what it was: an object that is not JSON (shown as its repr) stays that object
            same = key in before and shown(before[key]) == value
            lctx.set(key, before[key] if same else value)
        lctx.emit("gate:state", keys=sorted(state))
        return paused.view()

    def resume(self, request_id: str) -> None:
        self._waiting(request_id).future.set_result(None)

    def fail(self, request_id: str, status: int = 500, message: str = "") -> None:
        if not 400 <= status <= 599:
            raise GateError(f"{status} is not an error status", fix="use 400-599")
        paused = self._waiting(request_id)
        text = message or f"failed in the playground at the gate {paused.gate.when} {paused.gate.hook}"
        paused.future.set_result(FailedAtGate(text, status))

    def close(self) -> None:
        """The server is stopping: every waiting request fails, none waits for a person who is gone."""
        self.by_route.clear()
        for paused in list(self.paused.values()):
            if not paused.future.done():
                paused.future.set_result(FailedAtGate("the server is stopping", 503))
