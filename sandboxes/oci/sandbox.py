"""OciSandbox: a module whose instances are containers (ProcessSandbox supplies the lifecycle).

What is container-specific is here: pinning the image registration recorded, the Docker
client shared by one runtime, removing what a crashed runtime left behind, and auditing
the limits only the runtime sees being hit (a call killed at its deadline, a container
the kernel ended for memory). Everything a module may ask for goes through runtime.host.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import docker.errors

from runtime.call import CallContext
from runtime.errors import GatiError, ModuleTimeout
from runtime.host import Host
from runtime.registry import Registration
from sandboxes.oci import containers, images
from sandboxes.process.sandbox import ProcessSandbox


class EngineUnavailable(GatiError):
    code = "engine_unavailable"
    http_status = 503


class OciBackend:
    """Per-runtime state shared by its container modules (ModuleManager closes it)."""

    def __init__(self, state_path: Path):
        try:
            self.client = docker.from_env()
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(
                f"no Docker engine is reachable for container modules: {exc}",
                fix="run `make setup` (installs docker.io and starts dockerd), or start dockerd yourself",
            ) from None
        self.state = containers.state_label(state_path)
        self.orphans_removed = containers.remove_orphans(self.client, self.state)

    def close(self) -> None:
        self.client.close()


class OciSandbox(ProcessSandbox):
    kind = "oci"

    def __init__(self, registration: Registration, host: Host, shared: dict):
        super().__init__(registration, host, shared)
        if "oci" not in shared:
            shared["oci"] = OciBackend(host.state.path)
        self.backend: OciBackend = shared["oci"]
        self.image: str | None = None

    async def start(self) -> None:
        self.image = await asyncio.to_thread(
            images.check_image, self.backend.client, self.registration.loaded, self.registration.artifact_sha256
        )
        await super().start()

    async def launch(self, run_dir: Path, env: dict[str, str]) -> containers.ContainerProcess:
        container = await asyncio.to_thread(
            containers.run_container, self.backend.client, self.image, self.registration.loaded, run_dir, env, self.backend.state
        )
        return containers.ContainerProcess(container, self.manifest.limits.memory_mb, on_oom=self._audit_oom)

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        try:
            return await super().call(method, payload, ctx, timeout_s)
        except ModuleTimeout:
            self._audit_limit(ctx, "limit.timeout", f"{method} after {timeout_s * 1000:.0f} ms", "container killed and replaced")
            raise

    def _audit_oom(self) -> None:
        self._audit_limit(None, "limit.memory", f"{self.manifest.limits.memory_mb} MiB", "container killed by the kernel for memory")

    def _audit_limit(self, ctx: CallContext | None, capability: str, target: str, reason: str) -> None:
        # Not a capability decision but a limit the sandbox enforced: audited so that a
        # module hitting its limits shows up beside the capabilities it was refused.
        ctx = ctx or CallContext(caller=f"module:{self.name}")
        self.host.state.audit.record(
            module=self.name, version=self.manifest.version, caller=ctx.caller, request_id=ctx.request_id,
            trace_id=ctx.trace_id, capability=capability, target=target, decision="deny",
            rule=None, grant=f"[limits] of {self.name}", reason=reason,
        )
