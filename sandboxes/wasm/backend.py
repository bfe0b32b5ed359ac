"""The WASM backend: the engines, epoch ticker and compile cache shared by every WASM module."""

from __future__ import annotations

from pathlib import Path

from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.wasm.engine import WasmEngines
from sandboxes.wasm.sandbox import WasmSandbox


class WasmBackend:
    kind = "wasm"

    def __init__(self, cache_dir: Path):
        self.engines = WasmEngines(cache_dir)

    def sandbox(self, registration: Registration, host: Host) -> WasmSandbox:
        return WasmSandbox(registration, host, self.engines)

    async def close(self) -> None:
        self.engines.close()
