"""The native backend: this runtime's cgroups, shared by its bubblewrap sandboxes."""

from __future__ import annotations

from pathlib import Path

from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.native.limits import Cgroups
from sandboxes.native.sandbox import NativeSandbox
from sandboxes.process.sandbox import runs_root


class NativeBackend:
    kind = "native"

    def __init__(self, state_path: Path):
        self.cgroups = Cgroups()
        self.runs = runs_root(state_path)

    def sandbox(self, registration: Registration, host: Host) -> NativeSandbox:
        return NativeSandbox(registration, host, self.runs, self.cgroups)

    async def close(self) -> None:
        self.cgroups.close()  # removes the runtime's cgroups
