"""Limits every backend enforces: a deadline that really stops the work, memory, processes,
a crash, back-pressure at the concurrency limit, payload size. After each, the module serves
the next call."""

import asyncio

import pytest

from runtime.core.errors import (
    BadPayload,
    ModuleBusy,
    ModuleCrashed,
    ModuleError,
    ModuleTimeout,
)
from runtime.modules.manager import MAX_PAYLOAD_BYTES

from .backends import PROCESSES, needs, pid_alive, wait_for


async def test_a_method_past_its_deadline_is_stopped(backend, install):
    probe = install(methods={"spin": {"timeout_ms": 300}})
    await probe.still_serving()
    workers = backend.workers(probe.manager)
    ticks = 0

    async def ticker():  # the event loop keeps serving while the module spins
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    # The sandbox's own deadline, not the manager's backstop ("did not answer within"), stopped it.
    with pytest.raises(ModuleTimeout, match="ran past its 300 ms deadline") as stopped:
        await probe("spin")
    task.cancel()
    assert ticks >= 5
    assert "timeout_ms" in stopped.value.fix
    await wait_for(lambda: not any(pid_alive(pid) for pid in workers))  # killed, not left burning CPU
    await probe.still_serving()
    if "timeout" in backend.audited_limits:
        [stop] = probe.events("limit.timeout")
        assert (stop["decision"], stop["target"], stop["request_id"]) == ("deny", "spin: 300 ms", "req-conformance")
        assert stop["grant"] == "raise [methods.spin] timeout_ms in module.toml"


async def test_memory_past_the_limit_is_stopped(backend, install):
    probe = install()
    limit = probe.limits["memory_mb"]
    with pytest.raises((ModuleError, ModuleCrashed)) as stopped:
        await probe("membomb", limit * 4)  # bounded, so that a sandbox failing to stop it cannot take the host down
    message = stopped.value.message
    assert "memory" in message, message
    pages = message.split("after ")[1].split()[0] if "after " in message else None  # wasm: memory.grow refused after N pages
    assert (pages is not None and int(pages) * 64 <= limit * 1024) or f"{limit}" in message, message
    if isinstance(stopped.value, ModuleCrashed):  # stopped by the runtime, not given up by the module: it names the setting
        assert "memory_mb" in f"{message} {stopped.value.fix}", stopped.value.to_dict()
    await probe.still_serving()
    if "memory" in backend.audited_limits:
        [stop] = probe.events("limit.memory")
        assert (stop["decision"], stop["target"], stop["module"]) == ("deny", f"{limit} MB", "probe")
        assert stop["grant"] == "raise [limits] memory_mb in module.toml"


@needs(PROCESSES)
async def test_a_fork_bomb_stops_at_the_process_limit(backend, install):
    probe = install()
    limit = probe.limits["processes"]
    bomb = await probe("fork_bomb", 500)
    assert bomb["stopped_by"]["error"] == "EAGAIN" and bomb["spawned"] < limit
    await probe.still_serving()
    if "processes" in backend.audited_limits:
        [event] = probe.events("limit.processes")
        assert (event["decision"], event["target"], event["request_id"]) == ("deny", f"{limit} processes", "req-conformance")
        assert event["grant"] == "raise [limits] processes in module.toml"


async def test_a_crash_fails_the_call_and_the_next_call_works(install):
    probe = install()
    with pytest.raises(ModuleCrashed) as crashed:
        await probe("crash")
    assert crashed.value.details["module"] == "probe"
    await probe.still_serving()


async def test_past_concurrency_and_queue_calls_are_refused_as_busy(install, origin):
    # One call holds the only slot (its host call waits on the origin), one waits in the queue.
    probe = install(capabilities={"egress": [f"http://127.0.0.1:{origin.port}"]},
                    limits={"concurrency": 1, "queue": 1}, methods={"echo": {"timeout_ms": 200}})
    await probe.still_serving()
    holding = asyncio.create_task(probe("http", {"method": "GET", "url": origin.url("/hold")}))
    await asyncio.wait_for(origin.arrived.wait(), 10)
    queued = asyncio.create_task(probe("echo", "queued"))
    running = probe.manager._running["probe"]
    await wait_for(lambda: running.waiting == 1)
    with pytest.raises(ModuleBusy) as busy:
        await probe("echo", "one too many")
    assert "concurrency" in busy.value.fix
    with pytest.raises(ModuleTimeout, match="for a free slot"):  # the queued call's own deadline passed while it waited
        await queued
    origin.release.set()
    held = await holding
    assert held["status"] == 0 and held["result"]["status"] == 200
    await probe.still_serving()


async def test_payloads_round_trip_as_json_and_oversized_ones_are_refused_before_the_module_runs(install):
    probe = install()
    value = {"a": [1, "b", None, 2.5, True], "é": {"nested": []}}
    assert await probe("echo", value) == value
    with pytest.raises(BadPayload, match=f"over the {MAX_PAYLOAD_BYTES}-byte limit") as refused:
        await probe("echo", "x" * (MAX_PAYLOAD_BYTES + (1 << 20)))
    assert "send less per call" in refused.value.fix
    assert await probe("echo", "x" * 1000) == "x" * 1000


@needs(PROCESSES)
async def test_warm_instances_serve_calls_side_by_side(backend, install, origin):
    probe = install(capabilities={"egress": [f"http://127.0.0.1:{origin.port}"]}, limits={"warm": 2, "concurrency": 2, "queue": 0})
    await probe.still_serving()
    assert len(backend.workers(probe.manager)) == 2
    calls = [asyncio.create_task(probe("http", {"method": "GET", "url": origin.url("/hold")})) for _ in range(2)]
    await wait_for(lambda: origin.hits.count("/hold") == 2)  # both arrived: neither waited for the other
    with pytest.raises(ModuleBusy):
        await probe("echo", 1)
    origin.release.set()
    assert [r["status"] for r in await asyncio.gather(*calls)] == [0, 0]
