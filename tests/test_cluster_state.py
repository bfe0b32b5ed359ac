"""Cluster mode's shared state against a real nats-server with JetStream (loopback, started here).

Two ClusterStates are two instances: each has its own NATS connection and state directory.
kv (the same contract as SQLite, and atomic across them), shared rate-limit buckets, the
registry with artifacts in the object store (verified on fetch), the audit mirror, and what
an outage of NATS looks like (503, nothing lost that was acknowledged, service resumes).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from kv_contract import check_contract
from nats_support import jetstream  # noqa: F401 (fixture)

from runtime.cluster.audit import fetch_logs
from runtime.cluster.state import ClusterState
from runtime.core.audit_key import AuditKey
from runtime.core.audit_log import verify
from runtime.core.call import CallContext
from runtime.core.errors import IntegrityError, ModuleNotFound, StateUnavailable
from runtime.core.kv import KvConflict, KvInvalid
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
KVATOMIC = ROOT / "tests" / "modules" / "kvatomic"
CTX = CallContext(request_id="req-c", trace_id="trace-c", caller="test")
KEY = AuditKey(b"k" * 32, "secret audit_key")  # what [audit] key_secret gives every instance alike
WAIT_S = 60.0  # bounded; generous because a loaded CI machine once took longer than 20 s


@pytest.fixture
def instance(tmp_path, jetstream):  # noqa: F811
    """instance(name) connects a ClusterState (state directory tmp/NAME) to this test's NATS."""
    states = []

    def make(name: str = "a", **kw) -> ClusterState:
        state = ClusterState.connect(tmp_path / name, jetstream.url, **kw)
        states.append(state)
        return state

    yield make
    for state in states:
        state.close()


