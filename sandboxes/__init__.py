"""Sandbox backends, one sub-package per kind: wasm/, oci/, native/ (on process/, which oci and
native share). A sandbox runs a module's code and nothing else: everything outside the module
goes through the host gate (runtime.core.host.Host) that each sandbox is handed at start.

The sandboxes import runtime.core and nothing above it. The module manager
(runtime.modules) owns one Backend per kind and asks it for a Sandbox per module.
"""

from __future__ import annotations

from typing import Protocol

from runtime.core.call import CallContext
from runtime.core.host import Host
from runtime.core.registry import Registration


class Sandbox(Protocol):
    """One module, started: JSON in, JSON out, under a deadline.

    A sandbox whose class sets `bounded = True` promises that call() returns or raises within a
    couple of seconds past timeout_s on its own; the module manager then spares it its own
    backstop timer (a few µs per call, a third of a small WASM call's bookkeeping)."""

    async def start(self) -> None: ...
    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes: ...
    def healthy(self) -> bool: ...
    async def close(self) -> None: ...


class Backend(Protocol):
    """What one runtime holds for one kind of sandbox (engines, a Docker client, cgroups)."""

    kind: str

    def sandbox(self, registration: Registration, host: Host) -> Sandbox: ...
    async def close(self) -> None: ...
