"""The lifecycle without HTTP: hook order, timeouts and retries, catch hooks, compensations, snapshots."""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.core.errors import GatiError
from runtime.http.context import LocalContext
from runtime.http.lifecycle import HookSet, HookTimeout, Lifecycle, hook
from runtime.http.response import Response
from runtime.http.snapshot import Snapshot, TaskState

# -- hook order for any mix of global, route and local hooks ----------------------------------------------------

KINDS = ("before", "after", "catch")
LEVELS = ("global", "route", "local")


def recorder(log, label, is_async, fail=False, arity=4):
    def note():
        log.append(label)
        if fail:
            raise RuntimeError(label)

    if is_async:
        async def hook_fn(*args):
            await asyncio.sleep(0)
            note()
    else:
        def hook_fn(*args):
            note()
    # hooks are checked for their arity: give this one the exact signature
    if arity == 5:
        return (lambda err, req, res, gctx, lctx: hook_fn()) if not is_async else _async5(hook_fn)
    return (lambda req, res, gctx, lctx: hook_fn()) if not is_async else _async4(hook_fn)


def _async4(fn):
    async def h(req, res, gctx, lctx):
        await fn()
    return h


def _async5(fn):
    async def h(err, req, res, gctx, lctx):
        await fn()
    return h


plans = st.fixed_dictionaries(
    {(kind, level): st.lists(st.booleans(), max_size=3) for kind in KINDS for level in LEVELS}  # one bool per hook: async?
)


def expected_order(plan, fail_at):
    names = {k: [f"{k}:{lvl}{i}" for lvl in LEVELS for i in range(len(plan[(k, lvl)]))] for k in KINDS}
    steps = names["before"] + ["handler"] + list(reversed(names["after"]))
    if fail_at is None:
        return steps
    return steps[: steps.index(fail_at) + 1] + list(reversed(names["catch"]))


@settings(max_examples=200, deadline=None)
@given(plans, st.data())
def test_hook_order_for_any_mix_of_levels(plan, data):
    names = [f"{k}:{lvl}{i}" for k in ("before", "after") for lvl in LEVELS for i in range(len(plan[(k, lvl)]))]
    fail_at = data.draw(st.sampled_from([None, "handler"] + names))
    log = []

    def make(kind, level):
        arity = 5 if kind == "catch" else 4
        return [recorder(log, f"{kind}:{level}{i}", is_async, fail=f"{kind}:{level}{i}" == fail_at, arity=arity)
                for i, is_async in enumerate(plan[(kind, level)])]

    async def handler(req, res, gctx, lctx):
        log.append("handler")
        if fail_at == "handler":
            raise RuntimeError("handler")
        return {"ok": True}

    lifecycle = Lifecycle.build(
        handler,
        HookSet.of("global", make("before", "global"), make("after", "global"), make("catch", "global")),
        HookSet.of("route", make("before", "route"), make("after", "route"), make("catch", "route")),
    )

    async def run():
        lctx = LocalContext()
        for kind in KINDS:
            for fn in make(kind, "local"):
                getattr(lctx, kind)(fn)
        res = Response()
        try:
            await lifecycle.run(None, res, None, lctx)
        except RuntimeError as err:
            await lifecycle.recover(err, None, Response(), None, lctx)
        return lctx

    lctx = asyncio.run(run())
    assert log == expected_order(plan, fail_at)
    starts = [e for e in lctx.events if e["type"] in ("hook:start", "handler:start")]
    assert len(starts) == len(log)
    assert all(e["request_id"] == lctx.request_id for e in lctx.events)


async def test_local_before_hooks_added_by_earlier_hooks_run_too():
    log = []

    def first(req, res, gctx, lctx):
        log.append("first")
        lctx.before(lambda *a: log.append("added by first"))

    lifecycle = Lifecycle.build(lambda *a: log.append("handler"), HookSet.of("global", [first]), HookSet())
    await lifecycle.run(None, Response(), None, LocalContext())
    assert log == ["first", "added by first", "handler"]


