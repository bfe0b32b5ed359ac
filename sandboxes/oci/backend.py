"""The OCI backend: one Docker client per runtime, the containers a dead runtime left behind
removed at start, and a watcher that removes this runtime's containers when it dies (reaper.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import docker
import docker.errors

from runtime.core.errors import GatiError
from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.oci import containers
from sandboxes.oci.reaper import Reaper
from sandboxes.oci.sandbox import OciSandbox
from sandboxes.process.sandbox import runs_root


class EngineUnavailable(GatiError):
    code = "engine_unavailable"
    http_status = 503


class OciBackend:
    kind = "oci"

    def __init__(self, state_path: Path):
        try:
            self.client = docker.from_env()
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(
                f"no Docker engine is reachable for container modules: {exc}",
                fix="run `make setup` (installs docker.io and starts dockerd), or start dockerd yourself",
            ) from None
        self.state_label = containers.state_label(state_path)
        self.runs = runs_root(state_path)
        containers.remove_orphans(self.client, self.state_label)
        self.reaper = Reaper(os.getpid(), containers.RUNTIME_START, self.state_label)

    def sandbox(self, registration: Registration, host: Host) -> OciSandbox:
        return OciSandbox(registration, host, self.runs, self.client, self.state_label)

    async def close(self) -> None:
        await asyncio.to_thread(self.reaper.close)
        self.client.close()
