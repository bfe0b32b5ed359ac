"""Shared wasmtime state: engines, the epoch ticker and the on-disk compile cache.

Epoch interruption is what makes a per-call deadline stop a runaway loop: a ticker
thread bumps the engine's epoch every TICK_S and each store gets a deadline in ticks.
Fuel is optional and costs speed, so modules that ask for it get an engine of their own.
"""

from __future__ import annotations

import threading
from importlib.metadata import version
from pathlib import Path

import wasmtime

TICK_S = 0.01


class WasmEngines:
    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir / "wasm"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._engines = {fuel: self._engine(fuel) for fuel in (False, True)}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="gati-wasm-epoch", daemon=True)
        self._ticker.start()

    def engine(self, fuel: bool) -> wasmtime.Engine:
        return self._engines[fuel]

    def load(self, artifact: Path, sha256: str, fuel: bool) -> wasmtime.Module:
        """Compile once per artifact digest; later loads (also after a restart) deserialize."""
        engine = self._engines[fuel]
        cached = self.cache_dir / f"{sha256}-{'fuel' if fuel else 'epoch'}-wasmtime{version('wasmtime')}.cwasm"
        if cached.exists():
            try:
                return wasmtime.Module.deserialize_file(engine, str(cached))
            except wasmtime.WasmtimeError:
                cached.unlink(missing_ok=True)  # stale or corrupt: compile again
        module = wasmtime.Module.from_file(engine, str(artifact))
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(cached)
        return module

    def close(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            for engine in self._engines.values():
                engine.increment_epoch()

    @staticmethod
    def _engine(fuel: bool) -> wasmtime.Engine:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = fuel
        return wasmtime.Engine(config)
