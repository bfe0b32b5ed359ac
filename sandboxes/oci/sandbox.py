"""OciSandbox: a module whose instances are containers (ProcessSandbox supplies the lifecycle).

What is container-specific is here: pinning the image registration recorded, the Docker
client shared by one runtime, removing what a crashed runtime left behind, and auditing
the limits only the runtime sees being hit (a call killed at its deadline, a container
the kernel ended for memory). Everything a module may ask for goes through runtime.core.host.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import docker.errors

from runtime.core.call import CallContext
from runtime.core.errors import ModuleTimeout
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

    async def launch(self, run_dir: Path, env: dict[str, str]) -> containers.ContainerProcess:
        container = await asyncio.to_thread(
            containers.run_container, self.client, self.image, self.registration.loaded, run_dir, env, self.state_label
        )
        return containers.ContainerProcess(container, self.manifest.limits.memory_mb, on_oom=self._audit_oom)

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        try:
            return await super().call(method, payload, ctx, timeout_s)
        except ModuleTimeout:
            self.host.limit_hit(ctx, "timeout", f"{method}: {timeout_s * 1000:.0f} ms", f"[methods.{method}] timeout_ms", "container killed and replaced past its deadline")
            raise

    def _audit_oom(self) -> None:
        limit = self.manifest.limits.memory_mb
        ctx = CallContext(caller=f"module:{self.name}")
        self.host.limit_hit(ctx, "memory", f"{limit} MB", "[limits] memory_mb", "container killed by the kernel past its memory limit")
