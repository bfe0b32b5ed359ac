"""Container walls (issue 10): a bounded /run/gati (item 6), and no container outliving a runtime
killed with SIGKILL (item 8). Real Docker engine, real runtimes in subprocesses."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest
from walls_support import ROOT, install_walls_probe, mount_of

from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.oci import available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

RUN_DIR_MIB = 1


@pytest.fixture
async def manager(state):
    manager = ModuleManager(state)
    yield manager
    await manager.close()


@pytest.fixture
def engine():
    client = docker.from_env()
    yield client
    client.close()


# -- item 6 -------------------------------------------------------------------------------------

async def test_run_gati_is_bounded(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "oci"))
    filled = await manager.call("walls", "fill", {"path": "/run/gati/filler", "mib": 16})
    assert (filled["ok"], filled.get("error")) == (False, "ENOSPC")
    assert filled["written"] <= RUN_DIR_MIB << 20
    [instance] = manager._running["walls"].sandbox.instances
    assert mount_of(instance.run_dir) == ("tmpfs", "gati-run")  # the host's disk never held a byte of it
    assert await manager.call("walls", "echo", "still serving") == "still serving"
