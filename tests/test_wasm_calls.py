"""Where a WASM call runs (inline on the event loop, or on a worker) and that every call still
gets a fresh instance, whichever path it takes and however the instance slots are reused.

Driven by tests/modules/cells (see cells.wat for its methods), in real wasmtime.
"""

import asyncio
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.errors import BadPayload, ManifestError, ModuleBusy, ModuleTimeout
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.wasm import engine

CELLS = Path(__file__).parent / "modules" / "cells"
GREET = Path(__file__).resolve().parents[1] / "sample_modules" / "greet-wat"
CTX = CallContext(request_id="req-cells", caller="test")
DENIED = 1


def register(state, tmp_path, edit=None):
    target = tmp_path / "cells"
    shutil.copytree(CELLS, target)
    manifest = target / "module.toml"
    if edit:
        manifest.write_text(edit(manifest.read_text()))
    return register_module(state, target)


def granted_egress(text: str) -> str:
    return text.replace('kv = ["cells"]', 'kv = ["cells"]\negress = ["http://example.com:80"]')


async def call(manager, method):
    return await manager.call("cells", method, None, ctx=CTX)


def logged_on(caplog) -> set[int]:
    """The threads the module's log lines were written on."""
    return {r.thread for r in caplog.records if "hello from cells" in r.getMessage()}


async def test_a_short_call_runs_on_the_event_loop_thread(state, manager, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gati.module")
    register(state, tmp_path)
    # Several calls: on a busy machine one may be descheduled past its 10 ms budget before it
    # logs, and so move to a worker; the next short call is back on the loop.
    assert [await call(manager, "log") for _ in range(5)] == [True] * 5
    assert threading.get_ident() in logged_on(caplog)


async def test_a_module_granted_egress_runs_on_a_worker(state, manager, tmp_path, caplog):
    # Its host calls wait for the event loop, which an inline call would be holding.
    caplog.set_level(logging.INFO, logger="gati.module")
    register(state, tmp_path, granted_egress)
    assert [await call(manager, "log") for _ in range(5)] == [True] * 5
    assert threading.get_ident() not in logged_on(caplog)


@pytest.mark.parametrize("edit", [None, granted_egress], ids=["inline", "worker"])
async def test_every_call_gets_a_fresh_instance(state, manager, tmp_path, edit):
    register(state, tmp_path, edit)
    assert [await call(manager, "leftovers") for _ in range(20)] == [0] * 20
    assert await asyncio.gather(*(call(manager, "leftovers") for _ in range(8))) == [0] * 8


async def test_a_call_that_outgrows_its_inline_budget_moves_and_the_loop_keeps_running(state, manager, tmp_path):
    register(state, tmp_path)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        for _ in range(2):  # the first starts inline and moves; the second goes to a worker at once
            with pytest.raises(ModuleTimeout, match="300 ms deadline"):
                await call(manager, "spin")
    finally:
        task.cancel()
    assert ticks >= 10


async def test_a_moved_method_comes_back_inline_once_a_call_of_it_is_short_even_on_a_busy_loop(state, manager, tmp_path, caplog):
    # A short method moves to a worker when one call of it is descheduled past its budget (a busy
    # machine, a GC pause). Whether it is short again is the call's own time, not the round trip:
    # on a busy loop the hop back alone takes milliseconds, and the method would never come back.
    caplog.set_level(logging.INFO, logger="gati.module")
    register(state, tmp_path)
    assert await call(manager, "log") is True
    sandbox = manager._running["cells"].sandbox

    async def busy_loop():
        await asyncio.sleep(0)
        time.sleep(0.02)  # the loop is busy while the worker call finishes, so its answer waits

    back = False
    for _ in range(5):  # bounded: on a loaded machine the worker call itself may be descheduled too
        sandbox._offloaded.add("log")  # as a descheduled call leaves it
        assert (await asyncio.gather(call(manager, "log"), busy_loop()))[0] is True
        caplog.clear()
        assert await call(manager, "log") is True
        if logged_on(caplog) == {threading.get_ident()}:
            back = True
            break
    assert back, "the method stayed on a worker"


async def test_a_call_that_acted_is_never_run_twice(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises(ModuleTimeout, match="300 ms deadline"):
        await call(manager, "act_then_spin")
    writes = [e for e in read_events(state.audit_path) if e["capability"] == "kv.write"]
    assert len(writes) == 1 and writes[0]["decision"] == "allow"


async def test_inline_modules_are_refused_egress_and_module_calls_without_waiting_for_the_loop(state, manager, tmp_path):
    register(state, tmp_path)
    register_module(state, GREET)
    assert await asyncio.wait_for(call(manager, "egress"), 10) == DENIED, list(read_events(state.audit_path))
    assert await asyncio.wait_for(call(manager, "call"), 10) == DENIED
    refused = [(e["capability"], e["decision"]) for e in read_events(state.audit_path)]
    assert refused == [("egress", "deny"), ("module.call", "deny")]


def test_an_initialize_export_of_another_type_is_refused_at_registration(state, tmp_path):
    # gati calls _initialize unchecked (capi) before every method: its type is checked first.
    target = tmp_path / "cells"
    shutil.copytree(CELLS, target)
    wat = target / "cells.wat"
    wat.write_text(wat.read_text().replace('(func (export "nan")', '(func (export "_initialize") (param i32))\n  (func (export "nan")'))
    with pytest.raises(ManifestError, match="_initialize") as err:
        register_module(state, target)
    assert "() -> ()" in err.value.message + (err.value.fix or "")


async def test_a_full_instance_pool_refuses_the_call_as_busy(state, tmp_path, monkeypatch):
    # The process's pooling allocator holds POOL_SLOTS instances at once; past that a call is busy, not a crash.
    monkeypatch.setattr(engine, "POOL_SLOTS", 2)
    shared = engine._Shared()
    monkeypatch.setattr(engine, "SHARED", shared)
    register(state, tmp_path, lambda t: granted_egress(t).replace("memory_mb = 16", "memory_mb = 16\nconcurrency = 3"))
    manager = ModuleManager(state)
    try:
        results = await asyncio.gather(*(call(manager, "spin") for _ in range(3)), return_exceptions=True)
    finally:
        await manager.close()
        shared.close()
    assert sorted(type(r).__name__ for r in results) == ["ModuleBusy", "ModuleTimeout", "ModuleTimeout"]
    [busy] = [r for r in results if isinstance(r, ModuleBusy)]
    assert "instance slot" in busy.message and "concurrency" in busy.fix


async def test_nan_is_not_json_in_either_direction(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises(BadPayload, match="not JSON-compatible"):
        await manager.call("cells", "leftovers", {"x": float("nan")}, ctx=CTX)
    with pytest.raises(BadPayload, match="not JSON"):
        await call(manager, "nan")
