"""The order of a native module's start, which its speed must not change: the host service
listens before the module's first instruction (it starts while bwrap makes the sandbox), and
the readiness after the handshake line is a connection to the socket that line named."""

import asyncio
import os
from pathlib import Path

import pytest
from native_support import CTX, script_module, SHORTLINK, install, manager, needs_bwrap  # noqa: F401

from runtime.modules import register_module
from sandboxes.process import sandbox as process_sandbox
from sandboxes.process.handshake import ModuleStartError

pytestmark = needs_bwrap


async def test_the_host_service_listens_before_the_module_runs(state, manager, tmp_path):
    # The module's first instruction looks for host.sock, and says what it found instead of a handshake.
    register_module(state, script_module(tmp_path, '[ -S /run/gati/host.sock ] && echo "host.sock is there" || echo "no host.sock"\nsleep 30\n'))
    with pytest.raises(ModuleStartError) as exc:
        await manager.call("starter", "run", ctx=CTX)
    assert "printed 'host.sock is there' instead of the handshake line" in exc.value.message


async def test_a_handshake_with_nothing_serving_behind_it_is_named(state, manager, tmp_path, monkeypatch):
    monkeypatch.setattr(process_sandbox, "READY_TIMEOUT_S", 1.0)
    register_module(state, script_module(tmp_path, 'echo "GATI|2|unix|/run/gati/module.sock"\nsleep 30\n'))
    with pytest.raises(ModuleStartError) as exc:
        await manager.call("starter", "run", ctx=CTX)
    assert "printed its handshake line but nothing serves gRPC on its socket within 1 s" in exc.value.message
    assert "GATI_MODULE_SOCKET" in exc.value.fix
    assert manager.health()["starter"] != "ok"


async def test_a_module_that_exits_after_its_handshake_is_named(state, manager, tmp_path):
    register_module(state, script_module(tmp_path, 'echo "GATI|2|unix|/run/gati/module.sock"\nexit 4\n'))
    with pytest.raises(ModuleStartError) as exc:
        await manager.call("starter", "run", ctx=CTX)
    assert "exited before it was ready: exited with status 4" in exc.value.message


def _children() -> list[int]:
    """This process's live children (bwrap and its shell, if any were left)."""
    mine = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                mine.append(int(entry))
    return mine


@pytest.mark.parametrize("delay_s", [0, 0.001, 0.003, 0.006, 0.012])
async def test_a_start_cancelled_midway_leaves_nothing(state, manager, tmp_path, delay_s):
    """The host service starts while bwrap is being made: a start cancelled at any point (Ctrl+C,
    a deadline) stops both, and leaves no process, run directory or cgroup."""
    register_module(state, install(tmp_path, SHORTLINK))
    before = set(_children())
    starting = asyncio.create_task(manager.call("shortlink", "preview", {"url": "https://example.org/"}, ctx=CTX))
    await asyncio.sleep(delay_s)
    starting.cancel()
    done, _ = await asyncio.wait({starting}, timeout=30)  # bounded: a cancelled start once hung for good
    assert done, "the cancelled start never finished"
    backend = manager.backends.of("native")
    for _ in range(100):  # a killed process is reaped asynchronously
        if set(_children()) <= before:
            break
        await asyncio.sleep(0.02)
    assert set(_children()) <= before
    assert [p for p in backend.runs.glob("*/i*")] == [] or "shortlink" in manager._running
    for root in backend.cgroups.roots.values():
        assert [c for c in root.iterdir() if c.is_dir()] == [] or "shortlink" in manager._running
