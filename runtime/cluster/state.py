"""ClusterState: the state directory of one instance, with its shared parts on NATS.

The registry and the kv stores come from JetStream (registry.py, kv.py) instead of the
directory's SQLite files; the audit log, the compile cache and the fetched artifacts stay in
the directory, one per instance, and the log is mirrored (audit.py) when the instance serves.
Everything else takes it for a StateDir: the module manager, the reports, the CLI.
"""

from __future__ import annotations

import hashlib
import re
import socket
from functools import cached_property
from pathlib import Path

from runtime.cluster.audit import INSTANCE_RE, AuditMirror
from runtime.cluster.buckets import SharedBuckets
from runtime.cluster.connection import Cluster
from runtime.cluster.kv import NatsKvStore
from runtime.cluster.registry import NatsRegistry
from runtime.core.errors import GatiError
from runtime.core.kv import KvStore
from runtime.core.registry import Registrations
from runtime.core.audit_key import AuditKey
from runtime.core.state import KeySource, StateDir


def default_instance(state_path: Path) -> str:
    """This host and this state directory: stable across restarts, distinct per chain of audit records."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{hashlib.sha256(str(state_path.resolve()).encode()).hexdigest()[:8]}"


class ClusterState(StateDir):
    def __init__(self, path: str | Path, cluster: Cluster, instance: str = "", audit_key: AuditKey | KeySource | None = None):
        super().__init__(path, audit_key)
        self.cluster = cluster
        self.instance = instance or default_instance(self.path)
        if not INSTANCE_RE.fullmatch(self.instance):
            raise GatiError(f"instance name {self.instance!r} is not a NATS subject token", fix="use letters, digits, _ and - (64 at most)")
        self.mirror: AuditMirror | None = None

    @classmethod
    def connect(
        cls, path: str | Path, url: str, *, namespace: str = "default", instance: str = "", timeout_s: float = 2.0, audit_key: AuditKey | KeySource | None = None
    ) -> "ClusterState":
        cluster = Cluster(url, namespace, timeout_s=timeout_s, name=f"gati {instance or default_instance(Path(path))}").connect()
        try:
            return cls(path, cluster, instance, audit_key)
        except BaseException:
            cluster.close()
            raise

    @cached_property
    def registry(self) -> Registrations:
        return NatsRegistry.open(self.cluster, self.path / "cluster" / "artifacts")

    @cached_property
    def kv(self) -> KvStore:
        return NatsKvStore.open(self.cluster)

    @cached_property
    def buckets(self) -> SharedBuckets:
        return SharedBuckets.open(self.cluster)

    def mirror_audit(self) -> AuditMirror:
        """Start mirroring this instance's audit log (what `gati serve` does)."""
        if self.mirror is None:
            self.mirror = AuditMirror(self.cluster, self.audit_path, self.instance, lambda: self.audit.key).start()
        return self.mirror

    def health(self) -> dict[str, str]:
        return {"cluster": "ok" if self.cluster.healthy() else "down"}

    def close(self) -> None:
        if self.mirror is not None:
            self.mirror.stop()
        self.__dict__.pop("buckets", None)
        try:
            super().close()
        finally:
            self.cluster.close()
