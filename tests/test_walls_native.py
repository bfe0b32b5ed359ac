"""Native walls (issue 10): kernel settings read-only and nothing of the runtime's environment
inside (item 4), a bounded /run/gati (item 6), and no file descriptor of someone else's closed
while an instance is spawned (item 9). Real bubblewrap, real processes."""

import asyncio
import os

import pytest
from native_support import needs_bwrap
from walls_support import MACHINE_WIDE_PROC, install_walls_probe, mount_of, readable_machine_wide

from runtime.core.errors import ModuleTimeout
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

pytestmark = needs_bwrap

SECRET = "walls-runtime-secret-7f3a"
RUN_DIR_MIB = 1


@pytest.fixture
async def manager(state):
    manager = ModuleManager(state, environ={"WALLS_ALLOWED": "granted", "WALLS_NOT_DECLARED": SECRET})
    yield manager
    await manager.close()


# -- item 4 -------------------------------------------------------------------------------------

async def test_no_process_inside_sees_the_runtimes_environment(state, manager, tmp_path, monkeypatch):
    monkeypatch.setenv("GATI_WALLS_RUNTIME_SECRET", SECRET)  # the runtime's own environment
    register_module(state, install_walls_probe(tmp_path, "native", env=("WALLS_ALLOWED",)))
    seen = await manager.call("walls", "environs", None)
    environs = seen["environ"]
    own = environs["self"]
    assert own["WALLS_ALLOWED"] == "granted"
    assert "1" in environs, f"the sandbox's init should show its (empty) environment: {seen['unreadable']}"
    for pid, env in environs.items():
        assert SECRET not in env.values(), f"process {pid} inside holds the runtime's secret"
        assert set(env.items()) <= set(own.items()), f"process {pid} has what the module was not given: {set(env.items()) - set(own.items())}"
    assert not {"GATI_WALLS_RUNTIME_SECRET", "PATH", "HOME"} & set(own)


KERNEL_SETTINGS = [
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/drop_caches",
    "/proc/sys/fs/file-max",
    "/proc/sysrq-trigger",
]


async def test_kernel_settings_cannot_be_written(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "native"))
    opened = await manager.call("walls", "open_for_write", KERNEL_SETTINGS)
    writable = [path for path, result in opened.items() if result["ok"]]
    assert writable == []
    assert {result["error"] for result in opened.values()} <= {"EROFS", "EACCES", "ENOENT"}
    assert opened["/proc/sys/kernel/core_pattern"]["error"] == "EROFS"


async def test_what_proc_tells_of_the_whole_machine_is_hidden(state, manager, tmp_path):
    # /proc/keys lists the host's keyrings and /proc/timer_list its timers: readable by anyone, masked as in Docker.
    register_module(state, install_walls_probe(tmp_path, "native"))
    seen = await manager.call("walls", "peek", [p for p in MACHINE_WIDE_PROC if os.path.exists(p)])
    assert readable_machine_wide(seen) == {}
    assert seen, "this kernel shows none of them: nothing to check"


# -- item 6 -------------------------------------------------------------------------------------

async def test_run_gati_is_bounded(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "native"))
    filled = await manager.call("walls", "fill", {"path": "/run/gati/filler", "mib": 16})
    assert (filled["ok"], filled.get("error")) == (False, "ENOSPC")
    assert filled["written"] <= RUN_DIR_MIB << 20
    [instance] = manager._running["walls"].sandbox.instances
    assert mount_of(instance.run_dir) == ("tmpfs", "gati-run")  # the host's disk never held a byte of it
    assert await manager.call("walls", "echo", "still serving") == "still serving"


# -- item 9 -------------------------------------------------------------------------------------

class FdCanary:
    """Opens a pipe at every turn of the event loop and holds it, as a busy server holds its
    connections, so that a descriptor number someone frees is soon one of the canary's; notes
    any of its descriptors closed under it. (Descriptors are handed out lowest first: holding
    them all fills every hole below the one a spawn frees and then closes again.)"""

    HOLD = 256

    def __init__(self):
        self.checks = 0
        self.closed_under_us: list[int] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        held: list[tuple[int, int]] = []
        while not self._stop.is_set():
            held += [(fd, os.fstat(fd).st_ino) for fd in os.pipe()]
            await asyncio.sleep(0)
            for fd, inode in held:
                try:
                    if os.fstat(fd).st_ino == inode:
                        continue
                except OSError:
                    pass
                self.closed_under_us.append(fd)  # closed by someone else (and maybe reused: not ours to close)
            held = [(fd, inode) for fd, inode in held if fd not in self.closed_under_us]
            self.checks += 1
            if len(held) >= self.HOLD or self._stop.is_set():
                for fd, _ in held:
                    os.close(fd)
                held = []

    def stop(self) -> None:
        self._stop.set()


async def test_replacing_an_instance_closes_no_descriptor_of_anyone_else(state, manager, tmp_path):
    register_module(state, install_walls_probe(tmp_path, "native"))
    assert await manager.call("walls", "echo", 1) == 1
    canary = FdCanary()
    watching = asyncio.create_task(canary.run())
    try:
        for _ in range(RESTARTS):
            with pytest.raises(ModuleTimeout):  # past its deadline: killed, and a new instance spawned
                await manager.call("walls", "sleep", 5)
            assert await manager.call("walls", "echo", 2) == 2
    finally:
        canary.stop()
        await watching
    assert canary.checks > RESTARTS
    assert canary.closed_under_us == []


RESTARTS = 8



async def test_a_stop_cancelled_midway_still_releases_everything(state, manager, tmp_path):
    """A kill-and-replace whose caller is cancelled (its deadline's backstop, a closing loop) must
    not leave the instance's gRPC server and channel open: collected later, from another loop,
    they deadlock grpc's poller thread and with it the whole runtime."""
    register_module(state, install_walls_probe(tmp_path, "native"))
    assert await manager.call("walls", "echo", 1) == 1
    [instance] = manager._running["walls"].sandbox.instances
    stopping = asyncio.create_task(instance.stop())
    await asyncio.sleep(0)  # the stop is under way: killing the sandbox
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    for _ in range(200):  # the run directory goes last, once the servers are closed
        if not instance.run_dir.exists():
            break
        await asyncio.sleep(0.05)
    assert not instance.run_dir.exists()
    assert not instance.alive
