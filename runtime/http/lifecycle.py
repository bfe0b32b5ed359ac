"""The lifecycle of one request around its handler: validation, hooks, catch hooks, compensations.

    request validation -> before hooks (global -> route -> local) -> handler
        -> after hooks (local -> route -> global) -> response validation
    on failure: catch hooks (local -> route -> global) -> compensations (newest first)
    always (runtime.http.app): cleanup hooks

Hooks take the handler's arguments, `(req, res, gctx, lctx)`; catch hooks get the error
first, `(err, req, res, gctx, lctx)`. They are plain or async functions, or `hook(fn, ...)`
for a timeout and retries:

    BEFORE = [load_user, hook(warm_cache, timeout_ms=200, retries=2, backoff_ms=20)]

Every hook and the handler emit lifecycle events into lctx.events (hook:start, hook:end,
hook:error, hook:retry, handler:start, ..., compensation:*, alert), each with the request id.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import msgspec

from runtime.core.errors import GatiError
from runtime.http.context import LocalContext
from runtime.http.gtype import GType, ValidationFailed
from runtime.http.hooks import Hook, HookSet, as_hook, hook

__all__ = ["Hook", "HookSet", "HookTimeout", "Lifecycle", "ResponseInvalid", "as_hook", "hook"]

log = logging.getLogger("gati.lifecycle")

DEFAULT_HOOK_TIMEOUT_MS = 5000


class HookTimeout(GatiError):
    code = "hook_timeout"
    http_status = 504


class ResponseInvalid(GatiError):
    """The handler answered with a body its declared RESPONSE type does not allow: the server's bug."""

    code = "invalid_response"
    http_status = 500


