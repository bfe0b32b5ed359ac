"""Sandbox backends. Each one runs a module's code and nothing else: capabilities are
checked by runtime.host.Host, which every backend calls for anything outside the module.

A backend is a class with:
    async start() -> None                     # load / compile / launch
    async call(method, payload: bytes, ctx, timeout_s) -> bytes   # JSON in, JSON out
    async close() -> None
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from runtime.call import CallContext
    from runtime.host import Host
    from runtime.registry import Registration


class Sandbox(Protocol):
    async def start(self) -> None: ...
    async def call(self, method: str, payload: bytes, ctx: "CallContext", timeout_s: float) -> bytes: ...
    async def close(self) -> None: ...


def create_sandbox(registration: "Registration", host: "Host", shared: dict) -> Sandbox:
    """The sandbox for a module's kind; `shared` holds per-runtime backend state (engines, clients)."""
    kind = registration.manifest.kind
    if kind == "wasm":
        from sandboxes.wasm import WasmSandbox

        return WasmSandbox(registration, host, shared)
    if kind == "oci":
        from sandboxes.oci import OciSandbox

        return OciSandbox(registration, host, shared)
    if kind == "native":
        from sandboxes.native import NativeSandbox

        return NativeSandbox(registration, host, shared)
    raise ValueError(f"unknown module kind {kind!r}")  # the manifest parser refuses it first