async def eventually(check, what: str, timeout_s: float = WAIT_S):
    """Poll check() (sync or async) until it returns something truthy without raising; bounded."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            result = check()
            result = await result if asyncio.iscoroutine(result) else result
            if result:
                return result
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout_s} s (last error: {last!r})")


# kv ---------------------------------------------------------------------------------------------------


async def test_jetstream_kv_keeps_the_store_contract(instance):
    await check_contract(instance("a").kv)


async def test_increments_through_two_instances_sum_exactly(instance):
    a, b = instance("a").kv, instance("b").kv
    counts = await asyncio.gather(*(kv.increment("hits", "n", 1) for _ in range(60) for kv in (a, b)))
    assert sorted(counts) == list(range(1, 121))  # each value handed out once: no update lost, none doubled
    assert await b.get("hits", "n") == b"120"


async def test_compare_and_set_loops_across_instances_lose_no_update(instance):
    stores = [instance("a").kv, instance("b").kv]

    async def add(kv, times):
        for _ in range(times):
            while True:
                entry = await kv.entry("s", "total")
                value = int(entry.value) + 1 if entry else 1
                try:
                    await kv.cas("s", "total", str(value).encode(), entry.revision if entry else 0)
                    break
                except KvConflict:
                    continue

    await asyncio.gather(*(add(kv, 20) for kv in stores for _ in range(3)))
    assert await stores[0].get("s", "total") == b"120"


async def test_cluster_limits_on_keys_and_values_are_errors_with_a_fix(instance):
    kv = instance("a").kv
    with pytest.raises(KvInvalid) as long_key:
        await kv.put("s", "k" * 2000, b"x")
    assert "1024" in long_key.value.message and long_key.value.fix
    assert await kv.put("s", "big", b"x" * (1 << 20)) > 0  # the test server's max_payload is 2MB
    with pytest.raises(KvInvalid):
        await kv.put("s", "bigger", b"x" * ((1 << 20) + 1))


async def test_nats_down_is_state_unavailable_and_service_resumes(instance, jetstream):  # noqa: F811
    kv = instance("a").kv
    acknowledged = [await kv.increment("hits", "n", 1) for _ in range(20)]
    jetstream.kill()
    with pytest.raises(StateUnavailable) as down:
        for _ in range(100):  # until the client notices: at once when disconnected, else after the timeout
            await kv.increment("hits", "n", 1)
            acknowledged.append(True)
    assert down.value.http_status == 503 and down.value.code == "state_unavailable" and "NATS" in down.value.message and down.value.fix
    jetstream.start()
    await eventually(lambda: kv.increment("hits", "n", 0), "a kv operation after NATS came back")
    value = int(await kv.get("hits", "n"))
    assert len(acknowledged) <= value <= len(acknowledged) + 1  # acknowledged writes all there; one in flight may be


async def test_unreachable_nats_stops_the_start_with_a_fix(tmp_path):
    from nats_support import free_port

    from runtime.core.errors import GatiError

    with pytest.raises(GatiError) as caught:
        ClusterState.connect(tmp_path / "a", f"nats://127.0.0.1:{free_port()}")
    assert "cannot reach the NATS server" in caught.value.message and "nats-server -js" in caught.value.fix


# rate-limit buckets ------------------------------------------------------------------------------------


async def test_shared_buckets_admit_exactly_their_capacity_across_instances(instance):
    a, b, c = instance("a").buckets, instance("b").buckets, instance("c").buckets
    # 10 a minute: refilling one token every 6 s, so a burst sees exactly the 10 it starts with
    waits = await asyncio.gather(*(x.take("GET /r ip:1", 10, 10 / 60) for x in (a, b, c) for _ in range(10)))
    assert sum(w == 0 for w in waits) == 10
    assert all(0 < w <= 6 for w in waits if w)
    assert await a.take("GET /r ip:2", 10, 10 / 60) == 0  # another client has a bucket of its own


# registry and artifacts -----------------------------------------------------------------------------------


def module_copy(tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere" / "kvatomic"
    shutil.copytree(KVATOMIC, target)
    return target


async def test_a_module_registered_on_one_instance_runs_on_another(instance, tmp_path):
    a, b = instance("a"), instance("b")
    folder = module_copy(tmp_path)
    registered = register_module(a, folder)
    shutil.rmtree(folder)  # the module's folder was on A's machine only
    found = await eventually(lambda: b.registry.get("kvatomic"), "the registration reaching B")
    assert found.artifact_sha256 == registered.artifact_sha256
    assert Path(found.loaded.base_dir).is_relative_to(b.path)  # fetched from the object store into B's state
    found.verify_artifact()
    assert b.registry.names() == ["kvatomic"] and [r.manifest.version for r in b.registry.versions("kvatomic")] == ["1.0.0"]
    manager = ModuleManager(b)
    try:
        assert await manager.call("kvatomic", "count", {}, ctx=CTX) == 1
    finally:
        await manager.close()
    assert await a.kv.get("counts", "k") == b"1"  # B's module wrote where A reads


async def test_registering_the_same_module_again_changes_nothing(instance, tmp_path):
    a, b = instance("a"), instance("b")
    folder = module_copy(tmp_path)
    first = register_module(a, folder)
    assert register_module(b, folder).registered_at == first.registered_at
    assert len(a.registry.versions("kvatomic")) == 1


async def test_a_tampered_artifact_is_refused(instance, tmp_path):
    a = instance("a")
    folder = module_copy(tmp_path)
    digest = register_module(a, folder).artifact_sha256
    shutil.rmtree(folder)

    async def tamper():
        store = await a.cluster.js.object_store(a.cluster.bucket("artifacts"))
        await store.put(digest, b"(module)")  # other bytes under the registered digest

    a.cluster.run(tamper())
    b = instance("b")
    with pytest.raises(IntegrityError) as refused:
        b.registry.get("kvatomic")
    assert "does not match its registered sha256" in refused.value.message and refused.value.fix
    assert not any((b.path / "cluster" / "artifacts").rglob("*.wat"))  # nothing of it was kept


async def test_removing_a_module_removes_it_everywhere(instance, tmp_path):
    a, b = instance("a"), instance("b")
    register_module(a, module_copy(tmp_path))
    await eventually(lambda: b.registry.get("kvatomic"), "the registration reaching B")
    assert b.registry.remove("kvatomic") == 1

    def gone():
        try:
            a.registry.get("kvatomic")
        except ModuleNotFound:
            return True

    await eventually(gone, "the removal reaching A")


# audit mirror ------------------------------------------------------------------------------------------------


def record(state: ClusterState, n: int) -> None:
    for i in range(n):
        state.audit.record(module="m", version="1.0.0", capability="kv.write", target="s", decision="allow", rule="kv: s", i=i)


async def test_each_instance_audit_log_is_mirrored_and_verifies_on_its_own(instance, tmp_path):
    a, b = instance("a", instance="alpha", audit_key=KEY), instance("b", instance="beta", audit_key=KEY)
    record(a, 30)
    record(b, 5)
    mirrors = [a.mirror_audit(), b.mirror_audit()]
    await eventually(lambda: mirrors[0].mirrored == 30 and mirrors[1].mirrored == 5, "mirroring")
    logs = fetch_logs(a.cluster, tmp_path / "fetched")
    assert sorted(logs) == ["alpha", "beta"]
    assert logs["alpha"].read_bytes() == a.audit_path.read_bytes() and logs["beta"].read_bytes() == b.audit_path.read_bytes()
    assert verify(logs["alpha"], KEY).records == 30 and verify(logs["beta"], KEY).ok
    assert not verify(logs["alpha"], AuditKey(b"x" * 32, "another key")).ok  # the chains are keyed: the check can fail
    # a new mirror (a restart) resumes after what the stream holds: nothing twice
    a.mirror.stop()
    a.mirror = None
    record(a, 3)
    mirror = a.mirror_audit()
    await eventually(lambda: mirror.mirrored == 33, "mirroring after a restart")
    logs = fetch_logs(a.cluster, tmp_path / "fetched")
    assert logs["alpha"].read_bytes() == a.audit_path.read_bytes() and verify(logs["alpha"], KEY).records == 33


async def test_audit_records_wait_out_an_outage(instance, jetstream, tmp_path):  # noqa: F811
    a = instance("a", instance="alpha", audit_key=KEY)
    mirror = a.mirror_audit()
    record(a, 2)
    await eventually(lambda: mirror.mirrored == 2, "mirroring")
    jetstream.kill()
    record(a, 4)  # decisions never wait for the network
    jetstream.start()
    await eventually(lambda: mirror.mirrored == 6, "mirroring after the outage")
    assert verify(fetch_logs(a.cluster, tmp_path / "fetched")["alpha"], KEY).records == 6


# settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml, key",
    [
        ('[cluster]\nnats = "http://x:4222"\n', "cluster.nats"),
        ('[cluster]\nnats = "nats://x:4222"\nnamespace = "a.b"\n', "cluster.namespace"),
        ('[cluster]\ninstance = "a b"\n', "cluster.instance"),
        ('[cluster]\ntimeout_ms = 0\n', "cluster.timeout_ms"),
        ('[cluster]\nnatz = "nats://x"\n', "cluster.natz"),
    ],
)
def test_cluster_settings_are_checked(toml, key):
    from runtime.http.project import ProjectError, parse_settings

    with pytest.raises(ProjectError) as refused:
        parse_settings(toml.encode(), Path("gati.toml"))
    assert refused.value.details["key"] == key and refused.value.fix


def test_cluster_settings_from_the_environment_override_gati_toml(monkeypatch):
    from runtime.http.project import parse_settings

    monkeypatch.setenv("GATI_CLUSTER_NATS", "nats://from-env:4222")
    monkeypatch.setenv("GATI_CLUSTER_NAMESPACE", "shop")
    cluster = parse_settings(b'[cluster]\nnats = "nats://file:4222"\ninstance = "i1"\n', Path("gati.toml")).cluster
    assert (cluster.nats, cluster.namespace, cluster.instance) == ("nats://from-env:4222", "shop", "i1")


async def test_verifying_every_instance_needs_the_key_they_share(instance, jetstream, tmp_path, monkeypatch):  # noqa: F811
    from typer.testing import CliRunner

    from runtime.cli.main import app as cli

    a = instance("a", instance="alpha")  # its own key file: no one else can check its records
    mirror = a.mirror_audit()
    record(a, 2)
    await eventually(lambda: mirror.mirrored == 2, "mirroring")
    project = tmp_path / "p"
    project.mkdir()
    (project / "gati.toml").write_text(f'[cluster]\nnats = "{jetstream.url}"\n')
    monkeypatch.setenv("GATI_HOME", str(tmp_path / "cli-state"))
    result = CliRunner().invoke(cli, ["audit", "verify", "--cluster", "--project", str(project)])
    assert result.exit_code == 1 and "key they all sign with" in result.output and "key_secret" in result.output
