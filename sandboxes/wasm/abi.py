"""The `gati` imports of docs/wasm-abi.md: bytes in and out, and host calls through the Host.

Host functions run on the thread that runs the wasm call: the event loop's own thread for an
inline call, a worker thread otherwise (sandbox.py decides). The call's state (input, error,
the Host and the CallContext) is thread-local, which is exact because one call
runs wholly on one thread. Operations that live on the event loop (HTTP egress, calling another
module, a kv store across the network) are submitted to it and awaited here; an inline call
never needs them (see _on_loop). A local kv store's (SQLite) never suspend and run in place (_kv).

The hottest imports (input_len, input_read, output, result_len, result_read) are C functions of
the call path (sandboxes/wasm/_callpath.c): a call using only them never enters Python. A host
call here hands its result to the C side (capi.set_result), where result_len/result_read find it. The others are C
callbacks over raw i32 values (capi.host_function); they read and write the module's memory in
place through capi.read and capi.write (bounds-checked, in C), valid only while the call runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

import wasmtime

from runtime.core.call import CallContext
from runtime.core.errors import CapabilityDenied, GatiError, StateUnavailable
from runtime.core.host import Host
from runtime.core.kv import Entry, KvConflict, run_now
from sandboxes.wasm import capi
from sandboxes.wasm.engine import TICK_S

OK, DENIED, NOT_FOUND, ERROR, CONFLICT = 0, 1, 2, 3, 4
U64 = struct.Struct("<Q")  # revisions cross the boundary as 8 little-endian bytes

_current = threading.local()


@dataclass(slots=True)
class CallState:
    host: Host
    ctx: CallContext
    loop: asyncio.AbstractEventLoop
    input: bytes  # read by the C imports; the output they take is returned by the C call (sandbox.py)
    error: str | None = None
    # Shared state did not answer a host call: if the module then fails, that is why (a 503, not a 502).
    unavailable: StateUnavailable | None = None
    exception: BaseException | None = None  # raised by a host function; the call raises it
    # An inline call runs on the event loop under a short epoch budget and may be moved to a
    # worker (run again, fresh) while it has done nothing outside itself. Its first host call
    # that acts (anything audited, a log line) commits it: the budget becomes its real deadline.
    inline: bool = False
    committed: bool = False
    deadline: float = 0.0  # time.monotonic() at which the call's own deadline falls

    def commit(self) -> None:
        # Called only from within the call, on its thread: the deadline is that running store's.
        if self.inline and not self.committed:
            self.committed = True
            capi.set_epoch_deadline(math.ceil(max(0.0, self.deadline - time.monotonic()) / TICK_S) + 1)


def begin(state: CallState) -> None:
    _current.state = state


def end() -> None:
    _current.state = None


def _state() -> CallState:
    return _current.state


_read = capi.read  # (caller, ptr, length) -> bytes; a range outside the memory raises WasmtimeError


def _text(caller: int, ptr: int, length: int) -> str:
    return _read(caller, ptr, length).decode("utf-8", "replace")


def _host_call(op: Callable[[CallState], Any]) -> int:
    """Run one host operation; map its outcome to a status code and fill the result buffer."""
    state = _state()
    state.commit()
    try:
        value = op(state)
    except CapabilityDenied as denied:
        capi.set_result(json.dumps(denied.to_dict()).encode())
        return DENIED
    except KvConflict as conflict:
        capi.set_result(U64.pack(conflict.current))
        return CONFLICT
    except GatiError as err:
        if isinstance(err, StateUnavailable):
            state.unavailable = err
        capi.set_result(json.dumps(err.to_dict()).encode())
        return ERROR
    except (ValueError, OSError) as exc:
        capi.set_result(json.dumps({"code": "error", "message": str(exc)}).encode())
        return ERROR
    if value is None:
        capi.set_result(b"")
        return NOT_FOUND
    capi.set_result(value if isinstance(value, bytes) else value.encode() if isinstance(value, str) else json.dumps(value).encode())
    return OK


def _on_loop(state: CallState, coro: Coroutine) -> Any:
    if not state.inline:
        return asyncio.run_coroutine_threadsafe(coro, state.loop).result(timeout=state.ctx.remaining(60.0) + 1.0)
    # An inline call runs on the loop's own thread: waiting for the loop would wait forever.
    # sandbox.py runs inline only modules granted neither egress nor module calls, for which
    # Host.http and Host.call_module end at their capability check, before anything awaits.
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise GatiError(
        "an inline WASM call needed the event loop",
        fix="this is a gati bug (sandboxes/wasm/sandbox.py runs this module inline); please report it",
    )


# The imports written in Python, each taking the caller first.
def _error(caller, ptr, length):
    _state().error = _text(caller, ptr, length)


def _log(caller, level, ptr, length):
    state = _state()
    state.commit()
    state.host.log(state.ctx, level, _text(caller, ptr, length))


def _http_request(caller, ptr, length):
    raw = _read(caller, ptr, length)

    def op(s: CallState):
        try:
            request = json.loads(raw)
        except ValueError:
            raise ValueError("http_request: the request is not valid JSON") from None
        if not isinstance(request, dict):
            raise ValueError('http_request: send a JSON object {"method", "url", "headers", "body"}')
        return _on_loop(s, s.host.http(s.ctx, request))

    return _host_call(op)


def _kv(state: CallState, coro) -> Any:
    # sandbox.py runs a module inline only when its kv store is local (or it has none)
    return run_now(coro) if state.host.kv_local else _on_loop(state, coro)


def _revision(caller, ptr) -> int:
    return U64.unpack(_read(caller, ptr, 8))[0]


def _kv_get(caller, sp, sl, kp, kl):
    store, key = _text(caller, sp, sl), _text(caller, kp, kl)
    return _host_call(lambda s: _kv(s, s.host.kv_get(s.ctx, store, key)))


def _kv_put(caller, sp, sl, kp, kl, vp, vl):
    store, key, value = _text(caller, sp, sl), _text(caller, kp, kl), _read(caller, vp, vl)

    def op(s: CallState):
        _kv(s, s.host.kv_put(s.ctx, store, key, value))
        return b""

    return _host_call(op)


def _kv_entry(caller, sp, sl, kp, kl):
    store, key = _text(caller, sp, sl), _text(caller, kp, kl)

    def op(s: CallState):
        entry: Entry | None = _kv(s, s.host.kv_entry(s.ctx, store, key))
        return None if entry is None else U64.pack(entry.revision) + entry.value

    return _host_call(op)


def _kv_cas(caller, sp, sl, kp, kl, vp, vl, rp):
    store, key, value, revision = _text(caller, sp, sl), _text(caller, kp, kl), _read(caller, vp, vl), _revision(caller, rp)
    return _host_call(lambda s: U64.pack(_kv(s, s.host.kv_cas(s.ctx, store, key, value, revision))))


def _kv_increment(caller, sp, sl, kp, kl, delta):
    store, key = _text(caller, sp, sl), _text(caller, kp, kl)
    return _host_call(lambda s: str(_kv(s, s.host.kv_increment(s.ctx, store, key, delta))).encode())


def _kv_delete(caller, sp, sl, kp, kl, rp):
    store, key, revision = _text(caller, sp, sl), _text(caller, kp, kl), _revision(caller, rp)
    return _host_call(lambda s: b"" if _kv(s, s.host.kv_delete(s.ctx, store, key, revision)) else None)


def _secret_get(caller, p, n):
    name = _text(caller, p, n)
    return _host_call(lambda s: s.host.secret_get(s.ctx, name))


def _env_get(caller, p, n):
    name = _text(caller, p, n)
    return _host_call(lambda s: s.host.env_get(s.ctx, name))


def _file_read(caller, p, n):
    path = _text(caller, p, n)
    return _host_call(lambda s: s.host.file_read(s.ctx, path))


def _file_write(caller, p, n, dp, dn):
    path, data = _text(caller, p, n), _read(caller, dp, dn)
    return _host_call(lambda s: s.host.file_write(s.ctx, path, data) or b"")


def _call(caller, mp, ml, fp, fl, pp, pl):
    module, method, payload = _text(caller, mp, ml), _text(caller, fp, fl), _read(caller, pp, pl)

    def op(s: CallState):
        try:
            value = json.loads(payload) if payload else None
        except ValueError:
            raise ValueError("call: the payload is not valid JSON") from None
        return json.dumps(_on_loop(s, s.host.call_module(s.ctx, module, method, value))).encode()

    return _host_call(op)


def _trace_context(caller):
    # Not a host call that acts: nothing is audited and an inline call is not committed by it.
    state = _state()
    trace = state.ctx.trace
    traceparent = trace.traceparent if trace is not None else ""
    if not traceparent:
        capi.set_result(b"")
        return NOT_FOUND
    capi.set_result(json.dumps({"traceparent": traceparent, "tracestate": trace.tracestate, "baggage": trace.baggage}).encode())
    return OK


IMPORTS: list[tuple[str, int, bool, Callable | int]] = [
    # name, number of i32 params, returns i32, implementation (a Python function, or a C one's address)
    ("input_len", 0, True, capi.C_IMPORTS["input_len"]),
    ("input_read", 1, False, capi.C_IMPORTS["input_read"]),
    ("output", 2, False, capi.C_IMPORTS["output"]),
    ("error", 2, False, _error),
    ("log", 3, False, _log),
    ("result_len", 0, True, capi.C_IMPORTS["result_len"]),
    ("result_read", 1, False, capi.C_IMPORTS["result_read"]),
    ("http_request", 2, True, _http_request),
    ("kv_get", 4, True, _kv_get),
    ("kv_put", 6, True, _kv_put),
    ("kv_entry", 4, True, _kv_entry),
    ("kv_cas", 7, True, _kv_cas),
    ("kv_increment", 5, True, _kv_increment),
    ("kv_delete", 5, True, _kv_delete),
    ("secret_get", 2, True, _secret_get),
    ("env_get", 2, True, _env_get),
    ("file_read", 2, True, _file_read),
    ("file_write", 4, True, _file_write),
    ("call", 6, True, _call),
    ("trace_context", 0, True, _trace_context),
]


def _failed(exc: BaseException) -> None:
    state = getattr(_current, "state", None)
    if state is not None and state.exception is None:
        state.exception = exc


# Made once: the C callbacks must outlive every linker and store that uses them.
_CALLBACKS = [
    (name, params, returns, impl if isinstance(impl, int) else capi.host_function(impl, params, returns, _failed))
    for name, params, returns, impl in IMPORTS
]


def define_imports(linker: wasmtime.Linker) -> None:
    for name, params, returns, callback in _CALLBACKS:
        capi.define(linker, "gati", name, params, returns, callback)