# -- timeouts, retries, catch hooks ----------------------------------------------------------------------------


async def test_hook_retries_with_backoff_then_succeeds():
    attempts = []

    async def flaky(req, res, gctx, lctx):
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) < 3:
            raise ConnectionError("try again")

    lifecycle = Lifecycle.build(_ok, HookSet.of("route", [hook(flaky, retries=2, backoff_ms=20)]), HookSet())
    lctx = LocalContext()
    await lifecycle.run(None, Response(), None, lctx)
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= 0.035  # 20 ms, then 40 ms
    types = [e["type"] for e in lctx.events if e["type"].startswith("hook")]
    assert types == ["hook:start", "hook:error", "hook:retry", "hook:start", "hook:error", "hook:retry", "hook:start", "hook:end"]


async def test_hook_timeout_and_no_retry_of_client_errors():
    async def slow(req, res, gctx, lctx):
        await asyncio.sleep(5)

    lifecycle = Lifecycle.build(_ok, HookSet.of("route", [hook(slow, timeout_ms=30, retries=1, backoff_ms=1)]), HookSet())
    lctx = LocalContext()
    with pytest.raises(HookTimeout) as caught:
        await lifecycle.run(None, Response(), None, lctx)
    assert caught.value.http_status == 504 and caught.value.details["timeout_ms"] == 30
    assert [e["type"] for e in lctx.events].count("hook:start") == 2  # retried once

    calls = []

    def refuse(req, res, gctx, lctx):
        calls.append(1)
        raise _Forbidden("not yours")

    lifecycle = Lifecycle.build(_ok, HookSet.of("route", [hook(refuse, retries=3)]), HookSet())
    with pytest.raises(_Forbidden):
        await lifecycle.run(None, Response(), None, LocalContext())
    assert calls == [1]  # a 4xx is a decision, not a fault: never retried


class _Forbidden(GatiError):
    code = "forbidden"
    http_status = 403


async def _ok(req, res, gctx, lctx):
    return {"ok": True}


async def test_failing_catch_hook_does_not_hide_the_error_and_catch_can_answer(caplog):
    async def handler(req, res, gctx, lctx):
        raise KeyError("original")

    def broken(err, req, res, gctx, lctx):
        raise ValueError("catch hook bug")

    def answer(err, req, res, gctx, lctx):
        res.status(409)
        return {"handled": type(err).__name__}

    lifecycle = Lifecycle.build(handler, HookSet.of("global", catch=[answer]), HookSet.of("route", catch=[broken]))
    lctx, res = LocalContext(), Response()
    with pytest.raises(KeyError) as caught:
        await lifecycle.run(None, Response(), None, lctx)
    assert await lifecycle.recover(caught.value, None, res, None, lctx)
    assert res.status_code == 409 and json.loads(res.content) == {"handled": "KeyError"}
    assert "catch hook" in caplog.text and "original error stands" in caplog.text

    # without an answering hook the error stands: recover says so
    lifecycle = Lifecycle.build(handler, HookSet(), HookSet.of("route", catch=[broken]))
    assert not await lifecycle.recover(caught.value, None, Response(), None, LocalContext())


# -- compensations -------------------------------------------------------------------------------------------------


async def test_compensations_run_newest_first_and_a_failure_raises_an_alert(caplog):
    done = []

    async def handler(req, res, gctx, lctx):
        lctx.compensate(lambda: done.append("delete user"), name="delete user")

        def broken():
            raise RuntimeError("mail server down")

        lctx.compensate(broken, name="unsend mail")

        @lctx.compensate
        async def refund():
            done.append("refund")

        raise RuntimeError("charge failed")

    lifecycle = Lifecycle.build(handler, HookSet(), HookSet())
    lctx = LocalContext()
    with pytest.raises(RuntimeError) as caught:
        await lifecycle.run(None, Response(), None, lctx)
    await lifecycle.recover(caught.value, None, Response(), None, lctx)
    assert done == ["refund", "delete user"]
    kinds = [(e["type"], e.get("name")) for e in lctx.events if e["type"].startswith(("compensation", "alert"))]
    assert kinds == [
        ("compensation:start", "refund"), ("compensation:end", "refund"),
        ("compensation:start", "unsend mail"), ("compensation:error", "unsend mail"), ("alert", "unsend mail"),
        ("compensation:start", "delete user"), ("compensation:end", "delete user"),
    ]
    assert "ALERT" in caplog.text and "unsend mail" in caplog.text


