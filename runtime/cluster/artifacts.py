"""Module artifacts in the JetStream object store (`gati_<namespace>_artifacts`), named by digest.

Registering a WASM or native module on one instance uploads its artifact under its sha256;
every other instance fetches it from there into `<state>/cluster/artifacts/<digest>/`,
checks the sha256 of what arrived against the digest the registry recorded, and refuses
anything else (IntegrityError): a store that was tampered with cannot hand an instance a
different module. The sandbox checks the digest again when it loads the file, as it does
for every registration. Container modules are not uploaded: their digest is the image ID,
which each instance must have (docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import nats.js.errors

from runtime.cluster.connection import Cluster
from runtime.core.errors import IntegrityError, ModuleNotFound


class Artifacts:
    def __init__(self, cluster: Cluster, store, cache_dir: Path):
        self.cluster = cluster
        self.store = store
        self.cache_dir = cache_dir

    @classmethod
    def open(cls, cluster: Cluster, cache_dir: Path) -> "Artifacts":
        async def store():
            name = cluster.bucket("artifacts")
            try:
                return await cluster.js.object_store(name)
            except nats.js.errors.BucketNotFoundError:
                return await cluster.js.create_object_store(name, description="gati module artifacts, by sha256")

        return cls(cluster, cluster.run(store()), cache_dir)

    async def upload(self, digest: str, path: Path) -> None:
        """Store the file under its digest, unless it is there already (the same bytes, by name)."""
        try:
            await self.store.get_info(digest)
            return
        except nats.js.errors.NotFoundError:
            pass
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"{path} changed while it was being registered", fix="register it again once it is built")
        await self.store.put(digest, data)

    async def fetch(self, name: str, digest: str) -> bytes:
        """The artifact's bytes, checked against the digest the registry recorded."""
        try:
            data = (await self.store.get(digest)).data or b""
        except nats.js.errors.NotFoundError:
            raise ModuleNotFound(
                f"the artifact of {name} (sha256 {digest[:12]}) is not in the cluster's object store",
                fix=f"register {name} again from a machine that has it: gati module register PATH",
                module=name,
            ) from None
        except nats.js.errors.DigestMismatchError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(
                f"the artifact of {name} fetched from the cluster does not match its registered sha256 {digest[:12]}; it was not used",
                fix=f"find out who changed the object store; then register {name} again: gati module register PATH",
                module=name,
            )
        return data

    def local(self, digest: str) -> Path:
        """Where this instance keeps the artifact with that digest."""
        return self.cache_dir / digest

    async def materialize(self, name: str, digest: str, relative: str, executable: bool) -> Path:
        """The folder holding the artifact at its manifest's relative path, fetched when missing."""
        folder = self.local(digest)
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise IntegrityError(f"the artifact path of {name} leaves its folder: {relative}", module=name)
        if target.is_file():
            return folder
        data = await self.fetch(name, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, target)  # whole or not at all: another process may be fetching it too
        return folder
