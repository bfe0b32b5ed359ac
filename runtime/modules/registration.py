"""Registering a module: validate its manifest, then pin its artifact by digest.

The digest is the backend's to give: a file's sha256 for WASM and native modules, the
image ID for a container module (whose image the OCI backend builds from its Dockerfile).
The core's registry only records what it is handed.
"""

from __future__ import annotations

from pathlib import Path

from runtime.core.manifest import LoadedManifest, load_manifest, sha256_file
from runtime.core.registry import Registration
from runtime.core.state import StateDir
from sandboxes.oci.images import register_image


def register_module(state: StateDir, path: str | Path) -> Registration:
    loaded = load_manifest(path)
    return state.registry.add(loaded, artifact_digest(loaded))


def artifact_digest(loaded: LoadedManifest) -> str:
    if loaded.manifest.kind == "oci":
        return register_image(loaded)
    artifact = loaded.artifact_path()
    return sha256_file(artifact) if artifact else ""
