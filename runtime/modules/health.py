"""Module health checks: a background task of the module manager, never on the request path.

Every running version whose manifest declares `[health]` (runtime/core/health.py) is checked
every `interval_ms`: its `method` is called with `payload` under `timeout_ms` (an answer is a
pass, any error a failure), or, without a method, its sandbox is asked whether it is healthy.
`unhealthy_after` failures in a row take the version out of service, `healthy_after` passes in
a row put it back (VersionIndex.mark): calls resolved through a constraint then go to the next
highest version in service (runtime/modules/versions.py), and /readyz lists it.

Only running versions are checked: a version starts on its first call, so one that no call has
reached yet is in service until its checks say otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from runtime.core.health import Health
from runtime.core.registry import Registration

log = logging.getLogger("gati.module")

MAX_SLEEP_S = 1.0  # a version started while the task sleeps is looked at within this


@dataclass
class _Record:
    due: float = 0.0
    failures: int = 0
    passes: int = 0
    in_service: bool = True


# (registration) -> None when it passes, raises (any exception) when it fails.
Check = Callable[[Registration], Awaitable[None]]
# (registration, in service?, why) -> None
Mark = Callable[[Registration, bool, str], None]


class HealthChecks:
    def __init__(self, running: Callable[[], Iterable[Registration]], check: Check, mark: Mark):
        self._running = running
        self._check = check
        self._mark = mark
        self._records: dict[tuple, _Record] = {}  # a running registration -> its run of results
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start checking (once; the manager calls it when a version declaring [health] starts)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="gati-module-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            checked = [r for r in self._running() if r.manifest.health is not None]
            self._records = {_key(r): self._records.get(_key(r)) or _Record() for r in checked}  # retired ones go
            now = time.monotonic()
            due = [r for r in checked if self._records[_key(r)].due <= now]
            if due:
                await asyncio.gather(*(self._one(r) for r in due))
            upcoming = [rec.due for rec in self._records.values()]
            await asyncio.sleep(min([MAX_SLEEP_S] + [max(0.0, d - time.monotonic()) for d in upcoming]))

    def _record(self, registration: Registration) -> _Record:
        return self._records.setdefault(_key(registration), _Record())

    async def _one(self, registration: Registration) -> None:
        health: Health = registration.manifest.health
        record = self._record(registration)
        record.due = time.monotonic() + health.interval_ms / 1000
        name, version = registration.name, registration.manifest.version
        try:
            async with asyncio.timeout(health.timeout_ms / 1000):
                await self._check(registration)
        except Exception as exc:  # any failure of the module is a failed check, never the task's end
            why = f"did not answer within {health.timeout_ms} ms" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            record.failures, record.passes = record.failures + 1, 0
            if record.in_service and record.failures >= health.unhealthy_after:
                record.in_service = False
                log.warning("module %s@%s is out of service: %d health checks failed in a row (%s)", name, version, record.failures, why)
                self._mark(registration, False, why)
            return
        record.failures, record.passes = 0, record.passes + 1
        if not record.in_service and record.passes >= health.healthy_after:
            record.in_service = True
            log.warning("module %s@%s is back in service: %d health checks passed", name, version, record.passes)
            self._mark(registration, True, "")


def _key(registration: Registration) -> tuple:
    # A version registered again (fixed) is a new registration: its checks start afresh.
    return registration.name, registration.manifest.version, registration.registered_at
