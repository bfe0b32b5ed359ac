"""The gate in front of a started sandbox (runtime.modules.manager._Running): `concurrency` calls
run at once, up to `queue` more wait in line and get their slot first come, first served, one
more is refused as busy, and a slot handed to a call that gives up just then goes to the next.

The sandbox here only holds each call until the test lets it go: what is tested is the gate, the
same for every backend (tests/conformance/test_limits.py runs the real ones against it)."""

import asyncio
import shutil
from pathlib import Path

import pytest

from runtime.core.call import CallContext
from runtime.core.errors import ModuleBusy
from runtime.modules import register_module
from runtime.modules.manager import _Running

GREET = Path(__file__).resolve().parents[1] / "sample_modules" / "greet-wat"
CTX = CallContext(request_id="req-slots", caller="test")


class HeldSandbox:
    """Each call waits until release(its payload)."""

    bounded = True

    def __init__(self):
        self.entered: list[bytes] = []
        self.gates: dict[bytes, asyncio.Event] = {}

    async def call(self, method, payload, ctx, timeout_s):
        self.entered.append(payload)
        gate = self.gates.setdefault(payload, asyncio.Event())
        await gate.wait()
        return b"{}"

    def release(self, payload):
        self.gates.setdefault(payload, asyncio.Event()).set()


@pytest.fixture
def running(state, tmp_path):
    target = tmp_path / "greet"
    shutil.copytree(GREET, target)
    manifest = target / "module.toml"
    manifest.write_text(manifest.read_text().replace("timeout_ms = 2000", "timeout_ms = 2000\nconcurrency = 1\nqueue = 2"))
    return _Running(register_module(state, target), HeldSandbox())


async def until(condition):
    for _ in range(1000):  # bounded
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


async def test_calls_wait_in_line_first_come_first_served_and_past_the_queue_are_busy(running):
    held = running.sandbox
    a = asyncio.create_task(running.call("hello", b"a", CTX, 30))
    await until(lambda: held.entered == [b"a"])
    b = asyncio.create_task(running.call("hello", b"b", CTX, 30))
    await until(lambda: running.waiting == 1)
    c = asyncio.create_task(running.call("hello", b"c", CTX, 30))
    await until(lambda: running.waiting == 2)
    with pytest.raises(ModuleBusy):
        await running.call("hello", b"d", CTX, 30)
    for payload, task in ((b"a", a), (b"b", b), (b"c", c)):
        await until(lambda: held.entered[-1] == payload)
        held.release(payload)
        assert await asyncio.wait_for(task, 10) == b"{}"
    assert held.entered == [b"a", b"b", b"c"]
    assert (running.free, running.waiting, running.active) == (1, 0, 0)


async def test_a_slot_handed_to_a_call_cancelled_before_it_ran_goes_to_the_next_in_line(running):
    held = running.sandbox
    a = asyncio.create_task(running.call("hello", b"a", CTX, 30))
    await until(lambda: held.entered == [b"a"])
    b = asyncio.create_task(running.call("hello", b"b", CTX, 30))
    c = asyncio.create_task(running.call("hello", b"c", CTX, 30))
    await until(lambda: running.waiting == 2)
    held.release(b"a")
    await asyncio.sleep(0)  # a ends and hands its slot to b, which has not run yet
    assert a.done() and running.waiting == 1 and b"b" not in held.entered
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    await until(lambda: held.entered == [b"a", b"c"])  # c got the slot b never used
    held.release(b"c")
    assert await asyncio.wait_for(c, 10) == b"{}"
    assert (running.free, running.waiting, running.active) == (1, 0, 0)
