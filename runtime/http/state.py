"""Where a project keeps its state: the state directory, or the cluster when gati.toml says so.

    open_state(project_dir, settings)    StateDir (.gati/ or $GATI_HOME), or, with [cluster] nats,
                                         a ClusterState whose registry and kv stores are on NATS
    open_version_store(state)            Timescape's manifest store where that state is: versions.db
                                         in the state directory, or the cluster's versions bucket

`gati serve` and every CLI verb that keeps state open it here, so that a module registered
with `gati module register` lands where the serving instances look, and a version retired with
`gati versions retire` is retired where they read it.
"""

from __future__ import annotations

from pathlib import Path

from runtime.cluster.state import ClusterState
from runtime.core.audit_key import AuditKey
from runtime.core.state import KeySource, StateDir
from runtime.http.versions.cluster_store import ClusterVersionStore
from runtime.http.versions.store import Store, VersionStore


def open_state(project_dir: str | Path, settings, audit_key: AuditKey | KeySource | None = None) -> StateDir:
    """settings: runtime.http.project.Settings; audit_key as StateDir takes it. Connecting to NATS is
    bounded; a GatiError when it fails."""
    cluster = settings.cluster
    path = StateDir.locate(project_dir)
    if not cluster.nats:
        return StateDir(path, audit_key)
    return ClusterState.connect(
        path, cluster.nats, namespace=cluster.namespace, instance=cluster.instance, timeout_s=cluster.timeout_ms / 1000, audit_key=audit_key
    )


def open_version_store(state: StateDir) -> Store:
    """The store every instance sharing `state` reads and writes (its to close; the state is the caller's)."""
    if isinstance(state, ClusterState):
        return ClusterVersionStore.open(state.cluster)
    return VersionStore.in_state_dir(state.path)
