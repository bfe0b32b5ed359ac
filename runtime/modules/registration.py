"""Registering a module: validate its manifest and its artifact, then pin the artifact by digest.

Whether the artifact can run is the backend's to say (sandboxes.wasm.validate,
sandboxes.native.validate; an oci module's image is built here, which is its check), so
that a module that registers can answer its first call. The digest is the backend's to
give too: a file's sha256 for WASM and native modules, the image ID for a container
module. The core's registry only records what it is handed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from runtime.core.manifest import LoadedManifest, load_manifest, sha256_file
from runtime.core.registry import Registration
from runtime.core.state import StateDir
from sandboxes.native import validate as native
from sandboxes.oci.images import register_image
from sandboxes.wasm import validate as wasm


def register_module(state: StateDir, path: str | Path) -> Registration:
    loaded = load_manifest(path)
    return state.registry.add(loaded, artifact_digest(loaded, state))


def artifact_digest(loaded: LoadedManifest, state: StateDir) -> str:
    """The artifact's digest, once its backend has accepted it (ManifestError otherwise)."""
    kind = loaded.manifest.kind
    if kind == "oci":
        return register_image(loaded)
    artifact = loaded.artifact_path()
    if kind == "wasm":
        data = artifact.read_bytes()  # one read: what is checked is what is pinned
        digest = hashlib.sha256(data).hexdigest()
        wasm.validate(loaded, data, digest, state.cache_dir)
        return digest
    native.validate(loaded, artifact)
    return sha256_file(artifact)
