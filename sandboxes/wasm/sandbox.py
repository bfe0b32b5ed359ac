"""A WASM module in wasmtime: a fresh instance per call, limits set per store.

No WASI sockets and no wasi-http are linked: the only way out is the `gati` imports,
which go through the Host. WASI gets only the declared env names and the declared
directories (read-only unless `rw`), as the Host hands them over once at start (and
audits). A call stopped at its deadline, its fuel or its memory limit is audited like the
other backends' stops (Host.limit_hit).

Where a call runs. Handing a call to a worker thread and back costs about 100 µs, several
times what a small call costs itself (docs/performance.md). So a call starts inline, on the
event loop's thread, under an epoch budget of INLINE_TICKS (10-20 ms). A call that outgrows
the budget before it has acted outside itself (no audited host call, no log line) is stopped
and run again, fresh, on a worker thread of the module's own pool (sized by its concurrency
limit), and that method's next calls go straight to a worker until one of them is short again.
A call that has acted can no longer be run again: its budget becomes its real deadline and it
finishes inline. Modules granted egress or module calls never run inline: those host calls
wait for the event loop, which an inline call is holding; nor do modules granted kv stores
when the stores are across the network (cluster mode), nor WASI modules granted a writable
directory (a write through WASI is an act the host does not see).
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

import wasmtime

from runtime.core.call import CallContext
from runtime.core.capabilities.files import FileGrant
from runtime.core.capabilities.limits import LimitHit
from runtime.core.errors import (
    GatiError,
    ModuleBusy,
    ModuleCrashed,
    ModuleError,
    ModuleTimeout,
)
from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.wasm import abi, capi, validate
from sandboxes.wasm.engine import TICK_S, WasmEngines
from sandboxes.wasm.limits import StoreLimits

# What a trap says, by wasmtime's trap code; the others are named after the code itself.
TRAPS = {
    wasmtime.TrapCode.STACK_OVERFLOW: "stack overflow (the call stack is exhausted: unbounded recursion?)",
    wasmtime.TrapCode.UNREACHABLE: "unreachable instruction executed (a panic or abort in the module)",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "memory out of bounds (a load or store past its linear memory)",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer division by zero",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to null (an uninitialized table element)",
}
BACKSTOP_S = 2.0  # how long past its deadline a worker call is awaited (a host call may block); then it is given up
INLINE_TICKS = 2  # epoch ticks an inline call may run before it moves to a worker: 10 to 20 ms


class _Outgrown(Exception):
    """An inline call ran past its budget before it acted: run it again on a worker."""


class WasmSandbox:
    bounded = True  # inline calls end by the epoch deadline; worker calls are awaited up to BACKSTOP_S past it

    def __init__(self, registration: Registration, host: Host, engines: WasmEngines):
        self.registration = registration
        self.manifest = registration.manifest
        self.host = host
        self.engines = engines
        self.fuel = self.manifest.limits.fuel
        self.limits = StoreLimits.for_memory_mb(self.manifest.limits.memory_mb)  # memory and table together
        self.engine = self.engines.engine(bool(self.fuel))
        self._pool = ThreadPoolExecutor(self.manifest.limits.concurrency, thread_name_prefix=f"gati-wasm-{self.manifest.name}")
        self._callee: capi.Callee | None = None  # the call in C: store, limits, instance, call, drop
        self._methods: dict[str, bytes] = {}
        self.uses_wasi = False
        self._environ: dict[str, str] = {}  # what WASI is handed: taken from the Host once, at start
        self._mounts: list[FileGrant] = []
        self.inline = False
        self._offloaded: set[str] = set()  # methods whose last call outgrew the inline budget

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        pre, initialize = await loop.run_in_executor(self._pool, self._prepare)
        self._callee = capi.Callee(
            (self.engine, pre),  # kept alive by the Callee, which holds their addresses
            capi.address(self.engine.ptr()),
            capi.address(pre.ptr()),
            *self.limits.limiter(),
            self.fuel or 0,
            initialize,
        )

    def _prepare(self) -> tuple[wasmtime.InstancePre, bool]:
        self.registration.verify_artifact()
        module = self.engines.load(self.registration.loaded.artifact_path(), self.registration.artifact_sha256, bool(self.fuel))
        # Registration ran the same checks; a registration recorded before them gets them here.
        # They include every export's type: capi calls them unchecked.
        pre, self.uses_wasi = validate.link(self.engine, module, self.registration.loaded)
        self._methods = {method: method.encode() for method in self.manifest.methods}
        initialize = any(e.name == "_initialize" for e in module.exports)
        caps = self.manifest.capabilities
        self.inline = (
            not caps.egress
            and not caps.modules
            and not (self.uses_wasi and "rw" in caps.files.values())
            and (self.host.kv_local or not caps.kv)  # a kv store across the network (cluster mode) waits for the loop too
        )
        if self.uses_wasi:
            # Only a WASI module is handed anything at start: its environment and its preopens.
            own = CallContext(caller=f"module:{self.manifest.name}")
            self._environ = self.host.start_environ(own)
            self._mounts = self.host.start_mounts(own, directories_only=True)  # WASI preopens directories only
        return pre, initialize

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout_s
        if self.inline and method not in self._offloaded:
            try:
                return self._run(method, abi.CallState(self.host, ctx, loop, payload, inline=True, deadline=deadline), timeout_s)
            except _Outgrown:
                self._offloaded.add(method)
        state = abi.CallState(self.host, ctx, loop, payload, deadline=deadline)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + BACKSTOP_S):
                out, ran_s = await loop.run_in_executor(self._pool, self._run_timed, method, state, timeout_s)
        except TimeoutError:
            raise ModuleTimeout(f"{self.manifest.name}.{method} did not answer within {timeout_s:.1f} s", module=self.manifest.name, method=method) from None
        if self._offloaded and ran_s < INLINE_TICKS * TICK_S / 4:
            self._offloaded.discard(method)  # short again: try it inline next time
        return out

    def _run_timed(self, method: str, state: abi.CallState, timeout_s: float) -> tuple[bytes, float]:
        # The call's own time on the worker, not the round trip: on a busy loop the hop back alone
        # can take milliseconds, and a short method judged by it would never come back inline.
        started = time.monotonic()
        out = self._run(method, state, timeout_s)
        return out, time.monotonic() - started

    def _run(self, method: str, state: abi.CallState, timeout_s: float) -> bytes:
        """One call in a store of its own (one C call: capi.Callee); timeout_s names the deadline in errors, state.deadline is when it falls."""
        ticks = math.ceil(max(0.0, state.deadline - time.monotonic()) / TICK_S) + 1
        if state.inline and ticks > INLINE_TICKS:
            ticks = INLINE_TICKS  # until the call commits (CallState.commit sets its real deadline)
        else:
            state.committed = True  # on a worker, or a deadline within the budget: it runs to its deadline here
        wasi = self._wasi(state) if self.uses_wasi else None  # held until the call returns: its writers are Python callbacks
        abi.begin(state)
        try:
            status, output, error, trap, memory_size = self._callee.call(
                self._methods[method], state.input, ticks, capi.address(wasi._consume()) if wasi is not None else 0
            )
        finally:
            abi.end()
        if status is None:
            exc = capi.failure(error, trap)
            if isinstance(state.exception, GatiError) or not isinstance(state.exception, (Exception, type(None))):
                raise state.exception from None  # a host call's own error, or Ctrl+C / SystemExit, as raised
            if not state.committed and getattr(exc, "trap_code", None) == wasmtime.TrapCode.INTERRUPT:
                raise _Outgrown from None  # not a limit hit: the call moves to a worker
            error, hit = self._classify(state.exception or exc, method, timeout_s, memory_size)
            if hit is not None:
                self.host.limit_hit(state.ctx, hit)
            raise error from None
        if status != 0:
            if state.unavailable is not None:
                raise state.unavailable  # the module failed because shared state did not answer: retryable
            if self._at_memory_limit(memory_size):
                # wasmtime answers a grow past the store's limit with -1, not a trap: a module that
                # then fails was stopped by its limit as surely as one that trapped.
                self.host.limit_hit(state.ctx, LimitHit.memory(self.manifest.limits, "memory.grow refused at the store's memory limit"))
            raise ModuleError(
                state.error or f"{self.manifest.name}.{method} returned {status}",
                module=self.manifest.name,
                method=method,
            )
        return output if output is not None else b"null"

    def _wasi(self, state: abi.CallState) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.env = list(self._environ.items())
        for grant in self._mounts:
            wasi.preopen_dir(str(grant.host), grant.guest, fs_mutable=grant.writable)

        def to_log(level: int):
            def write(data: bytes) -> None:
                state.commit()
                for line in data.decode("utf-8", "replace").splitlines():
                    self.host.log(state.ctx, level, line)

            return write

        wasi.stdout_custom = to_log(1)
        wasi.stderr_custom = to_log(2)
        return wasi

    def _classify(self, exc: Exception, method: str, timeout_s: float, memory_size: int) -> tuple[GatiError, LimitHit | None]:
        """The error a trap means, and the limit that stopped the call if one did (memory_size: -1 when not instantiated)."""
        instantiated = memory_size >= 0
        name = f"{self.manifest.name}.{method}"
        limits = self.manifest.limits
        code = getattr(exc, "trap_code", None)
        if code == wasmtime.TrapCode.INTERRUPT:
            return ModuleTimeout(
                f"{name} ran past its {timeout_s * 1000:.0f} ms deadline and was stopped",
                fix=f"make it faster or raise [methods.{method}] timeout_ms",
                module=self.manifest.name,
                method=method,
            ), LimitHit.deadline(method, timeout_s, "stopped by epoch interruption past its deadline")
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return ModuleTimeout(
                f"{name} used up its fuel of {self.fuel} instructions and was stopped",
                fix="raise [limits] fuel",
                module=self.manifest.name,
                method=method,
                reason="out of fuel",
            ), LimitHit.fuel(limits, method)
        if not instantiated and "maximum concurrent limit" in str(exc):
            return ModuleBusy(
                f"{name} found no free WASM instance slot: {_first_line(exc)}",
                fix="fewer calls in flight across the process's WASM modules (their [limits] concurrency), or more processes",
                module=self.manifest.name,
            ), None
        if not instantiated and "memory" in str(exc).lower() or self._at_memory_limit(memory_size):
            return ModuleCrashed(
                f"{name} reached its memory limit of {limits.memory_mb} MiB: {_cause(exc)}",
                fix="use less memory or raise [limits] memory_mb",
                module=self.manifest.name,
                method=method,
                reason="memory limit",
            ), LimitHit.memory(limits, "stopped at the store's memory limit")
        if isinstance(code, wasmtime.TrapCode):
            return ModuleCrashed(
                f"{name} crashed: {TRAPS.get(code) or code.name.lower().replace('_', ' ')}",
                module=self.manifest.name,
                method=method,
                trap=code.name.lower(),
            ), None
        return ModuleCrashed(f"{name} crashed: {_cause(exc)}", module=self.manifest.name, method=method), None

    def _at_memory_limit(self, memory_size: int) -> bool:
        """Was the module's memory, when its call ended, within one page of its limit (where a grow is refused)?"""
        return memory_size >= 0 and memory_size + 64 * 1024 > self.limits.memory_bytes

    def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def _cause(exc: Exception) -> str:
    """What went wrong, without the backtrace: wasmtime puts it under "Caused by:" when there is one."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    if "Caused by:" in lines:
        causes = [line for line in lines[lines.index("Caused by:") + 1:] if line]
        if causes:
            return "; ".join(c.split(": ", 1)[1] if c[:1].isdigit() and ": " in c else c for c in causes)
    return _first_line(exc)
