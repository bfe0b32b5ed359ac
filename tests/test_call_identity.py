"""Every host request and proxy request is recorded under the call that made it, or refused.

A native module (runtime/reports/probes/native, in real bubblewrap) serves several calls at
once through one host socket and one egress proxy. Each call is named by the token the
module received with it (sandboxes/process/call_tokens.py); nothing is attributed by the
request id a module sends, and nothing by guessing which call is in flight.
"""

import asyncio

from aiohttp import web
from native_support import PROBE, events, install, manager, needs_bwrap  # noqa: F401

from runtime.core.call import CallContext
from runtime.modules import register_module

pytestmark = needs_bwrap


def call(request_id: str) -> CallContext:
    return CallContext(request_id=request_id, trace_id=f"trace-{request_id}", caller="test")


async def wait_until(condition, what: str, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def asked(state, capability: str) -> list[dict]:
    """The records of what the module asked for while it ran (not what its sandbox was handed at start)."""
    return [e for e in events(state, capability) if e.get("reason") != "handed over at sandbox start"]


def in_flight(manager) -> int:
    return manager._running["probe"].sandbox.instances[0].calls.in_flight


async def test_a_module_naming_another_calls_request_id_gets_nothing_recorded_under_it(state, manager, tmp_path):
    register_module(state, install(tmp_path, PROBE))
    await manager.call("probe", "echo", 1, ctx=call("req-warm"))
    parked = asyncio.create_task(manager.call("probe", "park", "a", ctx=call("req-a")))
    try:
        await wait_until(lambda: in_flight(manager) == 1, "call req-a in flight")
        named = await manager.call("probe", "env_as", {"name": "PROBE_ALLOWED", "token": "req-a"}, ctx=call("req-b"))
        assert named["status"] == 3 and (named["result"]["code"], named["result"]["reason"]) == ("call_token_refused", "unknown call token")
        own = await manager.call("probe", "env", "PROBE_ALLOWED", ctx=call("req-b"))
        assert own == {"status": 0, "result": "yes"}
    finally:
        await manager.call("probe", "unpark", "a", ctx=call("req-c"))
        assert (await parked)["released"]
    recorded = [(e["decision"], e["request_id"], e.get("reason")) for e in asked(state, "env")]
    assert recorded == [("deny", "", "unknown call token"), ("allow", "req-b", None)]


async def test_a_thread_left_behind_by_a_finished_call_is_refused(state, manager, tmp_path):
    register_module(state, install(tmp_path, PROBE))
    assert await manager.call("probe", "leave_thread", "PROBE_ALLOWED", ctx=call("req-left")) == {"started": True}
    # Another call is in flight while the thread asks: it must not be taken for that one.
    outcome = await manager.call("probe", "left_thread_outcome", None, ctx=call("req-now"))
    assert outcome["status"] == 3 and outcome["result"]["code"] == "call_token_refused"
    assert outcome["result"]["reason"] == "the call this token was issued to has ended"
    [refused] = asked(state, "env")
    assert (refused["decision"], refused["request_id"], refused["target"]) == ("deny", "req-left", "PROBE_ALLOWED")
    assert refused["reason"] == "the call this token was issued to has ended"


async def test_plain_http_through_the_proxy_with_two_calls_in_flight_is_recorded_under_each(state, manager, tmp_path, loopback_http):
    arrived: list[str] = []
    both = asyncio.Event()

    async def page(request):  # holds each request until both calls have reached it: both in flight
        arrived.append(request.path)
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)
        return web.Response(text=request.path)

    port = await loopback_http(page)
    register_module(state, install(tmp_path, PROBE, lambda t: t.replace("egress = [", f'egress = ["http://127.0.0.1:{port}", ')))
    first = asyncio.create_task(manager.call("probe", "proxy_get", f"http://127.0.0.1:{port}/a", ctx=call("req-a")))
    await wait_until(lambda: arrived == ["/a"], "the first call's request at the origin")
    second = await manager.call("probe", "proxy_get", f"http://127.0.0.1:{port}/b", ctx=call("req-b"))
    assert (second["body"], (await first)["body"]) == ("/b", "/a")
    assert [(e["decision"], e["request_id"]) for e in events(state, "egress")] == [("allow", "req-a"), ("allow", "req-b")]
