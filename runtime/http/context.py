"""The two contexts a handler receives: `gctx` (shared, read-only) and `lctx` (one request).

    async def handler(req, res, gctx, lctx):
        gctx.config["greeting"]          # from gati.toml [config]; writing raises TypeError
        gctx.modules.thumbs.resize({})    # the module manager, shared by every request
        gctx.secrets.get("db_password")   # only the names this handler declared in SECRETS
        gctx.metrics.counter("orders")    # OpenTelemetry, exported on /metrics
        await gctx.publish("orders", {})  # every subscriber, across requests (and instances with NATS)
        lctx.request_id, lctx.meta        # request id, trace id, path, route, version, flags
        lctx.set("user", u); lctx.on_cleanup(close_it); lctx.compensate(undo_it)
        await lctx.publish("step", {})    # listeners of this request only
        lctx.spawn(coro); lctx.snapshot() # tracked tasks; state + tasks + hook position
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable

from opentelemetry import propagate

from runtime.http.frozen import freeze, read_only
from runtime.http.hooks import as_hook
from runtime.http.snapshot import Snapshot, task_state

log = logging.getLogger("gati.http")

# A caller-supplied request id is echoed only when it cannot smuggle anything into logs or headers.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Where a request is; with lctx.hook_index (the hook running now within the phase) it is the
# "hook position" a snapshot records.
PHASES = ("received", "before", "handler", "after", "catch", "compensate", "responding", "cleanup", "done")


@dataclass(frozen=True)
class ServerInstance:
    """This server process, as gctx.instance: an id of its own, when and where it started."""

    id: str
    started_at: float
    pid: int
    host: str

    @classmethod
    def current(cls) -> "ServerInstance":
        return cls(uuid.uuid4().hex, time.time(), os.getpid(), socket.gethostname())


class GlobalContext:
    """What every request shares: config, this server instance, modules, secrets, metrics, pub/sub."""

    __slots__ = ("config", "instance", "modules", "secrets", "metrics", "pubsub")

    def __init__(
        self,
        config: Mapping,
        modules: Any,
        instance: ServerInstance | None = None,
        *,
        secrets: Any = None,
        metrics: Any = None,
        pubsub: Any = None,
    ):
        object.__setattr__(self, "config", freeze(config))
        object.__setattr__(self, "instance", instance or ServerInstance.current())
        object.__setattr__(self, "modules", modules)
        object.__setattr__(self, "secrets", secrets)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "pubsub", pubsub)

    async def publish(self, topic: str, data: Any = None) -> int:
        """Publish to every subscriber of topic (see runtime.http.pubsub); returns how many got it here."""
        return await self.pubsub.publish(topic, data)

    async def subscribe(self, topic: str):
        """A Subscription: `async for message in sub: message.data`; close it when done."""
        return await self.pubsub.subscribe(topic)

    def __setattr__(self, name, value):
        raise read_only("gctx")

    __delattr__ = __setattr__


class LocalContext:
    """One request: identity, state, local hooks and events, tasks, compensations, cleanup."""

    # Class defaults, set on the instance only when a request has them (nothing per request otherwise).
    tracestate = baggage = ""  # the caller's, passed on to module calls (runtime.http.ingress)
    tracer: Any = None  # the request's runtime.http.tracing.Tracer while its span is open, else None
    span: Any = None  # that span
    calls: list[dict[str, Any]] | None = None  # module calls, set only while snapshots record (runtime.http.recorder)
    watch: Any = None  # the lifecycle's deadline (runtime.http.deadlines.Watch): a debug gate holds it while paused
    phase = "received"
    hook_index = 0
    method = path = route = version = ""
    handler = ""  # the handler file, relative to handlers/ (structured logs)
    flags: tuple[str, ...] = ()  # from the X-Gati-Flags header, e.g. ("debug",)
    client_request_id = ""  # a caller's X-Request-Id that was not adopted (see [ingress] trust_request_id)
    auth: Any = None  # the runtime.http.auth.Principal of an authenticated request
    failed = False
    # What most requests never add to: empty and immutable here, made on the instance by the first add
    # (each of the five was a list or dict made per request, plus the three lists of _hooks).
    _cleanups: list[Callable[[], Any]] | tuple = ()
    _compensations: list[tuple[str, Callable[[], Any]]] | tuple = ()
    _hooks: Mapping[str, Any] = MappingProxyType({"before": (), "after": (), "catch": ()})
    _listeners: Mapping[str, list[Callable[[Any], Any]]] = MappingProxyType({})
    _tasks: list | tuple = ()  # (name, asyncio.Task) while live; runtime.http.snapshot.TaskState once restored

    def __init__(self, request_id: str | None = None, traceparent: str | None = None):
        # 128 random bits for the request id, as uuid4 has, 128 for a new trace id, 64 for the span id.
        try:
            random = _IDS.pop()
        except IndexError:
            random = _more_ids()
        self.request_id = request_id if request_id and REQUEST_ID_RE.fullmatch(request_id) else random[:32]
        parsed = parse_traceparent(traceparent) if traceparent else None
        self.trace_id, self.trace_flags = (parsed[0], parsed[2]) if parsed else (random[32:64], "01")
        # The caller's trace continues (W3C traceparent); a request recorded as a span adopts the
        # span's ids instead (runtime.http.tracing), so logs and module calls name that span.
        self.span_id = random[64:]  # this server's span; callers further down use it as parent
        self.started_at = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._state: dict[str, Any] = {}

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.trace_flags}"

    @property
    def meta(self) -> Mapping[str, Any]:
        return MappingProxyType(
            {
                "request_id": self.request_id,
                "trace_id": self.trace_id,
                "method": self.method,
                "path": self.path,
                "route": self.route,
                "version": self.version,
                "flags": self.flags,
                "phase": self.phase,
                "client_request_id": self.client_request_id,
            }
        )

    # state ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._state[key] = value

    def delete(self, key: str) -> None:
        self._state.pop(key, None)

    def clean(self) -> None:
        self._state.clear()

    def keys(self) -> list[str]:
        return list(self._state)

    def needs_cleanup(self) -> bool:
        """Whether cleanup() has anything to do: cleanup hooks, or tasks to cancel."""
        return bool(self._cleanups or self._tasks)

    # lifecycle events --------------------------------------------------------------------

    def emit(self, type: str, **fields: Any) -> None:
        """Record a lifecycle event (hook:start, handler:end, alert, ...); it goes into the request's execution record."""
        event = {"type": type, "request_id": self.request_id, "ms": (time.monotonic() - self.started_at) * 1000, **fields}
        self.events.append(event)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("lifecycle %s", event)

    def add_event(self, event: dict[str, Any]) -> None:
        """emit() of an event its caller built whole: {"type", "request_id", "ms", fields...}, in that
        order. The lifecycle's own events (six a request with two hooks) are made this way: a dict
        literal costs 0.35-0.48 µs where emit's keyword arguments and merge cost 0.48-0.8."""
        self.events.append(event)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("lifecycle %s", event)

    # hooks added while the request runs ---------------------------------------------------

    def before(self, fn: Callable) -> Callable:
        """A before hook for this request only; it runs after the global and route before hooks."""
        return self._add_hook("before", fn)

    def after(self, fn: Callable) -> Callable:
        """An after hook for this request only; it runs first among the after hooks."""
        return self._add_hook("after", fn)

    def catch(self, fn: Callable) -> Callable:
        """A catch hook for this request only: fn(err, req, res, gctx, lctx); it runs first on failure."""
        return self._add_hook("catch", fn)

    def _add_hook(self, kind: str, fn: Callable) -> Callable:
        if "_hooks" not in self.__dict__:
            self._hooks = {"before": [], "after": [], "catch": []}
        self._hooks[kind].append(as_hook(fn, "local", arity=5 if kind == "catch" else 4))
        return fn

    # compensations and cleanup -----------------------------------------------------------

    def compensate(self, fn: Callable[[], Any], name: str | None = None) -> Callable[[], Any]:
        """Undo a side effect if the request fails: run newest first, each logged, a failure raises an alert."""
        if "_compensations" not in self.__dict__:
            self._compensations = []
        self._compensations.append((name or getattr(fn, "__name__", repr(fn)), fn))
        return fn

    def on_cleanup(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Run fn (sync or async) when the request ends, whatever the outcome; usable as a decorator."""
        if "_cleanups" not in self.__dict__:
            self._cleanups = []
        self._cleanups.append(fn)
        return fn

    async def cleanup(self, timeout_s: float = 5.0) -> None:
        """Run the hooks newest first (each within timeout_s), then cancel tasks still running.

        A failing hook is logged and the others still run."""
        if not self._cleanups and not self._tasks:
            self.phase = "done"
            return
        self.phase = "cleanup"
        while self._cleanups:
            fn = self._cleanups.pop()
            name = getattr(fn, "__qualname__", None) or repr(fn)
            traced = self.tracer.child(f"cleanup {name}", {"gati.phase": "cleanup"}) if self.tracer is not None else nullcontext()
            try:
                with traced:
                    result = fn()
                    if inspect.isawaitable(result):
                        async with asyncio.timeout(timeout_s):
                            await result
            except Exception:
                log.exception("cleanup hook %r failed (request %s)", fn, self.request_id)
        cancelled = []
        for entry in self._tasks:
            task = entry[1] if isinstance(entry, tuple) else None
            if task is not None and not task.done():
                task.cancel()  # request-scoped work does not outlive its request
                cancelled.append(task)
                self.emit("task:cancelled", task=entry[0])
        if cancelled:
            await asyncio.wait(cancelled, timeout=timeout_s)
        self.phase = "done"

    # request-scoped publish/subscribe -----------------------------------------------------

    def subscribe(self, topic: str, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Listen to topic on this request only; returns a function that stops listening."""
        if "_listeners" not in self.__dict__:
            self._listeners = {}
        self._listeners.setdefault(topic, []).append(fn)
        return lambda: self._listeners.get(topic, []).remove(fn) if fn in self._listeners.get(topic, []) else None

    async def publish(self, topic: str, data: Any = None) -> int:
        """Deliver to this request's listeners of topic, in order; returns how many there were."""
        listeners = list(self._listeners.get(topic, ()))
        for fn in listeners:
            result = fn(data)
            if inspect.isawaitable(result):
                await result
        return len(listeners)

    # tasks and snapshots ---------------------------------------------------------------------

    def spawn(self, coro, name: str | None = None) -> asyncio.Task:
        """Start request-scoped work; a snapshot records its status, cleanup cancels it if still running."""
        name = name or f"task-{len(self._tasks) + 1}"
        task = asyncio.get_running_loop().create_task(coro, name=name)
        if "_tasks" not in self.__dict__:
            self._tasks = []
        self._tasks.append((name, task))
        return task

    def snapshot(self) -> Snapshot:
        """State, tasks with their status, the hook position and the handler version (runtime.http.snapshot)."""
        return Snapshot(
            request_id=self.request_id,
            trace_id=self.trace_id,
            route=self.route,
            version=self.version,
            phase=self.phase,
            hook_index=self.hook_index,
            state=copy.deepcopy(self._state),
            tasks=tuple(task_state(entry) for entry in self._tasks),
            events=tuple(copy.deepcopy(self.events)),
            taken_at=time.time(),
        )

    def restore(self, snap: Snapshot) -> None:
        """Put this context back exactly as the snapshot found it: `restored.snapshot() == snap`."""
        self.request_id, self.trace_id = snap.request_id, snap.trace_id
        self.route, self.version = snap.route, snap.version
        self.phase, self.hook_index = snap.phase, snap.hook_index
        self._state = copy.deepcopy(snap.state)
        self._tasks = [replace(t) for t in snap.tasks]
        self.events = [dict(e) for e in copy.deepcopy(snap.events)]


# Random bits for requests' ids, 40 bytes (80 hex digits) a request, read from the kernel's random
# source 128 requests at a time: one getrandom(2) per request cost 0.6 µs, a pop from here 0.05
# (docs/performance.md). The bits are os.urandom's all the same (what uuid4 uses); a forked child
# starts with none, so no two processes ever hand out the same ids.
_IDS: list[str] = []
_IDS_AT_ONCE = 128


def _more_ids() -> str:
    block = os.urandom(40 * _IDS_AT_ONCE).hex()
    _IDS.extend(block[i : i + 80] for i in range(80, len(block), 80))
    return block[:80]


os.register_at_fork(after_in_child=_IDS.clear)


# The request being served, for what has no lctx at hand: structured log lines (runtime/cli/logs.py).
current_request: ContextVar["LocalContext | None"] = ContextVar("gati_current_request", default=None)


# W3C Trace Context, version 00 and later: version-traceid-parentid-flags, lower-case hex. Only the
# untraced path reads the header with this: OpenTelemetry's propagator builds a Context, a span and
# a TraceState to say the same (about 30x the time, per request, when nothing exports); a property
# test holds the two to the same answer for every header (tests/test_tracing.py). A traced request's
# headers, and any tracestate and baggage, are read by the propagators themselves.
TRACEPARENT_RE = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$")
TRACEPARENT_MAX = 512  # longer headers are ignored, as the propagator ignores them


# The form nearly every caller sends (version 00, nothing around it): one match without the general
# pattern's padding, trailing fields and five groups (0.56 -> 0.43 µs).
TRACEPARENT_00_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parse_traceparent(header: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid W3C traceparent header, else None: as OpenTelemetry's propagator decides."""
    if header and len(header) == 55:
        m = TRACEPARENT_00_RE.fullmatch(header)
        if m is not None:
            trace_id, parent_id, flags = m.groups()
            return (trace_id, parent_id, flags) if trace_id != "0" * 32 and parent_id != "0" * 16 else None
    m = TRACEPARENT_RE.match(header) if header and len(header) <= TRACEPARENT_MAX else None
    if m:
        version, trace_id, parent_id, flags, rest = m.groups()
        # Version ff is forbidden, all-zero ids are invalid, and version 00 has no trailing fields.
        if version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16 and not (version == "00" and rest):
            return trace_id, parent_id, flags
    return None


def passed_on(headers: Mapping[str, str]) -> tuple[str, str]:
    """The caller's tracestate and baggage as the propagators (OTEL_PROPAGATORS) read and write them back:
    valid values only, the tracestate only with a valid traceparent."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, propagate.extract(headers))
    return carrier.get("tracestate", ""), carrier.get("baggage", "")