async def test_compensations_do_not_run_on_success():
    done = []

    async def handler(req, res, gctx, lctx):
        lctx.compensate(lambda: done.append("undo"))

    await Lifecycle.build(handler, HookSet(), HookSet()).run(None, Response(), None, LocalContext())
    assert done == []


# -- request-scoped publish/subscribe -------------------------------------------------------------------------------


async def test_local_events_never_cross_requests():
    async def one(n):
        lctx = LocalContext()
        seen = []
        lctx.subscribe("step", seen.append)
        await asyncio.sleep(0)
        for i in range(3):
            await lctx.publish("step", {"n": n, "i": i})
            await asyncio.sleep(0)
        return n, seen

    for n, seen in await asyncio.gather(*(one(n) for n in range(50))):
        assert seen == [{"n": n, "i": i} for i in range(3)]

    lctx = LocalContext()
    got = []
    stop = lctx.subscribe("x", got.append)
    assert await lctx.publish("x", 1) == 1
    stop()
    assert await lctx.publish("x", 2) == 0 and got == [1]


# -- snapshot and restore ---------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)
TASKS = st.lists(st.tuples(st.sampled_from(["pending", "done", "failed", "cancelled"]), JSON), max_size=5)


@settings(max_examples=100, deadline=None)
@given(
    state=st.dictionaries(st.text(min_size=1, max_size=8), JSON, max_size=6),
    tasks=TASKS,
    phase=st.sampled_from(["before", "handler", "after", "catch"]),
    index=st.integers(0, 20),
    version=st.text(max_size=4),
)
def test_snapshot_then_restore_reproduces_every_key_task_and_position(state, tasks, phase, index, version):
    async def scenario():
        lctx = LocalContext()
        lctx.route, lctx.version, lctx.phase, lctx.hook_index = "/orders/{id}", version, phase, index
        for k, v in state.items():
            lctx.set(k, v)
        never = asyncio.Event()

        async def work(status, result):
            if status == "pending":
                await never.wait()
            if status == "failed":
                raise ValueError(json.dumps(result))
            return result

        for i, (status, result) in enumerate(tasks):
            task = lctx.spawn(work(status, result), name=f"t{i}")
            if status == "cancelled":
                task.cancel()
        await asyncio.sleep(0.01)
        lctx.emit("hook:start", hook="h", phase=phase, index=index)

        snap = lctx.snapshot()
        assert [t.status for t in snap.tasks] == [s for s, _ in tasks]
        assert snap.state == state and (snap.phase, snap.hook_index, snap.version) == (phase, index, version)

        lctx.set("after-the-snapshot", 1)  # later changes do not leak into the snapshot
        for v in state.values():
            if isinstance(v, (list, dict)):
                v.clear()  # the snapshot holds copies, not these objects
        assert "after-the-snapshot" not in snap.state

        stored = Snapshot.from_json(snap.to_json())  # through storage and back
        fresh = LocalContext()
        fresh.restore(stored)
        again = fresh.snapshot()
        assert again == snap
        assert {k: fresh.get(k) for k in fresh.keys()} == snap.state
        await lctx.cleanup()  # cancels what is still pending
        assert all(t.done() for _, t in lctx._tasks)

    asyncio.run(scenario())


def test_snapshot_of_non_json_state_says_what_to_do():
    lctx = LocalContext()
    lctx.set("conn", object())
    snap = lctx.snapshot()
    with pytest.raises(TypeError, match="keep JSON values in lctx"):
        snap.to_json()
    assert snap.tasks == () and isinstance(TaskState("x", "done"), TaskState)
