"""A module registered again while calls run in it (a rebuild, `gati dev`): the calls in flight
finish in the old sandbox, new calls go to the new one, then the old one is closed."""

import asyncio
import shutil
import textwrap

import pytest

from runtime.core.state import StateDir
from runtime.modules import ModuleManager, register_module

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

SOURCE = '''#!/usr/bin/python3
import time
from gati_sdk import Module

module = Module("napper", "0.1.0")


@module.method
def nap(payload, ctx):
    time.sleep(payload["s"])
    return {"version": VERSION}


VERSION = {version}

if __name__ == "__main__":
    module.serve()
'''


def write_module(folder, version):
    folder.mkdir(exist_ok=True)
    (folder / "module.toml").write_text(textwrap.dedent('''\
        name = "napper"
        version = "0.1.0"
        kind = "native"
        [artifact]
        path = "main.py"
        [methods.nap]
        timeout_ms = 20000
        [limits]
        memory_mb = 96
        processes = 32
    '''))
    (folder / "main.py").write_text(SOURCE.replace("{version}", str(version)))
    (folder / "main.py").chmod(0o755)


async def test_calls_in_flight_finish_in_the_replaced_sandbox(tmp_path):
    folder = tmp_path / "napper"
    write_module(folder, 1)
    state = StateDir(tmp_path / "state")
    manager = ModuleManager(state)
    try:
        register_module(state, folder)
        assert await manager.call("napper", "nap", {"s": 0}) == {"version": 1}  # started
        slow = asyncio.create_task(manager.call("napper", "nap", {"s": 2}))
        async with asyncio.timeout(30):
            while manager._running["napper"].active == 0:  # the slow call is inside the sandbox now
                await asyncio.sleep(0.01)
        write_module(folder, 2)
        register_module(state, folder)
        assert await manager.call("napper", "nap", {"s": 0}) == {"version": 2}  # a new sandbox answers
        assert await slow == {"version": 1}  # the old one finished its call before it was closed
        old = [t for t in manager._retiring]
        async with asyncio.timeout(30):
            await asyncio.gather(*old)
    finally:
        await manager.close()
        state.close()
