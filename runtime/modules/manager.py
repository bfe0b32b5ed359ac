"""The module manager: owns the backends, starts sandboxes, routes every call to a module.

Handlers reach it through gctx.modules (handles.py), modules through their host gate's
`call_module`, the CLI directly. A call names a module (`greet`: its active version, unless the
handler's MODULES pins it through the CallContext) or a version constraint (`greet@^1`,
resolved by versions.py, which passes over versions out of service: health.py). A call looks
the module up in the registry, checks the method is declared, checks the
payload against the method's input schema (contracts.py), encodes the payload as JSON,
waits for a slot (bounded concurrency and a bounded queue: past that
the call is refused as busy, never queued without end), runs it in the module's
sandbox under its deadline, and decodes the JSON answer, checked against the output schema.
Failures are the typed errors of runtime.core.errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable

import msgspec
from opentelemetry import propagate, trace

from runtime.core import versions
from runtime.core.call import MAX_CALL_DEPTH, CallContext, TraceContext, request_context
from runtime.core.errors import (
    BadPayload,
    GatiError,
    MethodNotFound,
    ModuleBusy,
    ModuleTimeout,
)
from runtime.core.host import Host, Resolver
from runtime.core.registry import Registration
from runtime.core.secrets import Secrets
from runtime.core.state import StateDir
from runtime.modules.backends import Backends
from runtime.modules.contracts import Contracts
from runtime.modules.health import HealthChecks
from runtime.modules.versions import VersionIndex
from sandboxes import Sandbox

# JSON payloads in and out of a module; gRPC's own message limit is 4 MiB, and a WASM module
# must copy its input into its own linear memory.
MAX_PAYLOAD_BYTES = 4 << 20

# One encoder for every call (json.dumps with options builds a new one each time). NaN and
# Infinity are not JSON: a payload holding them is refused, as an answer holding them is.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

# How long past its own deadline we wait for a sandbox before giving up on it: the
# sandbox stops the work itself (epochs, kill); this only guards against a stuck backend.
BACKSTOP_S = 2.0

# What runs the call itself: (module, method, payload, ctx) -> the decoded answer.
Proceed = Callable[[str, str, Any, CallContext], Awaitable[Any]]
# Put in front of every call: intercept(module, method, payload, ctx, proceed) answers itself or awaits proceed(...).
Intercept = Callable[[str, str, Any, CallContext, Proceed], Awaitable[Any]]


class _Running:
    """A started sandbox plus the gate that bounds its concurrency."""

    def __init__(self, registration: Registration, sandbox: Sandbox):
        self.registration = registration
        self.sandbox = sandbox
        limits = registration.manifest.limits
        self.slots = asyncio.Semaphore(limits.concurrency)
        self.max_waiting = limits.queue
        self.waiting = 0
        self.bounded = getattr(sandbox, "bounded", False)  # it stops its own calls: no backstop timer needed
        self.active = 0  # calls in it, waiting or running: a replaced sandbox is closed once they are done
        self.idle = asyncio.Event()
        self.idle.set()

    async def call(self, method: str, data: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        name = self.registration.name
        if self.slots.locked() and self.waiting >= self.max_waiting:
            raise ModuleBusy(
                f"module {name} is at its concurrency limit with {self.waiting} calls waiting",
                fix="retry later, or raise [limits] concurrency / queue",
                module=name,
            )
        self.active += 1
        self.idle.clear()
        try:
            if self.slots.locked():
                self.waiting += 1
                try:
                    async with asyncio.timeout(timeout_s):
                        await self.slots.acquire()
                except TimeoutError:
                    raise ModuleTimeout(f"{name}.{method} waited {timeout_s:.1f} s for a free slot", module=name, method=method) from None
                finally:
                    self.waiting -= 1
            else:
                await self.slots.acquire()  # free: returns at once
            try:
                if self.bounded:
                    return await self.sandbox.call(method, data, ctx, timeout_s)
                async with asyncio.timeout(timeout_s + BACKSTOP_S):
                    return await self.sandbox.call(method, data, ctx, timeout_s)
            except TimeoutError:
                raise ModuleTimeout(f"{name}.{method} did not answer within {timeout_s:.1f} s", module=name, method=method) from None
            finally:
                self.slots.release()
        finally:
            self.active -= 1
            if self.active == 0:
                self.idle.set()


class ModuleManager:
    def __init__(
        self,
        state: StateDir,
        *,
        egress_hosts: dict[str, str] | None = None,
        secrets: Secrets | None = None,
        environ: dict[str, str] | None = None,
    ):
        self.state = state
        self.resolver = Resolver(egress_hosts)
        self.secrets = secrets or Secrets()
        self.environ = dict(os.environ if environ is None else environ)
        self.backends = Backends(state)
        self.contracts = Contracts()  # the methods' declared input/output schemas, checked on every call
        self._running: dict[str, _Running] = {}  # name -> the sandbox of its active registration
        self._pinned: dict[str, _Running] = {}  # "name@version" -> a sandbox of another version, reached by a constraint
        self._starting: dict[str, asyncio.Lock] = {}
        self.versions = VersionIndex(state.registry)
        self.checks = HealthChecks(self._running_registrations, self._check_health, self.versions.mark)
        self._retiring: set[asyncio.Task] = set()
        # Told of every call: (module, method, outcome "ok" or an error code, seconds). The app records metrics with it.
        self.observer: Callable[[str, str, str, float], None] | None = None
        # Sees every call first, handlers' and modules' alike: runtime.testing's simulated modules and faults.
        self.intercept: Intercept | None = None
        # Makes a span of each call made under a recording span (the app's tracer: runtime.http.tracing).
        self.tracer: trace.Tracer | None = None

    def health(self) -> dict[str, str]:
        """Each registered module: "ok" (started), "down" (its sandbox says it is unhealthy, or its active
        version's health checks took it out of service) or "idle" (not started yet)."""
        out = {}
        for name in self.state.registry.names():
            running = self._running.get(name)
            out[name] = "idle" if running is None else "ok" if running.sandbox.healthy() else "down"
            if running is not None and f"{name}@{running.registration.manifest.version}" in self.versions.out_of_service:
                out[name] = "down"
        return out

    def out_of_service(self) -> dict[str, str]:
        """Each module version its health checks took out of service ("name@version"), and why."""
        return dict(self.versions.out_of_service)

    async def call(self, module: str, method: str, payload: Any = None, *, ctx: CallContext | None = None) -> Any:
        """module: a name, or name@constraint (`greet@1`, `greet@1.2.0`, `greet@^1.2`)."""
        if self.tracer is not None and trace.get_current_span().is_recording():
            return await self._traced(module, method, payload, ctx or request_context.get())
        if self.observer is None:
            return await self._call(module, method, payload, ctx)
        return await self._observed(module, method, payload, ctx)

    async def _traced(self, module: str, method: str, payload: Any, ctx: CallContext) -> Any:
        """The call as a CLIENT span under the current one; the callee continues the trace from that span."""
        attributes = {"rpc.system": "gati", "rpc.service": module, "rpc.method": method, "gati.module": module}
        if ctx.request_id:
            attributes["gati.request_id"] = ctx.request_id
        with self.tracer.start_as_current_span(f"{module}.{method}", kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # traceparent naming this span, tracestate, baggage (OTEL_PROPAGATORS)
            ctx = replace(ctx, trace=TraceContext(carrier.get("traceparent", ""), carrier.get("tracestate", ""), carrier.get("baggage", "")))
            try:
                if self.observer is None:
                    return await self._call(module, method, payload, ctx)
                return await self._observed(module, method, payload, ctx)
            except GatiError as err:
                span.set_attribute("error.type", err.code)
                raise

    async def _observed(self, module: str, method: str, payload: Any, ctx: CallContext | None) -> Any:
        start, outcome = time.perf_counter(), "ok"
        try:
            return await self._call(module, method, payload, ctx)
        except GatiError as err:
            outcome = err.code
            raise
        except BaseException as err:
            outcome = type(err).__name__
            raise
        finally:
            self.observer(module.partition("@")[0], method, outcome, time.perf_counter() - start)  # metrics by name

    async def _call(self, module: str, method: str, payload: Any, ctx: CallContext | None) -> Any:
        ctx = ctx or request_context.get()
        if self.intercept is not None:
            return await self.intercept(module, method, payload, ctx, self._dispatch)
        return await self._dispatch(module, method, payload, ctx)

    async def _dispatch(self, module: str, method: str, payload: Any, ctx: CallContext) -> Any:
        if ctx.depth > MAX_CALL_DEPTH:
            raise GatiError(f"module call chain deeper than {MAX_CALL_DEPTH} (a loop?) at {module}.{method}", module=module)
        registration, active = self._registration(module, ctx)
        manifest = registration.manifest
        if method not in manifest.methods:
            raise MethodNotFound(
                f"module {module!r} has no method {method!r}",
                fix=f"call one of: {', '.join(sorted(manifest.methods))}, or declare [methods.{method}] in its module.toml",
                module=module,
                method=method,
            )
        self.contracts.check_input(registration, method, payload)
        try:
            data = _encode(payload).encode()
        except (TypeError, ValueError) as exc:
            raise BadPayload(f"payload for {module}.{method} is not JSON-compatible: {exc}", module=module, method=method) from None
        if len(data) > MAX_PAYLOAD_BYTES:
            raise BadPayload(
                f"payload for {module}.{method} is {len(data)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit",
                fix="send less per call (split it, or pass a kv key or a file path the module is granted)",
                module=module,
                method=method,
            )
        running = await self._running_for(registration, active)
        timeout_s = ctx.remaining(manifest.method_timeout_ms(method) / 1000)
        out = await running.call(method, data, ctx, timeout_s)
        if len(out) > MAX_PAYLOAD_BYTES:
            raise BadPayload(f"{module}.{method} answered {len(out)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit", module=module, method=method)
        try:
            result = msgspec.json.decode(out)  # strict JSON (no NaN), ~15x faster than json.loads
        except ValueError:
            raise BadPayload(
                f"{module}.{method} answered with something that is not JSON: {out[:80]!r}",
                fix="the module must write JSON with its output function",
                module=module,
                method=method,
            ) from None
        self.contracts.check_output(registration, method, result)
        return result

    def _registration(self, module: str, ctx: CallContext) -> tuple[Registration, bool]:
        """The registration a call reaches, and whether it is the name's active one."""
        if "@" not in module:
            pins = ctx.pins
            if not pins or module not in pins:
                return self.state.registry.get(module), True  # the common call: a name, no pin
            name, spec = module, pins[module]
        else:
            name, spec = versions.split(module)
        registration = self.versions.resolve(name, spec or "")
        return registration, self.versions.is_active(registration)

    async def _running_for(self, registration: Registration, active: bool = True) -> _Running:
        """The started sandbox for this exact registration, starting (or restarting) it when needed.

        The active registration of a name runs in _running[name]; another version reached through a
        constraint in _pinned["name@version"], beside it."""
        name = registration.name
        table, slot = (self._running, name) if active else (self._pinned, f"{name}@{registration.manifest.version}")
        running = table.get(slot)
        if running is not None and running.registration == registration:
            return running
        lock = self._starting.setdefault(slot, asyncio.Lock())
        async with lock:
            running = table.get(slot)
            if running is not None and running.registration == registration:
                return running
            pinned = self._pinned.get(f"{name}@{registration.manifest.version}") if active else None
            if pinned is not None and pinned.registration == registration:
                table[slot] = self._pinned.pop(f"{name}@{registration.manifest.version}")  # a pinned version became the active one
            else:
                sandbox = self.backends.of(registration.manifest.kind).sandbox(registration, self._host(registration))
                await sandbox.start()
                table[slot] = _Running(registration, sandbox)
            if registration.manifest.health is not None:
                self.checks.start()
            if running is not None:
                # A newer registration replaces the old one (a rebuild, `gati dev`): calls already in the
                # old sandbox finish there, new ones go to the new sandbox; then the old one is closed.
                task = asyncio.get_running_loop().create_task(self._retire(running))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            return table[slot]

    def _running_registrations(self) -> list[Registration]:
        return [r.registration for r in (*self._running.values(), *self._pinned.values())]

    async def _check_health(self, registration: Registration) -> None:
        """One health check of a running version (health.py calls it; raises when it fails)."""
        health = registration.manifest.health
        name, version = registration.name, registration.manifest.version
        running = self._running.get(name)
        if running is None or running.registration != registration:
            running = self._pinned.get(f"{name}@{version}")
        if running is None:
            return  # retired since: nothing to check
        if health.method is None:
            if not running.sandbox.healthy():
                raise GatiError(f"{name}@{version}: its sandbox is not healthy")
            return
        ctx = CallContext(request_id="health", caller="health", deadline=time.monotonic() + health.timeout_ms / 1000)
        await running.call(health.method, _encode(health.payload).encode(), ctx, health.timeout_ms / 1000)

    async def _retire(self, running: _Running) -> None:
        timeout_s = running.registration.manifest.limits.timeout_ms / 1000 + BACKSTOP_S
        try:
            async with asyncio.timeout(timeout_s):  # every call in it has its own deadline: this is only a backstop
                await running.idle.wait()
        except TimeoutError:
            pass
        finally:
            await running.sandbox.close()  # also when close() cancels the wait

    def _host(self, registration: Registration) -> Host:
        """The gate of one module, handed exactly what it may give out."""

        async def call_module(ctx: CallContext, module: str, method: str, payload: Any) -> Any:
            return await self.call(module, method, payload, ctx=ctx)

        return Host(
            registration.loaded,
            audit=self.state.audit,
            environ=self.environ,
            secrets=self.secrets,
            kv=self.state.kv,
            resolver=self.resolver,
            call_module=call_module,
            module_versions=self.versions.version_names,
        )

    async def close(self) -> None:
        await self.checks.close()
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for running in (*self._running.values(), *self._pinned.values()):
            await running.sandbox.close()
        self._running.clear()
        self._pinned.clear()
        await self.backends.close()
