"""OciSandbox: a module whose instances are containers (ProcessSandbox supplies the lifecycle).

What is container-specific is here: pinning the image registration recorded, the Docker
client shared by one runtime, the container of each instance (containers.py), and auditing
a container the kernel ended for memory (a call killed at its deadline is audited by
ProcessSandbox). Everything a module may ask for goes through runtime.core.host.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import docker.errors

from runtime.core.capabilities.files import FileGrant
from runtime.core.capabilities.limits import LimitHit
from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.oci import containers, images
from sandboxes.process.sandbox import ProcessSandbox


class OciSandbox(ProcessSandbox):
    def __init__(self, registration: Registration, host: Host, runs: Path, client: docker.DockerClient, state_label: str):
        super().__init__(registration, host, runs)
        self.client = client
        self.state_label = state_label
        self.image: str | None = None

    async def start(self) -> None:
        self.image = await asyncio.to_thread(
            images.check_image, self.client, self.registration.loaded, self.registration.artifact_sha256
        )
        await super().start()

    async def launch(self, run_dir: Path, env: dict[str, str], mounts: list[FileGrant]) -> containers.ContainerProcess:
        creating = asyncio.ensure_future(
            asyncio.to_thread(containers.run_container, self.client, self.image, self.registration.loaded, run_dir, env, mounts, self.state_label)
        )
        try:
            container = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Cancelling the wait does not stop the engine's thread: the container comes up anyway.
            # Wait for it and remove it, or a Ctrl+C at the wrong moment leaves it running.
            try:
                container = await creating
            except Exception:
                raise asyncio.CancelledError() from None  # it never came up: nothing to remove
            await asyncio.to_thread(containers.remove, container)
            raise
        return containers.ContainerProcess(container, self.manifest.limits.memory_mb, on_oom=self._audit_oom)

    def _audit_oom(self) -> None:
        hit = LimitHit.memory(self.manifest.limits, "container killed by the kernel past its memory limit")
        self.host.limit_hit(self.own_context(), hit)
