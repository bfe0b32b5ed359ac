"""Stopping the real `gati` command with Ctrl+C or SIGTERM while a container module runs.

Whenever the signal comes (the container just created, or the call under way), the command
exits quietly with 130 (Ctrl+C) or 143 (SIGTERM) for `gati call`, 0 for `gati module serve`,
and leaves no container of its state directory behind.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import grpc
import pytest
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc

from sandboxes.oci import available
from sandboxes.oci.containers import state_label

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

ROOT = Path(__file__).resolve().parents[1]
GATI = str(Path(sys.executable).parent / "gati")
PROBE = ROOT / "runtime" / "reports" / "probes" / "oci"
WAIT_S = 60  # bound on every wait for the engine; a loaded machine is slow, a hung test must still end


@pytest.fixture
def engine():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def project(tmp_path, engine):
    """A project with the container probe registered; (project dir, environment for gati, state label)."""
    root = tmp_path / "app"
    shutil.copytree(PROBE, root / "modules" / "probe")
    (root / "gati.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "GATI_HOME"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}"
    done = subprocess.run([GATI, "module", "register", str(root / "modules" / "probe"), "--project", str(root)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    label = state_label((root / ".gati").resolve())
    yield root, env, label
    for container in containers(engine, label):  # a failed test killed gati: remove what it left (its own label only)
        container.remove(force=True)


def containers(engine, label, **filters):
    # sparse: no inspect per container, which races a container being created or removed (404)
    return engine.containers.list(all=True, sparse=True, filters={"label": f"gati.state={label}", **filters})


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.02)


def serving(engine, label) -> bool:
    """A container of ours whose module printed its handshake: it serves, the call is being made."""
    for container in containers(engine, label, status="running"):
        try:
            if b"|unix|" in container.logs(stdout=True, stderr=False):
                return True
        except docker.errors.NotFound:
            pass
    return False


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("when", ["container created", "call under way"])
def test_call_stopped_by_a_signal_leaves_no_container(engine, project, sig, status, when):
    root, env, label = project
    proc = subprocess.Popen([GATI, "call", "probe", "sleep", "60", "--project", str(root)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if when == "container created":  # at first sight: the engine's create may still be returning
            wait_for(lambda: containers(engine, label), "the container to be created")
        else:
            wait_for(lambda: serving(engine, label), "the module to serve")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and "Event loop is closed" not in stderr and "Exception ignored" not in stderr
    assert containers(engine, label) == []


def test_module_serve_stopped_by_sigterm_leaves_no_container(engine, project, tmp_path):
    root, env, label = project
    sock = tmp_path / "probe.sock"
    proc = subprocess.Popen(
        [GATI, "module", "serve", "probe", "--listen", f"unix:{sock}", "--project", str(root)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            grpc.channel_ready_future(channel).result(timeout=WAIT_S)
            reply = module_pb2_grpc.ModuleServiceStub(channel).Call(module_pb2.CallRequest(method="echo", payload=b'{"up": 1}'), timeout=WAIT_S)
        assert json.loads(reply.payload) == {"up": 1}
        assert len(containers(engine, label, status="running")) == 1
        proc.terminate()
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert containers(engine, label) == []
