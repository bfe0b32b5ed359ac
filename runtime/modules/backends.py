"""The backends one runtime owns, one per kind of sandbox, each made when a module of its kind first starts."""

from __future__ import annotations

from runtime.core.state import StateDir
from sandboxes import Backend
from sandboxes.native import NativeBackend
from sandboxes.oci import OciBackend
from sandboxes.wasm import WasmBackend


class Backends:
    def __init__(self, state: StateDir):
        self._state = state
        self._made: dict[str, Backend] = {}

    def of(self, kind: str) -> Backend:
        backend = self._made.get(kind)
        if backend is None:
            backend = self._made[kind] = self._make(kind)
        return backend

    def _make(self, kind: str) -> Backend:
        if kind == "wasm":
            return WasmBackend(self._state.cache_dir)
        if kind == "oci":
            return OciBackend(self._state.path)
        if kind == "native":
            return NativeBackend(self._state.path)
        raise ValueError(f"unknown module kind {kind!r}")  # the manifest parser refuses it first

    async def close(self) -> None:
        made, self._made = self._made, {}
        for backend in made.values():
            await backend.close()
