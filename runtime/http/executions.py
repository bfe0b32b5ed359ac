"""One execution record per request, appended as a JSON line to <state dir>/executions.jsonl.

    {"time": 1767.., "request_id": "..", "trace_id": "..", "method": "POST", "path": "/users",
     "route": "/users", "handler": "users/index.py", "version": "2", "handler_sha256": "..",
     "fingerprint": "..", "served_by": "3",   (served_by: only when transformers took it up)
     "status": 201, "outcome": "ok", "duration_ms": 1.7, "principal": "ci-bot",
     "events": [{"type": "hook:start", ...}, ...]}

It answers "which code, at which version, ran for this request, and what happened in it".
The audit log (runtime.core.audit_log: each capability decision of a module) is a separate,
hash-chained file, and the audit reports (runtime.reports, `gati audit`) read that one, not
this. With [audit] snapshots = true a replayable snapshot of each request goes to the snapshot
store (runtime.http.recorder, runtime.http.snapshot_store); the record names it by request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterator

import msgspec
from aiohttp import web

from runtime.http.context import LocalContext
from runtime.http.routing import Route

FILE = "executions.jsonl"
FLUSH_S = 0.05  # records reach the file this long after their request at most
FLUSH_RECORDS = 512  # or once this many wait
_encoder = msgspec.json.Encoder(enc_hook=repr)  # whatever is not JSON (a handler's odd event field) is kept as its repr
log = logging.getLogger("gati.http")


class ExecutionRecord(msgspec.Struct, omit_defaults=True):
    """One record, encoded in the order of the shape above. A struct rather than a dict: msgspec
    writes its keys from the class instead of encoding fifteen of them per request."""

    time: float
    request_id: str
    trace_id: str
    method: str
    path: str
    route: str
    handler: str
    version: str
    handler_sha256: str
    fingerprint: str  # of the handler's manifest (runtime.http.handler_manifest)
    status: int
    outcome: str
    duration_ms: float
    principal: str | None
    events: list[dict[str, Any]]
    served_by: Any = msgspec.UNSET  # only when transformers took the request up


def execution_record(request: web.Request, route: Route, lctx: LocalContext, status: int, seconds: float, *, fingerprint: str = "") -> ExecutionRecord:
    """The record of one request that reached a handler (the shape above)."""
    auth = lctx.auth
    return ExecutionRecord(
        time.time(),
        lctx.request_id,
        lctx.trace_id,
        request.method,
        request.path,
        route.pattern,
        route.rel,
        route.version,
        route.sha256,
        fingerprint,
        status,
        "error" if lctx.failed else "ok",
        round(seconds * 1000, 3),
        auth.subject if auth else None,
        lctx.events,
        msgspec.UNSET if route.pinned is None else route.pinned.runs,
    )


class ExecutionRecords:
    """The file of execution records, appended to by every request of one app."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND and whole lines per write: lines from concurrent writers never interleave.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._pending: list[bytes] = []  # encoded records, one line each without its newline
        self._timer: asyncio.TimerHandle | None = None

    def write(self, record: ExecutionRecord | dict[str, Any]) -> None:
        """Encode the record now; it is written within FLUSH_S (or once FLUSH_RECORDS wait).

        Requests share one write(2) per FLUSH_S, off their own path: one write per loop turn cost
        5-10 µs per request under load. The record is encoded at once and only its bytes wait: records
        kept as objects for FLUSH_S (each with its events list) made the garbage collector run: 724
        young and 3 full collections in 10 s served, against 4 young ones (docs/performance.md).
        What a crash can lose is the last FLUSH_S of records; a stop (close) writes them all. Outside
        an event loop the record is written at once."""
        try:
            line = _encoder.encode(record)
        except Exception:  # a handler's event field msgspec cannot walk (a cycle): that record only is lost
            request_id = record.get("request_id") if isinstance(record, dict) else record.request_id
            log.exception("execution record of request %s could not be encoded", request_id)
            return
        pending = self._pending
        pending.append(line)
        if len(pending) >= FLUSH_RECORDS:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Write what is queued now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending and self._fd >= 0:
            lines, self._pending = self._pending, []
            lines.append(b"")  # the last line's newline
            os.write(self._fd, b"\n".join(lines))

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
