"""Request deadlines (runtime.http.deadlines): the late task is cancelled and told so; anyone
else's cancel stays a cancel; nothing keeps waking the loop once no request is in flight."""

import asyncio

import pytest

from runtime.http.deadlines import Deadlines


async def run_watched(deadlines: Deadlines, timeout_s: float, work) -> str:
    watch = deadlines.watch(timeout_s)
    try:
        try:
            await work()
        finally:
            timed_out = deadlines.end(watch)
    except asyncio.CancelledError:
        if not timed_out:
            raise
        return "timed out"
    return "done"


async def test_a_task_past_its_deadline_is_cancelled_and_told_it_timed_out():
    deadlines = Deadlines(asyncio.get_running_loop())
    task = asyncio.create_task(run_watched(deadlines, 0.02, lambda: asyncio.sleep(30)))
    assert await asyncio.wait_for(task, 10) == "timed out"
    assert task.cancelling() == 0  # the deadline's cancel was taken back
    deadlines.close()


async def test_work_within_its_deadline_finishes_and_the_sweep_stops():
    deadlines = Deadlines(asyncio.get_running_loop())
    assert await run_watched(deadlines, 30, lambda: asyncio.sleep(0)) == "done"
    for _ in range(100):  # bounded: the next sweep finds nothing watched and schedules no other
        if deadlines._timer is None:
            break
        await asyncio.sleep(0.01)
    assert deadlines._timer is None


async def test_someone_elses_cancel_is_still_a_cancel():
    deadlines = Deadlines(asyncio.get_running_loop())
    started = asyncio.Event()

    async def work():
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(run_watched(deadlines, 30, work))
    await started.wait()
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()


async def test_many_requests_each_get_their_own_deadline():
    deadlines = Deadlines(asyncio.get_running_loop())
    slow = [asyncio.create_task(run_watched(deadlines, 0.02, lambda: asyncio.sleep(30))) for _ in range(5)]
    quick = [asyncio.create_task(run_watched(deadlines, 30, lambda: asyncio.sleep(0.05))) for _ in range(5)]
    results = await asyncio.wait_for(asyncio.gather(*slow, *quick), 10)
    assert results == ["timed out"] * 5 + ["done"] * 5
    deadlines.close()
