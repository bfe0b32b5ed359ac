"""A runtime killed with SIGKILL leaves nothing running: no process, no namespace; and the next
runtime removes the sockets and cgroups it left behind."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from native_support import PROBE, ROOT, install, needs_bwrap

from sandboxes.native.limits import _remove_tree

pytestmark = needs_bwrap

# A real runtime in its own process: starts the probe (2 warm instances), answers one call,
# reports where its sandboxes live, then waits to be killed.
RUNTIME = """
import asyncio, json, os, sys
from runtime.modules import ModuleManager, register_module
from runtime.core.state import StateDir

async def main(module_dir, state_dir):
    state = StateDir(state_dir)
    register_module(state, module_dir)
    manager = ModuleManager(state)
    assert await manager.call("probe", "echo", "up") == "up"
    sandbox = manager._running["probe"].sandbox
    procs = [i.process for i in sandbox.instances]
    print(json.dumps({
        "bwrap": [p.proc.pid for p in procs],
        "sandboxed": [p.pid for p in procs],
        "netns": [os.readlink(f"/proc/{p.pid}/ns/net") for p in procs],
        "run_dirs": [str(i.run_dir) for i in sandbox.instances],
        "runs_dir": str(sandbox.runs_dir),
        "cgroups": [str(d) for p in procs for d in p.cgroup.dirs.values()],
    }), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def start_runtime(module_dir: Path, state_dir: Path) -> tuple[subprocess.Popen, dict]:
    runtime = subprocess.Popen(
        [sys.executable, "-c", RUNTIME, str(module_dir), str(state_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    line = runtime.stdout.readline()
    assert line, "the runtime died before reporting"
    return runtime, json.loads(line)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def namespaces_in_use() -> set[str]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found.add(os.readlink(f"/proc/{entry}/ns/net"))
            except OSError:
                pass
    return found


def wait_until(check, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_sigkill_of_the_runtime_leaves_nothing_running(tmp_path):
    module = install(tmp_path, PROBE, edit=lambda t: t.replace("[limits]", "[limits]\nwarm = 2"))
    runtime, seen = start_runtime(module, tmp_path / "state")
    assert len(seen["bwrap"]) == 2
    assert all(running(pid) for pid in seen["bwrap"] + seen["sandboxed"])
    assert set(seen["netns"]) <= namespaces_in_use()

    runtime.send_signal(signal.SIGKILL)
    runtime.wait()

    # --die-with-parent: bwrap dies with the runtime, and its sandbox (pid namespace and all) with bwrap.
    assert wait_until(lambda: not any(running(pid) for pid in seen["bwrap"] + seen["sandboxed"]))
    assert wait_until(lambda: not set(seen["netns"]) & namespaces_in_use())
    # What is not a process stays until a runtime on the same state starts: run dirs, empty cgroups.
    assert all(Path(d).exists() for d in seen["run_dirs"])

    second, again = start_runtime(module, tmp_path / "state")
    try:
        assert not any(Path(d).exists() for d in seen["run_dirs"] + [seen["runs_dir"]])
        assert not any(Path(d).exists() for d in seen["cgroups"])
        assert not any(Path(d).parent.exists() for d in seen["cgroups"])  # the dead runtime's cgroup root
        assert again["sandboxed"] and all(running(pid) for pid in again["sandboxed"])
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    assert wait_until(lambda: not any(running(pid) for pid in again["bwrap"] + again["sandboxed"]))
    # Tidy up after the second runtime as a third one would.
    shutil.rmtree(Path(again["runs_dir"]).parents[1], ignore_errors=True)
    for cgroup in again["cgroups"]:
        _remove_tree(Path(cgroup).parent)
