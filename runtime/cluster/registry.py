"""The module registry of every instance in JetStream KV (`gati_<namespace>_registry`).

The same Registrations as the embedded SQLite registry (runtime/core/registry.py): every
version kept, the newest registration of a name the active one. Key `NAME.token(VERSION)`
holds the manifest as it was loaded, the artifact's digest and the registration time;
the artifact itself goes to the object store (artifacts.py).

Calls look a module up on every call, so lookups never wait on the network: each instance
keeps a replica, refreshed every REFRESH_S on the connection's loop when the bucket moved
(one small request when it did not). A registration made anywhere is served everywhere
within about that long. While NATS is down the replica keeps serving what it knew; a name
it never knew is StateUnavailable once the replica is older than STALE_S, not "no such
module". The replica points each registration at a folder holding its artifact on this
machine: the module's own folder when it is here with the registered digest, else the
copy fetched from the object store (verified there, and again by the sandbox at start).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import msgspec

from runtime.cluster.artifacts import Artifacts
from runtime.cluster.connection import Cluster
from runtime.cluster.jetstream import Bucket, token
from runtime.core.errors import GatiError, ModuleNotFound, StateUnavailable
from runtime.core.manifest import LoadedManifest, sha256_file
from runtime.core.registry import Registration

log = logging.getLogger("gati.cluster")

REFRESH_S = 0.25
STALE_S = 3.0
UPLOAD_TIMEOUT_S = 120.0


class Record(msgspec.Struct, frozen=True):
    loaded: LoadedManifest
    digest: str
    registered_at: float

    @property
    def key(self) -> tuple[str, str, float, str]:
        return self.loaded.name, self.loaded.manifest.version, self.registered_at, self.digest


class NatsRegistry:
    def __init__(self, cluster: Cluster, bucket: Bucket, artifacts: Artifacts):
        self.cluster = cluster
        self.bucket = bucket
        self.artifacts = artifacts
        self._replica: dict[str, list[Registration]] = {}  # replaced whole, never edited: readers need no lock
        self._problems: dict[tuple[str, str, float], GatiError] = {}  # registrations whose artifact could not be had here
        self._local: dict[tuple, Registration] = {}  # Record.key -> the registration pointing here
        self._seen = -1
        self._refreshed_at = 0.0
        self._refresher = None

    @classmethod
    def open(cls, cluster: Cluster, cache_dir: Path) -> "NatsRegistry":
        bucket = cluster.run(Bucket.open(cluster.js, cluster.bucket("registry"), description="gati module registry"))
        registry = cls(cluster, bucket, Artifacts.open(cluster, cache_dir))
        cluster.run(registry._refresh(), UPLOAD_TIMEOUT_S)
        registry._refresher = cluster.keep_fresh(
            registry._refresh, every_s=REFRESH_S, timeout_s=max(cluster.timeout_s, 30.0), logger=log, what="registry replica", meanwhile="serving what it knew"
        )
        return registry

    # the replica -----------------------------------------------------------------------------
    async def _refresh(self) -> None:
        seen = await self.bucket.last_sequence()
        if seen != self._seen or self._problems or self._gone():
            replica: dict[str, list[Registration]] = {}
            problems: dict[tuple[str, str, float], GatiError] = {}
            for key in await self.bucket.keys():
                last = await self.bucket.last(key)
                if last.value is None:
                    continue
                record = msgspec.json.decode(last.value, type=Record)
                try:
                    registration = await self._localized(record)
                except GatiError as err:
                    problems[(record.loaded.name, record.loaded.manifest.version, record.registered_at)] = err
                    registration = Registration(record.loaded, record.digest, record.registered_at)
                replica.setdefault(record.loaded.name, []).append(registration)
            for versions in replica.values():
                versions.sort(key=lambda r: r.registered_at)
            self._replica, self._problems, self._seen = replica, problems, seen
        self._refreshed_at = time.monotonic()

    async def _localized(self, record: Record) -> Registration:
        """The registration pointing at its artifact on this machine (fetched and verified when needed)."""
        known = self._local.get(record.key)
        if known is not None:
            return known
        loaded, registration = record.loaded, Registration(record.loaded, record.digest, record.registered_at)
        artifact = loaded.manifest.artifact.path
        if loaded.manifest.kind != "oci" and artifact and not self._here(loaded, record.digest):
            folder = await self.artifacts.materialize(loaded.name, record.digest, artifact, executable=loaded.manifest.kind == "native")
            registration = Registration(LoadedManifest(loaded.manifest, loaded.file, str(folder)), record.digest, record.registered_at)
        self._local[record.key] = registration
        return registration

    def _gone(self) -> bool:
        """Did a module folder the replica points at lose its artifact (moved, deleted)? Then use the fetched copy."""
        gone = False
        for key, registration in list(self._local.items()):
            try:
                path = registration.loaded.artifact_path()
            except GatiError:
                path = None
            if path is not None and not path.is_file():
                del self._local[key]
                gone = True
        return gone

    @staticmethod
    def _here(loaded: LoadedManifest, digest: str) -> bool:
        """Is the module's own folder on this machine, with the registered artifact? (File grants live there.)"""
        try:
            path = loaded.artifact_path()
            return path is not None and path.is_file() and sha256_file(path) == digest
        except (GatiError, OSError):
            return False

    # Registrations ---------------------------------------------------------------------------------
    def add(self, loaded: LoadedManifest, digest: str) -> Registration:
        return self.cluster.run(self._add(loaded, digest), UPLOAD_TIMEOUT_S)

    async def _add(self, loaded: LoadedManifest, digest: str) -> Registration:
        if loaded.manifest.kind != "oci" and loaded.artifact_path() is not None:
            await self.artifacts.upload(digest, loaded.artifact_path())
        await self._refresh()
        current = self._replica.get(loaded.name, [])
        # Every instance registers its project's modules at start: the same module again is no
        # change, or each start would restart every other instance's sandboxes.
        if current and current[-1].artifact_sha256 == digest and current[-1].manifest == loaded.manifest:
            return current[-1]
        record = Record(loaded, digest, time.time())
        await self.bucket.publish(f"{loaded.name}.{token(loaded.manifest.version)}", msgspec.json.encode(record), None)
        await self._refresh()
        return self._localized_now(record)

    def _localized_now(self, record: Record) -> Registration:
        problem = self._problems.get((record.loaded.name, record.loaded.manifest.version, record.registered_at))
        if problem is not None:
            raise problem
        return self._local.get(record.key) or Registration(record.loaded, record.digest, record.registered_at)

    def get(self, name: str, version: str | None = None) -> Registration:
        versions = self._replica.get(name)
        if not versions:
            if time.monotonic() - self._refreshed_at > STALE_S:
                raise StateUnavailable(
                    f"module {name!r} is not known here and the cluster's registry has not answered for a while",
                    fix="retry once the NATS server of [cluster] is back",
                    module=name,
                )
            missing = ModuleNotFound(f"no module named {name!r}" + (f" at version {version}" if version else ""), fix="register it with: gati module register PATH", module=name)
            missing.note = f"registered: {', '.join(self.names()) or 'none'}"
            raise missing
        if version is None:
            found = versions[-1]
        else:
            matching = [r for r in versions if r.manifest.version == version]
            if not matching:
                raise ModuleNotFound(f"no module named {name!r} at version {version}", fix="register it with: gati module register PATH", module=name)
            found = matching[-1]
        problem = self._problems.get((name, found.manifest.version, found.registered_at))
        if problem is not None:
            raise problem
        return found

    def versions(self, name: str) -> list[Registration]:
        return list(self._replica.get(name, []))

    def names(self) -> list[str]:
        return sorted(self._replica)

    def all(self) -> list[Registration]:
        return [self.get(n) for n in self.names()]

    def remove(self, name: str) -> int:
        self.get(name)  # raises ModuleNotFound with the list of known names

        async def remove() -> int:
            keys = [k for k in await self.bucket.keys() if k.split(".", 1)[0] == name]
            for key in keys:
                await self.bucket.publish(key, b"", None, delete=True)
            await self._refresh()
            return len(keys)

        return self.cluster.run(remove())

    def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
