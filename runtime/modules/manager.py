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
import os
import time
from collections import deque
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
from runtime.modules import payload_json
from runtime.modules.backends import Backends
from runtime.modules.contracts import Contracts
from runtime.modules.health import HealthChecks
from runtime.modules.versions import VersionIndex
from sandboxes import Sandbox

# JSON payloads in and out of a module; gRPC's own message limit is 4 MiB, and a WASM module
# must copy its input into its own linear memory.
MAX_PAYLOAD_BYTES = 4 << 20

# NaN and Infinity are not JSON: a payload holding them is refused, as an answer holding them is.
_encode = payload_json.encode

# How long past its own deadline we wait for a sandbox before giving up on it: the
# sandbox stops the work itself (epochs, kill); this only guards against a stuck backend.
BACKSTOP_S = 2.0

# A version other than a name's active one runs only while something pins it (a handler's MODULES,
# a module's grant, a call naming it): its sandbox is closed once no call reached it for this long,
# and started again by the next call that does. The active versions stay up.
PINNED_IDLE_S = 300.0

# What runs the call itself: (module, method, payload, ctx) -> the decoded answer.
Proceed = Callable[[str, str, Any, CallContext], Awaitable[Any]]
# Put in front of every call: intercept(module, method, payload, ctx, proceed) answers itself or awaits proceed(...).
Intercept = Callable[[str, str, Any, CallContext, Proceed], Awaitable[Any]]


