"""Simulated modules: a double declared from a real module.toml, answering in-process.

    greet = simulate("modules/greet", hello={"message": "hi"})              # a canned answer
    greet = simulate("modules/greet", hello=lambda payload: {"n": len(payload)})
    greet.answer("hello", my_async_function)                              # fn(payload) or fn(payload, call)
    ...
    assert greet.calls[0].payload == {"name": "ada"}

It keeps the module's contract as the manifest states it: a method the manifest does not
declare is refused (at set-up and at call time, MethodNotFound as from a real module); payloads
and answers must be JSON and fit the method's declared input and output schemas (BadPayload,
checked by the manager's own runtime.modules.contracts), and the caller receives the JSON round
trip, as from a real module; the method's timeout applies (ModuleTimeout). Every call is recorded.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.core.call import CallContext
from runtime.core.errors import BadPayload, GatiError, MethodNotFound, ModuleError, ModuleTimeout
from runtime.core.manifest import LoadedManifest, Manifest, load_manifest
from runtime.core.registry import Registration
from runtime.modules.contracts import Contracts


@dataclass(frozen=True)
class Call:
    """One call a module received: what a test asserts on."""

    module: str
    method: str
    payload: Any
    request_id: str = ""
    caller: str = ""
    at: float = 0.0


class SimulatedModule:
    def __init__(self, manifest: str | Path, **answers: Any):
        self.loaded: LoadedManifest = load_manifest(manifest, built=False)
        # As if registered: the manager's contract checks take a registration (no artifact is pinned).
        self._registration = Registration(self.loaded, "simulated", time.time())
        self._contracts = Contracts()
        self.calls: list[Call] = []
        self._answers: dict[str, Any] = {}
        for method, answer in answers.items():
            self.answer(method, answer)

    @property
    def name(self) -> str:
        return self.loaded.manifest.name

    @property
    def manifest(self) -> Manifest:
        return self.loaded.manifest

    @property
    def dir(self) -> Path:
        return Path(self.loaded.base_dir)

    def answer(self, method: str, answer: Any) -> "SimulatedModule":
        """What method answers: a JSON value, or fn(payload) / fn(payload, call), sync or async, returning one."""
        if method not in self.manifest.methods:
            raise GatiError(
                f"{self.name}'s module.toml declares no method {method!r}, so a simulation of it cannot answer one",
                fix=f"simulate one of: {', '.join(sorted(self.manifest.methods))}, or declare [methods.{method}] in {self.loaded.file}",
            )
        self._answers[method] = answer
        return self

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def call(self, method: str, payload: Any = None, ctx: CallContext | None = None) -> Any:
        ctx = ctx or CallContext(caller="test")
        if method not in self.manifest.methods:
            raise MethodNotFound(
                f"module {self.name!r} has no method {method!r}",
                fix=f"call one of: {', '.join(sorted(self.manifest.methods))}, or declare [methods.{method}] in its module.toml",
                module=self.name,
                method=method,
            )
        sent = _json_round_trip(payload, f"payload for {self.name}.{method} is not JSON-compatible", self.name, method)
        call = Call(self.name, method, sent, ctx.request_id, ctx.caller, time.time())
        self.calls.append(call)
        self._contracts.check_input(self._registration, method, sent)
        if method not in self._answers:
            raise ModuleError(
                f"simulated module {self.name} was given no answer for {method}",
                fix=f"simulate(..., {method}=VALUE or a function), or .answer({method!r}, ...)",
                module=self.name,
                method=method,
            )
        timeout_s = ctx.remaining(self.manifest.method_timeout_ms(method) / 1000)
        try:
            async with asyncio.timeout(timeout_s):
                result = await _run(self._answers[method], sent, call)
        except TimeoutError:
            raise ModuleTimeout(f"{self.name}.{method} did not answer within {timeout_s:.1f} s", module=self.name, method=method) from None
        answer = _json_round_trip(result, f"{self.name}.{method} answered with something that is not JSON", self.name, method)
        self._contracts.check_output(self._registration, method, answer)
        return answer


async def _run(answer: Any, payload: Any, call: Call) -> Any:
    if not callable(answer):
        return answer
    try:
        takes_call = len(inspect.signature(answer).parameters) >= 2
    except (TypeError, ValueError):  # a builtin without a signature: called with the payload alone
        takes_call = False
    result = answer(payload, call) if takes_call else answer(payload)
    return await result if inspect.isawaitable(result) else result


def _json_round_trip(value: Any, problem: str, module: str, method: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise BadPayload(f"{problem}: {exc}", module=module, method=method) from None


def simulate(manifest: str | Path, **answers: Any) -> SimulatedModule:
    """A SimulatedModule from a module folder or its module.toml; answers by method name."""
    return SimulatedModule(manifest, **answers)