@dataclass(frozen=True)
class Lifecycle:
    """What one route runs, fixed at start-up: its handler, hooks (global + route) and types."""

    handler: Callable[..., Any]
    before: tuple[Hook, ...] = ()  # global, then route, in registration order
    after: tuple[Hook, ...] = ()  # global, then route; they run in reverse
    catch: tuple[Hook, ...] = ()  # global, then route; they run in reverse
    request_type: GType | None = None
    response_type: GType | None = None
    hook_timeout_ms: int = DEFAULT_HOOK_TIMEOUT_MS
    name: str = "handler"
    # route pattern -> debug gate (runtime.http.playground.gates), shared by every route; None without the
    # playground. A gate's reach(when, hook, lctx) returns at once unless it pauses there.
    gates: Mapping[str, Any] | None = None
    handler_is_async: bool = field(init=False)  # asked once: inspect's answer costs ~1 µs per request

    def __post_init__(self) -> None:
        object.__setattr__(self, "handler_is_async", inspect.iscoroutinefunction(self.handler))

    @classmethod
    def build(cls, handler: Callable, global_hooks: HookSet, route_hooks: HookSet, **kw: Any) -> "Lifecycle":
        return cls(
            handler,
            global_hooks.before + route_hooks.before,
            global_hooks.after + route_hooks.after,
            global_hooks.catch + route_hooks.catch,
            **kw,
        )

    async def run(self, req: Any, res: Any, gctx: Any, lctx: LocalContext) -> Any:
        """Validation, before hooks, handler, after hooks; returns what the handler returned."""
        if self.request_type is not None:
            # Here rather than in a method of its own: a coroutine less per request. Only a failure is an
            # event: a passing check takes about a microsecond, less than recording it would.
            try:
                req.data = self.request_type.check(await req.json())
            except ValidationFailed as err:
                lctx.emit("validation:error", what="request", errors=len(err.issues))
                raise
        args = (req, res, gctx, lctx)
        gate = self.gates.get(lctx.route) if self.gates is not None else None  # the one lookup a route without a gate costs
        lctx.phase = "before"
        local = lctx._hooks["before"]
        if self.before or local:
            i = 0
            while i < len(self.before) + len(local):  # local hooks may be added by the hooks before them
                h = self.before[i] if i < len(self.before) else local[i - len(self.before)]
                if gate is not None:
                    await gate.reach("before", h.name, lctx)
                pending = self._start_hook(h, args, lctx, "before", i)
                if pending is not None:
                    await pending
                if gate is not None:
                    await gate.reach("after", h.name, lctx)
                i += 1
                local = lctx._hooks["before"]  # a hook's first local hook makes lctx's own lists

        lctx.phase, lctx.hook_index = "handler", 0
        if gate is not None:
            await gate.reach("before", "handler", lctx)
        lctx.add_event({"type": "handler:start", "request_id": lctx.request_id, "ms": (time.monotonic() - lctx.started_at) * 1000,
                        "handler": self.name, "version": lctx.version})
        start = time.perf_counter()
        try:
            if lctx.tracer is not None:
                with lctx.tracer.child(f"handler {self.name}", {"gati.phase": "handler"}):
                    value = await call_handler(self.handler, args)
            elif self.handler_is_async:
                value = await self.handler(*args)
            else:
                value = await call_handler(self.handler, args)
        except Exception as err:
            lctx.emit("handler:error", handler=self.name, error=_describe(err), duration_ms=_ms(start))
            raise
        lctx.add_event({"type": "handler:end", "request_id": lctx.request_id, "ms": (time.monotonic() - lctx.started_at) * 1000,
                        "handler": self.name, "duration_ms": (time.perf_counter() - start) * 1000})
        streamed = hasattr(value, "prepare")  # an aiohttp StreamResponse the handler built itself
        if value is not None and not streamed and not res.has_body:
            res.json(value)
        if gate is not None:
            await gate.reach("after", "handler", lctx)

        lctx.phase = "after"
        local = lctx._hooks["after"]
        if self.after or local:
            for i, h in enumerate(reversed(self.after + tuple(local))):
                if gate is not None:
                    await gate.reach("before", h.name, lctx)
                pending = self._start_hook(h, args, lctx, "after", i)
                if pending is not None:
                    await pending
                if gate is not None:
                    await gate.reach("after", h.name, lctx)
        if self.response_type is not None and not streamed:
            self._validate_response(res, lctx)
        return value

    async def recover(self, err: BaseException, req: Any, res: Any, gctx: Any, lctx: LocalContext) -> bool:
        """Catch hooks, then compensations. True when a catch hook wrote the response (in res).

        A catch hook may set res (status, body) or return a value (the body); a failing catch
        hook is logged and the original error stands."""
        lctx.failed = True
        lctx.phase = "catch"
        for i, h in enumerate(reversed(self.catch + tuple(lctx._hooks["catch"]))):
            try:
                result = await self.call_hook(h, (err, req, res, gctx, lctx), lctx, "catch", i)
            except Exception:
                log.exception("catch hook %s failed (request %s); the original error stands", h.name, lctx.request_id)
                continue
            if result is not None and not res.has_body:
                res.json(result)
        await self.compensate(lctx)
        return res.has_body

    async def compensate(self, lctx: LocalContext) -> None:
        """Run the request's compensating actions, newest first; a failure raises an alert and the rest still run."""
        lctx.phase = "compensate"
        timeout_s = self.hook_timeout_ms / 1000
        while lctx._compensations:
            name, fn = lctx._compensations.pop()
            lctx.hook_index = len(lctx._compensations)
            lctx.emit("compensation:start", name=name)
            start = time.perf_counter()
            traced = lctx.tracer.child(f"compensation {name}", {"gati.phase": "compensate", "gati.compensation": name}) if lctx.tracer is not None else nullcontext()
            try:
                with traced:  # a span that fails with it (ERROR, the exception recorded) when traced
                    result = fn()
                    if inspect.isawaitable(result):
                        async with asyncio.timeout(timeout_s):
                            await result
            except Exception as exc:
                error = "timed out" if isinstance(exc, TimeoutError) else _describe(exc)
                lctx.emit("compensation:error", name=name, error=error, duration_ms=_ms(start))
                lctx.emit("alert", reason="compensation failed", name=name, error=error)
                log.error(
                    "ALERT: compensation %s of request %s failed (%s): what it should undo is still in place; undo it by hand",
                    name, lctx.request_id, error,
                )
                continue
            lctx.emit("compensation:end", name=name, duration_ms=_ms(start))
            log.info("compensation %s of request %s ran", name, lctx.request_id)

    async def call_hook(self, h: Hook, args: tuple, lctx: LocalContext, phase: str, index: int, *, _in_span: bool = False) -> Any:
        """One hook under its timeout, retried with backoff as it declares; emits its events (and a span, when traced)."""
        if lctx.tracer is not None and not _in_span:
            attributes = {"gati.phase": phase, "gati.hook": h.name, "gati.hook.level": h.level}
            with lctx.tracer.child(f"{phase} hook {h.name}", attributes):
                return await self.call_hook(h, args, lctx, phase, index, _in_span=True)
        lctx.phase, lctx.hook_index = phase, index
        timeout_ms = h.timeout_ms or self.hook_timeout_ms
        attempt = 0
        while True:
            attempt += 1
            lctx.emit("hook:start", hook=h.name, level=h.level, phase=phase, index=index, attempt=attempt)
            start = time.perf_counter()
            try:
                if h.is_async:
                    async with asyncio.timeout(timeout_ms / 1000):
                        result = await h.fn(*args)
                else:
                    # Sync hooks run on the event loop (they are meant to be quick checks): no thread per hook.
                    result = h.fn(*args)
                    if result is not None and inspect.isawaitable(result):
                        async with asyncio.timeout(timeout_ms / 1000):
                            result = await result
            except Exception as exc:
                err = self._hook_failed(h, exc, lctx, phase, attempt, start, timeout_ms)
                decided = isinstance(err, GatiError) and err.http_status < 500
                if attempt > h.retries or decided:
                    if err is exc:
                        raise
                    raise err from None
                delay_ms = h.backoff_ms * 2 ** (attempt - 1)
                lctx.emit("hook:retry", hook=h.name, level=h.level, phase=phase, attempt=attempt + 1, delay_ms=delay_ms)
                await asyncio.sleep(delay_ms / 1000)
                continue
            lctx.emit("hook:end", hook=h.name, level=h.level, phase=phase, attempt=attempt, duration_ms=_ms(start))
            return result

    def _start_hook(self, h: Hook, args: tuple, lctx: LocalContext, phase: str, index: int) -> Any:
        """Run hook h in its phase: None when it ran whole in this frame (a plain hook without retries,
        untraced), else the awaitable that runs or finishes it. A plain function, not a coroutine: the
        common hook costs no frame of its own."""
        if h.is_async or h.retries or lctx.tracer is not None:
            return self.call_hook(h, args, lctx, phase, index)
        result = self.call_sync_hook(h, args, lctx, phase, index)
        return result if result is not None and inspect.isawaitable(result) else None

    def call_sync_hook(self, h: Hook, args: tuple, lctx: LocalContext, phase: str, index: int) -> Any:
        """call_hook for a plain function without retries, untraced, in the caller's frame: the same
        events and errors without a coroutine and its loop per hook (docs/performance.md). Returns
        the hook's result; when the hook returned an awaitable, a coroutine to await instead, which
        awaits it under the hook's timeout, as call_hook would."""
        lctx.phase, lctx.hook_index = phase, index
        # The events as lctx.emit makes them (tests/test_lifecycle_fast.py holds them equal).
        lctx.add_event({"type": "hook:start", "request_id": lctx.request_id, "ms": (time.monotonic() - lctx.started_at) * 1000,
                        "hook": h.name, "level": h.level, "phase": phase, "index": index, "attempt": 1})
        start = time.perf_counter()
        try:
            result = h.fn(*args)
        except Exception as exc:
            err = self._hook_failed(h, exc, lctx, phase, 1, start, h.timeout_ms or self.hook_timeout_ms)
            if err is exc:
                raise
            raise err from None
        if result is not None and inspect.isawaitable(result):
            return self._settle_hook(h, result, lctx, phase, start)
        lctx.add_event({"type": "hook:end", "request_id": lctx.request_id, "ms": (time.monotonic() - lctx.started_at) * 1000,
                        "hook": h.name, "level": h.level, "phase": phase, "attempt": 1, "duration_ms": (time.perf_counter() - start) * 1000})
        return result

    async def _settle_hook(self, h: Hook, awaitable: Any, lctx: LocalContext, phase: str, start: float) -> Any:
        """The rest of call_sync_hook when the hook returned an awaitable: awaited under its timeout."""
        timeout_ms = h.timeout_ms or self.hook_timeout_ms
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                result = await awaitable
        except Exception as exc:
            err = self._hook_failed(h, exc, lctx, phase, 1, start, timeout_ms)
            if err is exc:
                raise
            raise err from None
        lctx.emit("hook:end", hook=h.name, level=h.level, phase=phase, attempt=1, duration_ms=_ms(start))
        return result

    def _hook_failed(self, h: Hook, exc: Exception, lctx: LocalContext, phase: str, attempt: int, start: float, timeout_ms: int) -> Exception:
        """Emit hook:error for exc; the error to raise (a TimeoutError becomes HookTimeout)."""
        err = exc
        if isinstance(exc, TimeoutError):
            err = HookTimeout(
                f"{phase} hook {h.name} did not finish within {timeout_ms} ms",
                fix="make it faster, or give it more time: hook(fn, timeout_ms=...) or [server] hook_timeout_ms",
                hook=h.name, timeout_ms=timeout_ms,
            )
        lctx.emit("hook:error", hook=h.name, level=h.level, phase=phase, attempt=attempt, error=_describe(err), duration_ms=_ms(start))
        return err

    def _validate_response(self, res: Any, lctx: LocalContext) -> None:
        # Only successful JSON answers carry the declared type; error bodies have their own shape.
        if not 200 <= res.status_code < 300 or res.content is None or not (res.content_type or "").startswith("application/json"):
            return
        issues = self.response_type.issues(msgspec.json.decode(res.content))
        if issues:
            lctx.emit("validation:error", what="response", errors=len(issues))
            first = issues[0]
            log.error("response of %s does not match its type (request %s): %s", self.name, lctx.request_id, [i.to_dict() for i in issues])
            raise ResponseInvalid(
                f"the handler's response does not match its declared type: {first.path}: expected {first.expected}",
                fix="fix the handler or its RESPONSE type; the server log lists every mismatch",
            )


async def call_handler(fn: Callable[..., Any], args: tuple) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    # A plain def may block; it runs in a worker thread (with this request's contextvars). On timeout the
    # client gets its 504 at once, but Python cannot stop the thread: it runs on until it returns.
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
