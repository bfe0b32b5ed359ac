"""Shared wasmtime state: engines, the epoch ticker and the on-disk compile cache.

Epoch interruption is what makes a per-call deadline stop a runaway loop: a ticker
thread bumps the engine's epoch every TICK_S and each store gets a deadline in ticks.
Fuel is optional and costs speed, so modules that ask for it get an engine of their own.

wasmtime reads anything that does not start with the `\\0asm` magic as WAT text, and a WAT
parse error quotes the offending source line. An artifact is module code, but an error
must never become a way to print a file: compile_module's errors name a position, never text.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import wasmtime

from runtime.core.errors import GatiError

TICK_S = 0.01
WASM_MAGIC = b"\0asm"


class ArtifactInvalid(GatiError):
    code = "artifact_invalid"
    http_status = 500


def make_engine(fuel: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    return wasmtime.Engine(config)


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
        raise ArtifactInvalid(f"not valid WebAssembly: {cause}", fix="rebuild the module; its toolchain wrote an invalid binary") from None


def load_module(engine: wasmtime.Engine, fuel: bool, cache_dir: Path, sha256: str, read: Callable[[], bytes]) -> wasmtime.Module:
    """Compile once per artifact digest; later loads (another start, a registration again) deserialize.

    engine must be make_engine(fuel): compiled code is only valid for the configuration it was made with.
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


class WasmEngines:
    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self._engines = {fuel: make_engine(fuel) for fuel in (False, True)}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="gati-wasm-epoch", daemon=True)
        self._ticker.start()

    def engine(self, fuel: bool) -> wasmtime.Engine:
        return self._engines[fuel]

    def load(self, artifact: Path, sha256: str, fuel: bool) -> wasmtime.Module:
        return load_module(self._engines[fuel], fuel, self.cache_dir, sha256, artifact.read_bytes)

    def close(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            for engine in self._engines.values():
                engine.increment_epoch()
