"""What is container-only about container modules in the real Docker engine: the hardened
container itself, image pinning, a container killed from outside, orphans and clean-up.

Driven by runtime/reports/probes/oci (the one Python probe, whose methods each attempt one
thing and report what happened), registered from a copy whose manifest a test may change.
The scenarios every backend shares (limits, egress, files, env, host calls) are the
conformance suite's (tests/conformance), which runs them in containers too.
The first run builds the base images (debootstrap, about a minute); later runs reuse them.
"""

import asyncio
import os
import shutil
from pathlib import Path

import docker
import pytest

from runtime.core.call import CallContext
from runtime.core.errors import (
    IntegrityError,
    ModuleCrashed,
    ModuleNotFound,
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