class _Running:
    """A started sandbox plus the gate that bounds its concurrency: `free` slots, then a line of
    waiting calls (first come, first served) no longer than `max_waiting`.

    The gate is two fields rather than an asyncio.Semaphore so that the manager's fast path takes
    and gives a free slot with no coroutine and no method call (0.64 -> 0.08 µs a call). While a
    slot is free nobody waits: a freed slot goes to the first in line before it counts as free."""

    def __init__(self, registration: Registration, sandbox: Sandbox):
        self.registration = registration
        self.sandbox = sandbox
        manifest = registration.manifest
        limits = manifest.limits
        self.free = limits.concurrency
        self.line: deque[asyncio.Future] = deque()  # one future per waiting call, resolved when a slot is handed to it
        self.max_waiting = limits.queue
        self.bounded = getattr(sandbox, "bounded", False)  # it stops its own calls: no backstop timer needed
        # Each method's own timeout (else the module's), in seconds: asked once, not per call.
        self.timeouts = {method: manifest.method_timeout_ms(method) / 1000 for method in manifest.methods}
        self.active = 0  # calls in it, waiting or running: a replaced sandbox is closed once they are done
        self.last_used = time.monotonic()  # when a call last reached or left it (health checks aside): pinned ones idle out
        self._drained: asyncio.Event | None = None  # made only while _retire waits for the calls in it

    @property
    def waiting(self) -> int:
        return len(self.line)

    async def call(self, method: str, data: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        name = self.registration.name
        if not self.free and len(self.line) >= self.max_waiting:
            raise ModuleBusy(
                f"module {name} is at its concurrency limit with {len(self.line)} calls waiting",
                fix="retry later, or raise [limits] concurrency / queue",
                module=name,
            )
        self.active += 1
        try:
            if self.free:
                self.free -= 1
            else:
                await self._wait(method, timeout_s)
            try:
                if self.bounded:
                    return await self.sandbox.call(method, data, ctx, timeout_s)
                async with asyncio.timeout(timeout_s + BACKSTOP_S):
                    return await self.sandbox.call(method, data, ctx, timeout_s)
            except TimeoutError:
                raise _no_answer(name, method, timeout_s) from None
            finally:
                self.give()
        finally:
            self.left()

    async def _wait(self, method: str, timeout_s: float) -> None:
        """Wait in line for a slot, up to timeout_s."""
        waiter = asyncio.get_running_loop().create_future()
        self.line.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we gave up: the next in line gets it
            else:
                self.line.remove(waiter)
            if isinstance(exc, TimeoutError):
                name = self.registration.name
                raise ModuleTimeout(f"{name}.{method} waited {timeout_s:.1f} s for a free slot", module=name, method=method) from None
            raise

    def give(self) -> None:
        """A slot is given back: to the first call in line, else it is free."""
        line = self.line
        while line:
            waiter = line.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    def left(self) -> None:
        """A call left this sandbox."""
        self.active -= 1
        if not self.active and self._drained is not None:
            self._drained.set()
            self._drained = None

    async def drained(self) -> None:
        """Return once no call is in this sandbox."""
        if self.active:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()


class ModuleManager:
    def __init__(
        self,
        state: StateDir,
        *,
        egress_hosts: dict[str, str] | None = None,
        secrets: Secrets | None = None,
        environ: dict[str, str] | None = None,
        pinned_idle_s: float = PINNED_IDLE_S,
    ):
        self.state = state
        self.resolver = Resolver(egress_hosts)
        self.secrets = secrets or Secrets()
        self.environ = dict(os.environ if environ is None else environ)
        self.backends = Backends(state)
        self.contracts = Contracts()  # the methods' declared input/output schemas, checked on every call
        self._running: dict[str, _Running] = {}  # name -> the sandbox of its active registration
        self._pinned: dict[str, _Running] = {}  # "name@version" -> a sandbox of another version, reached by a constraint
        self.pinned_idle_s = pinned_idle_s
        self._reaper: asyncio.Task | None = None  # closes idle pinned sandboxes while there are any
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
        if self.tracer is not None and (trace.get_current_span().is_recording() or (ctx is not None and ctx.depth and ctx.trace is not None)):
            return await self._traced(module, method, payload, ctx or request_context.get())
        # The fast path, for the common call: a name without a pin, no intercept, its active registration
        # started with a free slot in a sandbox that bounds its own calls, a declared method. It does what
        # _observed, _call, _dispatch and _Running.call do, in this one frame; anything else goes there.
        running = self._running.get(module)  # None for "name@constraint": those keys are bare names
        if running is None or self.intercept is not None or not running.bounded:
            return await (self._call(module, method, payload, ctx) if self.observer is None else self._observed(module, method, payload, ctx))
        if ctx is None:
            ctx = request_context.get()
        pins = ctx.pins
        default_s = running.timeouts.get(method)
        if default_s is None or (pins and module in pins) or ctx.depth > MAX_CALL_DEPTH:
            return await (self._call(module, method, payload, ctx) if self.observer is None else self._observed(module, method, payload, ctx))
        observer = self.observer
        start, outcome = time.perf_counter(), "ok"
        try:
            registration = self.state.registry.get(module)
            if registration is not running.registration or not running.free:  # re-registered, or a wait for a slot
                return await self._dispatch(module, method, payload, ctx)
            data = self._payload(registration, module, method, payload)
            deadline = ctx.deadline  # ctx.remaining(default_s), inline
            timeout_s = default_s if deadline is None else max(0.0, min(default_s, deadline - time.monotonic()))
            running.free -= 1  # no await since the check above: the slot is still free
            running.active += 1
            try:
                out = await running.sandbox.call(method, data, ctx, timeout_s)
            except TimeoutError:
                raise _no_answer(module, method, timeout_s) from None
            finally:
                running.give()
                running.left()
            return self._answer(registration, module, method, out)
        except BaseException as err:
            outcome = _outcome(err)
            raise
        finally:
            if observer is not None:
                observer(module, method, outcome, time.perf_counter() - start)

    async def _traced(self, module: str, method: str, payload: Any, ctx: CallContext) -> Any:
        """The call as a CLIENT span under the current one; the callee continues the trace from that span.

        A module's call of another through the host service (a gRPC request from its process) has
        no current span: its parent is the calling module's own call, whose trace context it carries."""
        attributes = {"rpc.system": "gati", "rpc.service": module, "rpc.method": method, "gati.module": module}
        if ctx.request_id:
            attributes["gati.request_id"] = ctx.request_id
        parent = None
        if not trace.get_current_span().is_recording() and ctx.trace is not None:
            parent = propagate.extract({"traceparent": ctx.trace.traceparent, "tracestate": ctx.trace.tracestate, "baggage": ctx.trace.baggage})
        with self.tracer.start_as_current_span(f"{module}.{method}", context=parent, kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
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
        except BaseException as err:
            outcome = _outcome(err)
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
        data = self._payload(registration, module, method, payload)
        running = await self._running_for(registration, active)
        timeout_s = ctx.remaining(manifest.method_timeout_ms(method) / 1000)
        running.last_used = time.monotonic()
        try:
            out = await running.call(method, data, ctx, timeout_s)
        finally:
            running.last_used = time.monotonic()
        return self._answer(registration, module, method, out)

    # What both paths do before and after the sandbox: plain functions, so the fast path pays no frame of a coroutine for them.
    def _payload(self, registration: Registration, module: str, method: str, payload: Any) -> bytes:
        """The payload, checked against the method's input schema, as JSON within the size limit."""
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
        return data

    def _answer(self, registration: Registration, module: str, method: str, out: bytes) -> Any:
        """The module's answer decoded (strict JSON: no NaN), within the size limit, checked against the output schema."""
        if len(out) > MAX_PAYLOAD_BYTES:
            raise BadPayload(f"{module}.{method} answered {len(out)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit", module=module, method=method)
        try:
            result = msgspec.json.decode(out)  # ~15x faster than json.loads
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
                if not active and self._reaper is None:
                    self._reaper = asyncio.get_running_loop().create_task(self._reap_idle_pinned())
            if registration.manifest.health is not None:
                self.checks.start()
            if running is not None:
                # A newer registration replaces the old one (a rebuild, `gati dev`): calls already in the
                # old sandbox finish there, new ones go to the new sandbox; then the old one is closed.
                self._retire_later(running)
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

    async def _reap_idle_pinned(self) -> None:
        """Close each pinned sandbox no call reached for pinned_idle_s; ends when none is left."""
        try:
            while self._pinned:
                await asyncio.sleep(min(self.pinned_idle_s / 2, 30.0))
                now = time.monotonic()
                for slot, running in list(self._pinned.items()):
                    # No await between the look and the removal: a call that found it has made it active.
                    if not running.active and now - running.last_used >= self.pinned_idle_s:
                        del self._pinned[slot]
                        self._retire_later(running)
        finally:
            self._reaper = None

    def _retire_later(self, running: _Running) -> None:
        """Close running's sandbox once the calls in it are done, in the background (close() finishes it)."""
        task = asyncio.get_running_loop().create_task(self._retire(running))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, running: _Running) -> None:
        timeout_s = running.registration.manifest.limits.timeout_ms / 1000 + BACKSTOP_S
        try:
            async with asyncio.timeout(timeout_s):  # every call in it has its own deadline: this is only a backstop
                await running.drained()
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
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for running in (*self._running.values(), *self._pinned.values()):
            await running.sandbox.close()
        self._running.clear()
        self._pinned.clear()
        await self.backends.close()


def _outcome(err: BaseException) -> str:
    """What the observer (metrics) is told of a failed call: the error's code, else its type."""
    return err.code if isinstance(err, GatiError) else type(err).__name__


def _no_answer(module: str, method: str, timeout_s: float) -> ModuleTimeout:
    return ModuleTimeout(f"{module}.{method} did not answer within {timeout_s:.1f} s", module=module, method=method)
