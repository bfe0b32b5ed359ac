"""Shared wasmtime state: engines, the epoch ticker and the on-disk compile cache.

Epoch interruption is what makes a per-call deadline stop a runaway loop: a ticker
thread bumps the engine's epoch every TICK_S and each store gets a deadline in ticks.
Fuel is optional and costs speed, so modules that ask for it get an engine of their own.

wasmtime reads anything that does not start with the `\\0asm` magic as WAT text, and a WAT
parse error quotes the offending source line. An artifact is module code, but an error
must never become a way to print a file: compile_module's errors name a position, never text.

The engines are the process's, shared by every WasmBackend and by registration (wasmtime's
advice: one engine per process), and use the pooling instance allocator: every instance takes
a slot reserved up front instead of mapping and unmapping its memory, which halves the cost of
a fresh instance (docs/performance.md). A slot is wiped before it is handed out again (wasmtime
zeroes the memory it kept and decommits the rest), so a call still never sees another call's
memory. POOL_SLOTS bounds the instances alive at once in the process; where the address space
for the slots cannot be reserved (a ulimit -v), the engine falls back to the on-demand allocator.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import wasmtime
from wasmtime import _ffi as ffi

from runtime.core.errors import GatiError
from sandboxes.wasm.limits import MEMORIES, TABLE_ELEMENTS, TABLES

TICK_S = 0.01
WASM_MAGIC = b"\0asm"
POOL_SLOTS = 1000  # instances (and memories, tables) alive at once, per engine
KEEP_RESIDENT = 64 << 10  # bytes of each slot's memory wiped with memset and kept mapped, not decommitted

log = logging.getLogger("gati.wasm")


class ArtifactInvalid(GatiError):
    code = "artifact_invalid"
    http_status = 500


def make_engine(fuel: bool) -> wasmtime.Engine:
    """The process's engine for this fuel setting (made on first use; its epoch ticks from then on)."""
    return SHARED.engine(fuel)


def compile_module(engine: wasmtime.Engine, data: bytes) -> wasmtime.Module:
    """A WebAssembly binary or WAT text, compiled; ArtifactInvalid (quoting no text) when it is neither."""
    if not data.startswith(WASM_MAGIC):
        try:
            data = wasmtime.wat2wasm(data)
        except wasmtime.WasmtimeError as exc:
            # `from None`, and only the position: the parser's message quotes the line.
            at = re.search(r"--> [^\n]*:(\d+):(\d+)", str(exc))
            why = f"its text fails to parse at line {at[1]}, column {at[2]}" if at else "it is not UTF-8 text"
            raise ArtifactInvalid(
                f"not a WebAssembly binary (no \\0asm header) and not WAT: {why}",
                fix="point [artifact] path at the .wasm your build writes, or fix the WAT at that position",
            ) from None
    try:
        return wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as exc:
        # A binary (or WAT that parsed): its messages name offsets and wasm names, not a file's text.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = re.sub(r"^\d+: ", "", lines[-1]) if lines else type(exc).__name__
        raise _past_limits(cause) or ArtifactInvalid(
            f"not valid WebAssembly: {cause}", fix="rebuild the module; its toolchain wrote an invalid binary"
        ) from None


def _past_limits(cause: str) -> ArtifactInvalid | None:
    """A valid module that declares more than gati gives one (limits.py), said as such."""
    if "multiple memories" in cause or "defined memories count" in cause:
        return ArtifactInvalid(
            f"a module declaring more than one linear memory; a WASM module gets {MEMORIES}, bounded by [limits] memory_mb",
            fix="build it with a single memory (no multi-memory)",
        )
    tables = re.search(r"defined tables count of (\d+)", cause)
    if tables:
        return ArtifactInvalid(
            f"a module declaring {tables[1]} tables; a WASM module gets {TABLES}, of at most {TABLE_ELEMENTS} elements within [limits] memory_mb",
            fix="build it with a single table",
        )
    elements = re.search(r"minimum element size of (\d+)", cause)
    if elements:
        return ArtifactInvalid(
            f"a module whose table starts with {elements[1]} elements; a table holds at most {TABLE_ELEMENTS}, within [limits] memory_mb",
            fix="build it with a smaller table",
        )
    return None


def load_module(engine: wasmtime.Engine, fuel: bool, cache_dir: Path, sha256: str, read: Callable[[], bytes]) -> wasmtime.Module:
    """Compile once per artifact digest; later loads (another start, a registration again) deserialize.

    engine must be make_engine(fuel): compiled code is only valid for the configuration it was made with
    (a module the cache holds for another configuration fails to load and is compiled again).
    """
    folder = cache_dir / "wasm"
    cached = folder / f"{sha256}-{'fuel' if fuel else 'epoch'}-wasmtime{version('wasmtime')}.cwasm"
    if cached.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            cached.unlink(missing_ok=True)  # stale or corrupt: compile again
    module = compile_module(engine, read())
    folder.mkdir(parents=True, exist_ok=True)
    # A name of its own: a registration and a runtime may compile the same module at once.
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(module.serialize())
    os.replace(tmp, cached)
    return module


class _Shared:
    """The process's engines (one per fuel setting) and the one ticker thread bumping their epochs."""

    def __init__(self) -> None:
        self.engines: dict[bool, wasmtime.Engine] = {}
        self.pooled: dict[bool, bool] = {}
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()  # set only by close(): the process's engines live as long as it does

    def engine(self, fuel: bool) -> wasmtime.Engine:
        engine = self.engines.get(fuel)
        if engine is not None:
            return engine
        with self._lock:
            if fuel not in self.engines:
                self.engines[fuel], self.pooled[fuel] = _pooled_engine(fuel)
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="gati-wasm-epoch", daemon=True)
                self._ticker.start()
            return self.engines[fuel]

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            for engine in list(self.engines.values()):
                engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()


SHARED = _Shared()


class WasmEngines:
    """One backend's view of the process's engines, with its state directory's compile cache."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir

    def engine(self, fuel: bool) -> wasmtime.Engine:
        return SHARED.engine(fuel)

    def load(self, artifact: Path, sha256: str, fuel: bool) -> wasmtime.Module:
        return load_module(self.engine(fuel), fuel, self.cache_dir, sha256, artifact.read_bytes)

    def close(self) -> None:
        pass  # the engines are the process's


def _config(fuel: bool) -> wasmtime.Config:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    # One linear memory per module, the pool or not: [limits] memory_mb bounds it (limits.py).
    config.wasm_multi_memory = False
    return config


def _pooled_engine(fuel: bool) -> tuple[wasmtime.Engine, bool]:
    config = _config(fuel)
    pool = ffi.wasmtime_pooling_allocation_config_new()
    try:
        for limit in ("total_core_instances", "total_memories", "total_tables"):
            getattr(ffi, f"wasmtime_pooling_allocation_config_{limit}_set")(pool, POOL_SLOTS)
        # What one instance may have: the shape of the budget of limits.py (its stores enforce the sizes).
        ffi.wasmtime_pooling_allocation_config_max_memories_per_module_set(pool, MEMORIES)
        ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set(pool, TABLES)
        ffi.wasmtime_pooling_allocation_config_table_elements_set(pool, TABLE_ELEMENTS)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, KEEP_RESIDENT)
        ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(pool, KEEP_RESIDENT)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pool)
    try:
        return wasmtime.Engine(config), True
    except wasmtime.WasmtimeError as exc:
        log.warning("wasm: no pooling allocator (%s); instances are mapped one by one", str(exc).splitlines()[0])
        return wasmtime.Engine(_config(fuel)), False
