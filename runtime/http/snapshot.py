"""Snapshot and restore of one request's context (lctx), for debugging and replay.

A snapshot holds the state (deep-copied: later changes do not leak into it), each task
the request spawned with its status, the hook position (phase + index of the hook
running), the handler version and the lifecycle events so far. Restoring it into a
context gives back exactly that: `restored.snapshot() == snapshot` (apart from taken_at);
LocalContext.snapshot() and .restore() do both.

A running coroutine cannot be copied, so a restored context holds its tasks as records
(TaskState) with the status, result or error they had: enough to inspect and compare,
not to resume.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import msgspec

STATUSES = ("pending", "done", "failed", "cancelled")


@dataclass(frozen=True)
class TaskState:
    name: str
    status: str  # pending | done | failed | cancelled
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    request_id: str
    trace_id: str
    route: str
    version: str
    phase: str
    hook_index: int
    state: dict[str, Any]
    tasks: tuple[TaskState, ...]
    events: tuple[dict[str, Any], ...] = ()
    taken_at: float = field(default=0.0, compare=False)

    def to_json(self) -> bytes:
        """The snapshot as JSON; state values and task results must be JSON values to get here."""
        try:
            return msgspec.json.encode(self)
        except TypeError as exc:
            raise TypeError(f"snapshot of request {self.request_id} is not JSON-storable: {exc}; keep JSON values in lctx") from None

    @classmethod
    def from_json(cls, data: bytes | str) -> "Snapshot":
        return msgspec.json.decode(data, type=cls)


def task_state(entry: Any) -> TaskState:
    if isinstance(entry, TaskState):
        return entry
    name, task = entry
    if not task.done():
        return TaskState(name, "pending")
    if task.cancelled():
        return TaskState(name, "cancelled")
    exc = task.exception()
    if exc is not None:
        return TaskState(name, "failed", error=f"{type(exc).__name__}: {exc}")
    return TaskState(name, "done", result=copy.deepcopy(task.result()))

