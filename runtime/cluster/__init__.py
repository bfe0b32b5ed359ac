"""Cluster mode: several gati instances sharing their state through NATS JetStream.

    [cluster]
    nats = "nats://nats.internal:4222"

    connection.py  one NATS connection on a thread of its own: sync and async callers alike,
                   errors of the transport as StateUnavailable (503)
    jetstream.py   the two JetStream KV steps every store here builds on (last message of a key,
                   a publish expecting a key's last revision)
    kv.py          the kv stores (runtime.core.kv.KvStore) in one JetStream KV bucket
    buckets.py     token buckets in a JetStream KV bucket: rate limits that hold across instances
    artifacts.py   module artifacts in the JetStream object store, by digest, verified on fetch
    registry.py    the module registry (runtime.core.registry.Registrations) in JetStream KV
    audit.py       each instance's audit log mirrored to a JetStream stream; reading them back
    state.py       ClusterState: the state directory with the above in place of its files

Only runtime.core is below this package; runtime.http and runtime.cli choose it when
gati.toml says so (runtime/http/state.py). What http keeps is shared by http itself on top of
this package: Timescape's version store (runtime/http/versions/cluster_store.py). docs/scaling.md says what is shared and what it costs.
"""
