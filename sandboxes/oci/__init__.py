"""Container modules: each instance a hardened container of the Docker engine, behind gRPC.

    images.py      local base images (debootstrap + wheels + SDK), module builds, image pinning
    backend.py     OciBackend: one Docker client per runtime, orphans of a dead runtime removed
    containers.py  one instance = one hardened container; orphans of a dead runtime removed
    sandbox.py     OciSandbox: ProcessSandbox (sandboxes/process) with containers as processes

See docs/oci.md.
"""

from __future__ import annotations

import docker
import docker.errors

from sandboxes.oci.backend import OciBackend
from sandboxes.oci.sandbox import OciSandbox

__all__ = ["OciBackend", "OciSandbox", "available"]


def available() -> str | None:
    """None when a Docker engine answers here, else why container modules cannot run."""
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        return f"no Docker engine reachable ({exc.__class__.__name__}); run `make setup` as root to install and start one"
    return None
