"""Container modules in the real Docker engine: hardened containers, every way out refused.

Driven by runtime/reports/probes/oci (a Python SDK module whose methods each attempt one
thing and report what happened), registered from a copy whose manifest a test may change.
The first run builds the base images (debootstrap, about a minute); later runs reuse them.
"""

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import docker
import pytest

from runtime.core.audit_log import read_events, verify
from runtime.core.call import CallContext
from runtime.core.errors import (
    IntegrityError,
    ModuleBusy,
    ModuleCrashed,
    ModuleNotFound,
    ModuleTimeout,
)
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.oci import available
from sandboxes.oci.containers import state_label

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "oci"
ENVIRON = {"PROBE_ALLOWED": "yes", "GATI_TEST_HIDDEN": "host-only-value"}
EGRESS_HOSTS = {"metadata.probe": "169.254.169.254", "private.probe": "127.0.0.1"}
CTX = CallContext(request_id="req-oci", trace_id="trace-oci", caller="test")


def install(tmp_path: Path, edit=None) -> Path:
    target = tmp_path / "modules" / "probe"
    shutil.copytree(PROBE, target)
    if edit:
        manifest = target / "module.toml"
        manifest.write_text(edit(manifest.read_text()))
    return target


@pytest.fixture
async def manager(state):
    manager = ModuleManager(state, egress_hosts=EGRESS_HOSTS, environ=ENVIRON)
    yield manager
    await manager.close()


@pytest.fixture
def engine():
    client = docker.from_env()
    yield client
    client.close()


def ours(engine, state) -> list:
    return engine.containers.list(all=True, filters={"label": f"gati.state={state_label(state.path)}"})


def events(state, capability=None):
    return [e for e in read_events(state.audit_path) if capability is None or e["capability"] == capability]


async def probe(manager, method, payload=None):
    return await manager.call("probe", method, payload, ctx=CTX)


async def still_serving(manager):
    assert await probe(manager, "echo", {"still": "serving"}) == {"still": "serving"}




# -- the container itself --------------------------------------------------------------

