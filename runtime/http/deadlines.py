"""Deadlines of requests in flight: one sweep cancels the tasks whose deadline has passed.

asyncio.timeout costs ~4.5 µs per request (an object, a timer in the loop's heap, its
cancellation); nearly every request ends long before its deadline, so that work is nearly
always thrown away. Here a request's deadline is a dict entry (~0.5 µs in and out), and one
timer per RESOLUTION_S, running only while requests are in flight, cancels the late ones.
A deadline fires at most RESOLUTION_S late; the client's 504 comes that much later at most.

    watch = deadlines.watch(timeout_s)   # the current task must end within timeout_s
    try:
        try:
            ... await the work ...
        finally:
            timed_out = deadlines.end(watch)
    except asyncio.CancelledError:
        if not timed_out:
            raise                        # someone else's cancel: the client went away, the server stops
        ... the timeout's answer ...

Cancellation is asyncio.timeout's: the task is cancelled, and end() uncancels it, so a cancel
from anyone else still propagates.
"""

from __future__ import annotations

import asyncio

RESOLUTION_S = 0.01


class Watch:
    __slots__ = ("task", "when", "cancelling", "fired")

    def __init__(self, task: asyncio.Task, when: float):
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.fired = False


class Deadlines:
    """The deadlines of one event loop's requests; made on that loop (runtime.http.lifespan)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._watched: set[Watch] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, timeout_s: float) -> Watch:
        """Cancel the current task if it has not called end() within timeout_s."""
        w = Watch(asyncio.current_task(self.loop), self.loop.time() + timeout_s)
        self._watched.add(w)
        if self._timer is None:
            self._timer = self.loop.call_at(self.loop.time() + RESOLUTION_S, self._sweep)
        return w

    def end(self, w: Watch) -> bool:
        """Stop watching; True when the deadline cancelled the task (that cancel is taken back: uncancel)."""
        self._watched.discard(w)
        return w.fired and w.task.uncancel() <= w.cancelling

    def _sweep(self) -> None:
        now = self.loop.time()
        for w in [w for w in self._watched if w.when <= now]:
            self._watched.discard(w)
            if not w.task.done():
                w.fired = True
                w.task.cancel()
        self._timer = self.loop.call_at(now + RESOLUTION_S, self._sweep) if self._watched else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
