"""Container walls (issue 10): a bounded /run/gati (item 6), and no container outliving a runtime
killed with SIGKILL (item 8). Real Docker engine, real runtimes in subprocesses."""

import json
import signal
import subprocess
import sys
import time

import docker
import docker.errors
import pytest
from walls_support import MACHINE_WIDE_PROC, ROOT, install_walls_probe, mount_of, readable_machine_wide

from runtime.modules import register_module
from sandboxes.oci import available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

RUN_DIR_MIB = 1


@pytest.fixture
def engine():
    client = docker.from_env()
    yield client
    client.close()


async def test_what_proc_tells_of_the_whole_machine_is_hidden(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "oci"))
    seen = await manager.call("walls", "peek", list(MACHINE_WIDE_PROC))
    assert readable_machine_wide(seen) == {}


# -- item 6 -------------------------------------------------------------------------------------

async def test_run_gati_is_bounded(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "oci"))
    filled = await manager.call("walls", "fill", {"path": "/run/gati/filler", "mib": 16})
    assert (filled["ok"], filled.get("error")) == (False, "ENOSPC")
    assert filled["written"] <= RUN_DIR_MIB << 20
    [instance] = manager._running["walls"].sandbox.instances
    assert mount_of(instance.run_dir) == ("tmpfs", "gati-run")  # the host's disk never held a byte of it
    assert await manager.call("walls", "echo", "still serving") == "still serving"


# -- item 8 -------------------------------------------------------------------------------------

# A real runtime in its own process: starts the probe's containers, answers one call, reports
# them, then waits to be killed.
RUNTIME = """
import asyncio, json, sys
from runtime.modules import ModuleManager, register_module
from runtime.core.state import StateDir

async def main(module_dir, state_dir):
    state = StateDir(state_dir)
    register_module(state, module_dir)
    manager = ModuleManager(state)
    assert await manager.call("walls", "echo", "up") == "up"
    sandbox = manager._running["walls"].sandbox
    print(json.dumps([i.process.container.id for i in sandbox.instances]), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
GONE_WITHIN_S = 30.0  # a bound, not a speed: it takes about a second


def running(engine, container_id: str) -> bool:
    try:
        return engine.containers.get(container_id).status in ("created", "running", "restarting")
    except docker.errors.NotFound:
        return False


def test_containers_stop_when_their_runtime_is_killed(tmp_path, engine):
    module = install_walls_probe(tmp_path, "oci", warm=2)
    runtime = subprocess.Popen([sys.executable, "-c", RUNTIME, str(module), str(tmp_path / "state")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = runtime.stdout.readline()
        assert line, "the runtime died before reporting"
        ids = json.loads(line)
        assert len(ids) == 2 and all(running(engine, c) for c in ids)
    finally:
        runtime.send_signal(signal.SIGKILL)
        runtime.wait()
    # No other runtime starts on this state: the containers must go on their own.
    deadline = time.monotonic() + GONE_WITHIN_S
    while any(running(engine, c) for c in ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [c for c in ids if running(engine, c)]
    for c in left:  # do not leave them to the next test
        engine.containers.get(c).remove(force=True)
    assert left == []
