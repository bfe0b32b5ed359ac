"""Native walls (issue 10): kernel settings read-only and nothing of the runtime's environment
inside (item 4), a bounded /run/gati (item 6), and no file descriptor of someone else's closed
while an instance is spawned (item 9). Real bubblewrap, real processes."""

import pytest
from native_support import needs_bwrap
from walls_support import install_walls_probe

from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

pytestmark = needs_bwrap

SECRET = "walls-runtime-secret-7f3a"


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