async def test_container_runs_hardened(state, manager, tmp_path, engine):
    register_module(state, install(tmp_path))
    me = await probe(manager, "whoami")
    assert (me["uid"], me["gid"]) == (65534, 65534)
    assert me["cap_eff"] == me["cap_bnd"] == "0000000000000000"
    assert me["no_new_privs"] == "1"
    assert me["root_writable"] is False
    assert me["interfaces"] == ["lo"]  # network none: no way out but the sockets we bind in
    assert me["pid1"] == "/sbin/docker-init"
    assert "GATI_TEST_HIDDEN" not in me["environ"] and "PROBE_ALLOWED" in me["environ"]

    [container] = ours(engine, state)
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] and host["Init"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert (host["PidsLimit"], host["Memory"], host["NanoCpus"]) == (24, 96 << 20, 10**9)
    assert list(host["Tmpfs"]) == ["/tmp"]
    mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
    assert mounts == {"/run/gati": True, "/data": False}
    labels = container.labels
    assert labels["gati.module"] == "probe" and labels["gati.runtime-pid"] == str(os.getpid())


async def test_image_is_pinned_at_registration(state, manager, tmp_path, engine):
    registration = register_module(state, install(tmp_path))
    image = engine.images.get(registration.artifact_sha256)
    assert registration.artifact_sha256.startswith("sha256:") and "gati-module/probe:1.0.0" in image.tags

    # A module naming an image: the tag is resolved now, and must still mean the same image at load.
    image.tag("gati-test/probe", "pinned")
    try:
        pinned = install(tmp_path / "pinned", lambda t: t.replace('build = "."', 'image = "gati-test/probe:pinned"'))
        assert register_module(state, pinned).artifact_sha256 == registration.artifact_sha256
        engine.images.get(engine.images.list("gati/python")[0].id).tag("gati-test/probe", "pinned")  # the tag moves
        with pytest.raises(IntegrityError) as moved:
            await probe(manager, "echo", 1)
        assert "gati module register" in moved.value.fix
    finally:
        engine.images.remove("gati-test/probe:pinned")
    with pytest.raises(ModuleNotFound) as missing:
        register_module(state, install(tmp_path / "missing", lambda t: t.replace('build = "."', 'image = "gati-test/nothing:here"')))
    assert "no registry" in missing.value.message


# -- every way out ---------------------------------------------------------------------

async def test_direct_tcp_out_is_unreachable(state, manager, tmp_path, origin):
    register_module(state, install(tmp_path, lambda t: t.replace('egress = [', f'egress = ["http://127.0.0.1:{origin}", ')))
    for target in ({"host": "1.1.1.1", "port": 80}, {"host": "172.17.0.1", "port": 2375}):
        assert (await probe(manager, "tcp_out", target))["error"] == "ENETUNREACH"
    # the host's loopback is not the container's: the origin cannot be reached directly ...
    assert (await probe(manager, "tcp_out", {"host": "127.0.0.1", "port": origin}))["error"] == "ECONNREFUSED"
    # ... only through the egress proxy, which checked and audited it
    via_proxy = await probe(manager, "proxy_get", f"http://127.0.0.1:{origin}/hello")
    assert (via_proxy["status"], json.loads(via_proxy["body"])) == (200, {"path": "/hello"})
    assert [(e["decision"], e["target"]) for e in events(state, "egress")][0] == ("allow", f"http://127.0.0.1:{origin}")
    await still_serving(manager)


async def test_proxy_refuses_a_host_not_granted(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    denied = await probe(manager, "proxy_get", "http://example.org/")
    assert (denied["error"], denied["grant"]) == ("capability_denied", '[capabilities] egress = ["http://example.org:80"]')
    # CONNECT is checked the same way, and its refusal reaches the module whole, not as "Tunnel connection failed: 403"
    https = await probe(manager, "proxy_get", "https://example.org/")
    assert (https["error"], https["grant"]) == ("capability_denied", '[capabilities] egress = ["https://example.org:443"]')
    refused = events(state, "egress")
    assert [(e["decision"], e["target"], e["request_id"]) for e in refused] == [
        ("deny", "http://example.org:80", "req-oci"), ("deny", "https://example.org:443", "req-oci")
    ]
    await still_serving(manager)


@pytest.mark.parametrize("name, address", [("private.probe", "127.0.0.1"), ("metadata.probe", "169.254.169.254")])
async def test_granted_names_resolving_to_private_addresses_are_refused(state, manager, tmp_path, name, address):
    register_module(state, install(tmp_path))
    through_proxy = await probe(manager, "proxy_get", f"http://{name}/latest/meta-data")
    assert through_proxy["error"] == "capability_denied"
    assert through_proxy["grant"] == f'[capabilities] egress = ["http://{address}:80"]'
    through_host = await probe(manager, "http", {"url": f"http://{name}/"})
    assert through_host["status"] == 1 and address in through_host["result"]["target"]
    decisions = [(e["decision"], e["target"]) for e in events(state, "egress")]
    assert decisions.count(("deny", f"http://{name}:80 ({address})")) == 2
    await still_serving(manager)


async def test_host_files_not_granted_are_invisible_and_refused(state, manager, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's own file")
    register_module(state, install(tmp_path))
    assert (await probe(manager, "read_path", "/data/hello.txt"))["data"] == "hello from a granted file\n"
    assert (await probe(manager, "read_path", str(secret)))["error"] == "ENOENT"  # not in the container at all
    assert (await probe(manager, "read_path", "/etc/shadow"))["error"] == "EACCES"  # the image's, and not ours
    for path in (str(secret), "/data/../module.toml"):
        denied = await probe(manager, "file_read", path)
        assert denied["status"] == 1 and denied["result"]["capability"] == "file.read"
    assert [e["decision"] for e in events(state, "file.read")] == ["deny", "deny"]
    await still_serving(manager)


async def test_root_fs_and_read_only_grants_refuse_writes(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    for path in ("/etc/gati-was-here", "/module/probe.py", "/data/new.txt"):
        assert (await probe(manager, "write_path", path))["error"] == "EROFS", path
    assert (await probe(manager, "write_path", "/tmp/scratch"))["ok"] is True  # the small tmpfs
    denied = await probe(manager, "file_write", "/data/new.txt")
    assert denied["status"] == 1 and denied["result"]["grant"] == '[capabilities] files = { "data" = "rw" }'
    assert not (tmp_path / "modules" / "probe" / "data" / "new.txt").exists()
    assert [e["decision"] for e in events(state, "file.write")] == ["deny"]
    await still_serving(manager)


async def test_rw_grant_is_writable(state, manager, tmp_path):
    module = install(tmp_path, lambda t: t.replace('"data" = "ro"', '"data" = "rw"'))
    (module / "data").chmod(0o777)  # the module's user (65534) owns nothing on the host
    register_module(state, module)
    assert (await probe(manager, "write_path", "/data/direct.txt"))["ok"] is True
    assert (await probe(manager, "file_write", "/data/via-host.txt"))["status"] == 0
    assert (module / "data" / "direct.txt").read_text() == (module / "data" / "via-host.txt").read_text() == "written by probe\n"


async def test_undeclared_env_is_absent_and_refused(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    assert await probe(manager, "environ", "GATI_TEST_HIDDEN") == {"present": False, "value": None}
    assert await probe(manager, "environ", "PROBE_ALLOWED") == {"present": True, "value": "yes"}
    denied = await probe(manager, "env", "GATI_TEST_HIDDEN")
    assert denied["status"] == 1 and denied["result"]["grant"] == '[capabilities] env = ["GATI_TEST_HIDDEN"]'
    assert await probe(manager, "env", "PROBE_ALLOWED") == {"status": 0, "result": "yes"}
    # The first record is the container's start: PROBE_ALLOWED handed over in its environment.
    assert [(e["target"], e["decision"], e["caller"]) for e in events(state, "env")] == [
        ("PROBE_ALLOWED", "allow", "module:probe"), ("GATI_TEST_HIDDEN", "deny", CTX.caller), ("PROBE_ALLOWED", "allow", CTX.caller),
    ]
    [mount] = events(state, "file.mount")
    assert (mount["target"], mount["decision"], mount["caller"]) == ("/data", "allow", "module:probe")
    assert verify(state.audit_path).ok


async def test_secret_kv_and_module_calls_go_through_the_host(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    assert (await probe(manager, "kv_put", "probe/k=v1"))["status"] == 0
    assert await probe(manager, "kv_get", "probe/k") == {"status": 0, "result": "v1"}
    assert (await probe(manager, "kv_get", "elsewhere/k"))["status"] == 1
    assert (await probe(manager, "secret", "other"))["status"] == 1
    assert (await probe(manager, "call_to", "greet/hello"))["result"]["capability"] == "module.call"
    asked = [e for e in events(state) if e["caller"] != "module:probe"]  # not what the container was handed at start
    assert [e["decision"] for e in asked] == ["allow", "allow", "deny", "deny", "deny"]


async def test_fork_bomb_stops_at_the_pids_limit(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    bomb = await probe(manager, "fork_bomb", 500)
    assert bomb["stopped_by"]["error"] == "EAGAIN" and bomb["spawned"] < 24
    await still_serving(manager)


async def test_memory_past_the_limit_kills_the_container_not_the_runtime(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    with pytest.raises(ModuleCrashed) as crashed:
        await probe(manager, "membomb")
    assert "out of memory past its [limits] memory_mb = 96" in crashed.value.message, crashed.value.message
    await still_serving(manager)  # a fresh container
    stops = events(state, "limit.memory")
    assert len(stops) == 1, stops
    [stop] = stops
    assert (stop["decision"], stop["target"], stop["module"]) == ("deny", "96 MB", "probe")


async def test_a_method_that_never_returns_is_stopped(state, manager, tmp_path, engine):
    register_module(state, install(tmp_path, lambda t: t.replace("[methods.spin]", "[methods.spin]\ntimeout_ms = 1000")))
    await still_serving(manager)
    [before] = ours(engine, state)
    started = time.monotonic()
    with pytest.raises(ModuleTimeout):
        await probe(manager, "spin")
    assert time.monotonic() - started < 2.5
    await still_serving(manager)
    [after] = ours(engine, state)
    assert after.id != before.id  # the spinning container was killed, not left burning CPU
    [stop] = events(state, "limit.timeout")
    assert stop["request_id"] == "req-oci" and stop["target"] == "spin: 1000 ms"


# -- lifecycle -------------------------------------------------------------------------

async def test_container_killed_from_outside_mid_call(state, manager, tmp_path, engine):
    register_module(state, install(tmp_path))
    await still_serving(manager)
    call = asyncio.create_task(probe(manager, "sleep", 20))
    await asyncio.sleep(0.3)
    [container] = ours(engine, state)
    container.kill()
    with pytest.raises(ModuleCrashed) as crashed:
        await call
    assert "status 137" in crashed.value.message and crashed.value.details["module"] == "probe"
    await still_serving(manager)


async def test_concurrency_is_bounded_with_backpressure(state, manager, tmp_path, engine):
    register_module(state, install(tmp_path, lambda t: t.replace("warm = 1", "warm = 2\nconcurrency = 2\nqueue = 0")))
    slow = [asyncio.create_task(probe(manager, "sleep", 0.5)) for _ in range(2)]
    await asyncio.sleep(0.1)
    with pytest.raises(ModuleBusy):
        await probe(manager, "echo", 1)
    assert [r["slept"] for r in await asyncio.gather(*slow)] == [0.5, 0.5]
    assert len(ours(engine, state)) == 2  # warm = 2: both calls ran at once, one per container


async def test_orphans_of_a_dead_runtime_are_removed(state, tmp_path, engine):
    registration = register_module(state, install(tmp_path))
    label = state_label(state.path)

    def leftover(pid: str):
        return engine.containers.run(
            registration.artifact_sha256, entrypoint=["sleep", "60"], detach=True, network_mode="none",
            labels={"gati.module": "probe", "gati.state": label, "gati.runtime-pid": pid, "gati.runtime-start": "1"},
        )

    dead = leftover("999999999")
    alive = leftover(str(os.getppid()))  # a live pid, but not the runtime that started it (start time differs)
    other_state = engine.containers.run(registration.artifact_sha256, entrypoint=["sleep", "60"], detach=True,
                                        network_mode="none", labels={"gati.state": "someone-else"})
    try:
        manager = ModuleManager(state, egress_hosts=EGRESS_HOSTS, environ=ENVIRON)
        await probe(manager, "echo", 1)
        names = {c.name for c in ours(engine, state)}
        assert dead.name not in names and alive.name not in names and len(names) == 1
        other_state.reload()  # another project's containers are not ours to remove
        await manager.close()
    finally:
        other_state.remove(force=True)


async def test_close_leaves_no_container_or_socket(state, tmp_path, engine):
    register_module(state, install(tmp_path, lambda t: t.replace("warm = 1", "warm = 2")))
    manager = ModuleManager(state, egress_hosts=EGRESS_HOSTS, environ=ENVIRON)
    await probe(manager, "echo", 1)
    sandbox = manager._running["probe"].sandbox
    runs = sandbox.runs_dir
    assert len(ours(engine, state)) == 2 and len(list(runs.rglob("*.sock"))) == 4
    await manager.close()
    assert ours(engine, state) == []
    assert not runs.exists() and list(runs.parent.rglob("*.sock")) == []
