"""WebAssembly modules in wasmtime (docs/wasm-abi.md)."""

from sandboxes.wasm.backend import WasmBackend
from sandboxes.wasm.sandbox import WasmSandbox

__all__ = ["WasmBackend", "WasmSandbox"]
