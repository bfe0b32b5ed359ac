"""The lifecycle's cheap paths say exactly what the general ones say.

A plain hook without retries, untraced, runs in the lifecycle's own frame (Lifecycle.call_sync_hook)
instead of call_hook's coroutine and loop, and the lifecycle builds its own events as whole dicts
(LocalContext.add_event) instead of through emit's keyword arguments (docs/performance.md, "The
lifecycle request"). For every outcome of a hook, both paths emit the same events (same keys, in
the same order, same values but for the clock), return the same value and raise the same error."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.core.errors import GatiError
from runtime.http.context import LocalContext
from runtime.http.lifecycle import HookSet, Lifecycle, hook
from runtime.http.response import Response

CLOCKS = ("ms", "duration_ms")  # when, not what: the only fields allowed to differ


class Refused(GatiError):
    code = "refused"
    http_status = 403


async def _value():
    await asyncio.sleep(0)
    return "later"


async def _fails():
    await asyncio.sleep(0)
    raise ValueError("later failure")


async def _hangs():
    await asyncio.sleep(30)  # the hook's 1 ms timeout ends it


def _raise(exc):
    raise exc


# What a plain hook can do: return, raise (a fault, a decision, a TimeoutError), or hand back an awaitable.
OUTCOMES = {
    "none": lambda: None,
    "value": lambda: {"k": 1},
    "fault": lambda: _raise(ValueError("boom")),
    "decision": lambda: _raise(Refused("no", fix="ask")),
    "timeout error": lambda: _raise(TimeoutError()),
    "awaitable value": _value,
    "awaitable failure": _fails,
    "awaitable past its timeout": _hangs,
}


def _plain(outcome):
    def check(req, res, gctx, lctx):
        return OUTCOMES[outcome]()
    return check


async def _outcome(call):
    try:
        value = call()  # call_sync_hook raises here, call_hook when awaited
        if asyncio.iscoroutine(value):
            value = await value
        return ("returned", value)
    except Exception as exc:  # noqa: BLE001 - any error is an outcome to compare
        return ("raised", type(exc), str(exc), getattr(exc, "code", None))


def _shape(events):
    return [{k: (type(v) if k in CLOCKS else v) for k, v in e.items()} for e in events], [list(e) for e in events]


@settings(max_examples=60, deadline=None)
@given(
    outcome=st.sampled_from(sorted(OUTCOMES)),
    phase=st.sampled_from(["before", "after"]),
    index=st.integers(0, 5),
    level=st.sampled_from(["global", "route", "local"]),
    timeout_ms=st.sampled_from([None, 5000]),
)
def test_a_plain_hook_in_the_callers_frame_emits_returns_and_raises_as_call_hook(outcome, phase, index, level, timeout_ms):
    if outcome == "awaitable past its timeout":
        timeout_ms = 1  # the one outcome that must time out (1 ms, not 5 s); the others must not
    lifecycle = Lifecycle(lambda req, res, gctx, lctx: None)
    h = HookSet.of(level, before=[hook(_plain(outcome), timeout_ms=timeout_ms)]).before[0]

    async def both():
        general, fast = LocalContext("r1"), LocalContext("r1")
        a = await _outcome(lambda: lifecycle.call_hook(h, (None, None, None, general), general, phase, index))
        b = await _outcome(lambda: lifecycle.call_sync_hook(h, (None, None, None, fast), fast, phase, index))
        return general, a, fast, b

    general, a, fast, b = asyncio.run(both())
    assert a == b
    assert _shape(general.events) == _shape(fast.events)
    assert (general.phase, general.hook_index) == (fast.phase, fast.hook_index) == (phase, index)


@pytest.mark.parametrize("is_async", [False, True])
async def test_the_handlers_events_have_emits_shape(is_async):
    """handler:start and handler:end, built whole by the lifecycle, are the dicts emit would make."""
    if is_async:
        async def handler(req, res, gctx, lctx):
            return {"ok": True}
    else:
        def handler(req, res, gctx, lctx):
            return {"ok": True}
    lctx = LocalContext("r1")
    lctx.version = "2"
    await Lifecycle(handler, name="orders.py").run(None, Response(), None, lctx)
    made = LocalContext("r1")
    made.emit("handler:start", handler="orders.py", version="2")
    made.emit("handler:end", handler="orders.py", duration_ms=0.5)
    assert _shape(lctx.events) == _shape(made.events)


async def test_a_plain_hook_with_retries_still_retries():
    """Retries are call_hook's: a plain hook that declares them does not take the cheap path."""
    tries = []

    def flaky(req, res, gctx, lctx):
        tries.append(1)
        if len(tries) < 3:
            raise ValueError("flaky")

    lifecycle = Lifecycle(lambda req, res, gctx, lctx: None, before=HookSet.of("route", before=[hook(flaky, retries=2, backoff_ms=0)]).before)
    lctx = LocalContext("r1")
    await lifecycle.run(None, Response(), None, lctx)
    assert len(tries) == 3
    assert [e["type"] for e in lctx.events] == [
        "hook:start", "hook:error", "hook:retry", "hook:start", "hook:error", "hook:retry", "hook:start", "hook:end",
        "handler:start", "handler:end",
    ]
