"""How a server logs: `--log-format text|json` for serve (and each of its workers) and dev.

json: one object per line with time, level, logger and message, and for a line logged while a
request is served its request_id, trace_id, span_id, route, handler (the file under handlers/)
and version; the access log's lines carry method, path, status, duration_ms, remote, the request
id, the trace id and the span id. text: a line logged while a request is served ends with
`trace_id=... span_id=...`; the text access log carries the request id and the traceparent. So a
line in either format finds its request's execution record and its trace.

span_id is the span current when the line was logged (a hook's, the handler's, a module call's)
when the request is traced (docs/observability.md), else the request's own span id, the one its
traceparent response header names.

Access lines are formatted here, not by aiohttp's generic formatter and the logging module, and
written to stderr in batches (every FLUSH_S, or at BATCH_BYTES): through both, a line cost as much
CPU as a whole bare aiohttp request (docs/performance.md). Any other log line first writes the
access lines before it, so the order on stderr is the order things happened; a process killed
with SIGKILL loses at most FLUSH_S of access lines.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import threading
import time
from typing import Any

import msgspec
from aiohttp.abc import AbstractAccessLogger
from opentelemetry.trace import get_current_span

from runtime.core.errors import GatiError
from runtime.http.context import current_request

FORMATS = ("text", "json")
FLUSH_S = 0.05
BATCH_BYTES = 64 << 10


def trace_ids(lctx) -> tuple[str, str]:
    """(trace id, span id) of a log line logged while lctx's request is served."""
    if lctx.span is not None:
        current = get_current_span().get_span_context()
        if current.is_valid and current.trace_id == lctx.span.get_span_context().trace_id:
            return lctx.trace_id, format(current.span_id, "016x")
    return lctx.trace_id, lctx.span_id


class TextFormatter(logging.Formatter):
    """The plain format; a line logged while a request is served names its trace and span."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)  # the line itself: a traceback, if any, comes after the ids
        lctx = current_request.get()
        if lctx is None:
            return line
        trace_id, span_id = trace_ids(lctx)
        return f"{line} trace_id={trace_id} span_id={span_id}"


def _json_entry(created: float, msecs: int, level: str, logger: str, message: str, worker: int | None) -> dict[str, Any]:
    """The fields every JSON line starts with, a log record's and an access line's alike."""
    entry: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{msecs:03d}Z",
        "level": level,
        "logger": logger,
        "message": message,
    }
    if worker is not None:
        entry["worker"] = worker
    return entry


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: int | None = None):
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry = _json_entry(record.created, int(record.msecs), record.levelname.lower(), record.name, record.getMessage(), self.worker)
        lctx = current_request.get()
        if lctx is not None:
            trace_id, span_id = trace_ids(lctx)
            entry.update(request_id=lctx.request_id, trace_id=trace_id, span_id=span_id, route=lctx.route, handler=lctx.handler, version=lctx.version)
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _AccessLines:
    """Access lines waiting for one write to stderr. Added on the event loop; flushed there, at exit,
    or from any thread that logs another line (hence the lock)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.scheduled = False
        self.lock = threading.Lock()

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            self.size += len(line)
        if self.size >= BATCH_BYTES:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_S, self._due)

    def _due(self) -> None:
        self.scheduled = False
        self.flush()

    def flush(self) -> None:
        with self.lock:
            if self.lines:
                text = "".join(self.lines)
                self.lines.clear()
                self.size = 0
                sys.stderr.write(text)
                sys.stderr.flush()


_ACCESS = _AccessLines()
_encode = msgspec.json.Encoder().encode
atexit.register(_ACCESS.flush)
_worker_tag: int | None = None  # set by setup_logging: a worker names itself on each line


class _Handler(logging.StreamHandler):
    """stderr; the access lines logged before a record are written before it."""

    def emit(self, record: logging.LogRecord) -> None:
        _ACCESS.flush()
        super().emit(record)


class _Clock:
    """The local time of logging's asctime ("2026-12-01 10:25:13,075"), formatted once per second."""

    def __init__(self) -> None:
        self.second, self.text = -1, ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second, self.text = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        return f"{self.text},{int((now - second) * 1000):03d}"


class TextAccessLogger(AbstractAccessLogger):
    """`<time> INFO aiohttp.access: <remote> "<request line>" <status> <bytes> <seconds> request=<id> traceparent=<...>`"""

    clock = _Clock()

    def log(self, request, response, duration: float) -> None:
        who = f" [worker {_worker_tag}]" if _worker_tag is not None else ""
        headers = response.headers
        _ACCESS.add(
            f'{self.clock.now()} INFO{who} aiohttp.access: {request.remote or "-"} "{request.method} {request.path_qs} '
            f'HTTP/{request.version.major}.{request.version.minor}" {response.status} {response.body_length} {duration:.6f} '
            f'request={headers.get("X-Request-Id", "-")} traceparent={headers.get("traceparent", "-")}\n'
        )


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON line per request; the ids come from the response (the request's context is gone by now)."""

    def log(self, request, response, duration: float) -> None:
        traceparent = response.headers.get("traceparent", "").split("-")
        now = time.time()
        entry = _json_entry(now, int((now - int(now)) * 1000), "info", "aiohttp.access", f"{request.method} {request.path} {response.status}", _worker_tag)
        entry.update(
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round(duration * 1000, 3),
            remote=request.remote,
            request_id=response.headers.get("X-Request-Id", ""),
            trace_id=traceparent[1] if len(traceparent) >= 4 else "",
            span_id=traceparent[2] if len(traceparent) >= 4 else "",
        )
        _ACCESS.add(_encode(entry).decode() + "\n")


def check_format(log_format: str) -> str:
    if log_format not in FORMATS:
        raise GatiError(f"{log_format!r} is not a log format", fix="use --log-format text or --log-format json")
    return log_format


def setup_logging(log_format: str, *, worker: int | None = None) -> None:
    """The root logger to stderr at INFO, in the format asked for; a worker names itself on each line."""
    global _worker_tag
    check_format(log_format)
    _worker_tag = worker
    handler = _Handler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        who = f" [worker {worker}]" if worker is not None else ""
        handler.setFormatter(TextFormatter(f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def access_log_options(on: bool = True, log_format: str = "text") -> dict[str, Any]:
    """What web.run_app / web.AppRunner take for the access log: a line per request in the format, or none."""
    if not on:
        return {"access_log": None}
    return {"access_log_class": JsonAccessLogger if log_format == "json" else TextAccessLogger}
