"""The recorder: gathers a replayable snapshot of each request while it runs, and stores it.

On when [audit] snapshots = true or the playground is served; off, nothing of this runs. A snapshot:

    {"id", "time", "method", "path", "query", "headers": [[name, value], ...] (redacted: runtime.http.redact),
     "body", "body_encoding": "utf-8" | "base64", "body_size", "body_truncated",
     "route", "handler", "version", "status", "outcome", "duration_ms",
     "answer": {"status", "headers", "body", "body_encoding", "body_size", "body_truncated"},
     "lctx": {state, tasks, phase, hook_index, events, ...}  (runtime.http.snapshot, at the end),
     "calls": [{"module", "method", "depth", "caller", "payload", "answer" | "error", "ms", "duration_ms", "answered"}],
     "replay_of": None | the snapshot replayed, "replay_mode": None | "real" | "recorded"}

Bodies are kept up to [audit] snapshot_body_bytes (body_truncated says when cut); the request body is
the one the handler read (a body it never read is not stored: body is None). Module calls are
seen through the module manager's intercept (runtime.modules.manager), which start-up chains in
front of any other: the modules layer knows nothing of HTTP or snapshots.

A replay (runtime.http.playground.replay) is the stored request sent again with the debug flag
`replay-<token>` (X-Gati-Flags); the token is known only to this process. In "recorded" mode
the handler's module calls are answered from the original's recorded answers, in order, without
running the module.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
from aiohttp import web

from runtime.core.call import CallContext
from runtime.core.errors import GatiError
from runtime.http.context import LocalContext, current_request
from runtime.http.redact import Redactor
from runtime.http.routing import Route
from runtime.http.snapshot_store import SnapshotStore
from runtime.modules.manager import Intercept, Proceed

log = logging.getLogger("gati.http")
REPLAY_FLAG = "replay-"
REPLAY_TTL_S = 300  # a replay token not used by then is forgotten
_encode = msgspec.json.Encoder(enc_hook=repr).encode


class NoRecordedAnswer(GatiError):
    """A replay answering module calls from a recording met a call the original did not make."""

    code = "no_recorded_answer"
    http_status = 502


@dataclass
class Replay:
    of: str  # the id of the snapshot replayed
    mode: str  # "real" | "recorded"
    calls: list[dict[str, Any]]  # the original's module calls
    made: float = field(default_factory=time.monotonic)
    _used: set[int] = field(default_factory=set)

    def answer(self, module: str, method: str) -> Any:
        """The original's answer to its next call of module.method not answered yet (its error raised again)."""
        for i, call in enumerate(self.calls):
            if i not in self._used and call.get("depth", 0) == 0 and call["module"] == module and call["method"] == method:
                self._used.add(i)
                if "error" in call:
                    raise GatiError.from_dict(call["error"])
                return call.get("answer")
        raise NoRecordedAnswer(
            f"the replayed request calls {module}.{method}, and request {self.of} made no (further) such call",
            fix="replay with module calls real, or replay against a version that calls the modules as the original did",
            module=module,
            method=method,
        )


class Recorder:
    def __init__(self, settings, notify: Callable[[dict[str, Any]], None] | None = None):
        """settings: [audit] (runtime.http.project.AuditSettings)."""
        self.redactor = Redactor(settings.redact_headers)
        self.body_bytes = settings.snapshot_body_bytes
        self.keep, self.max_bytes = settings.snapshot_keep, settings.snapshot_max_bytes
        self.store: SnapshotStore | None = None  # opened at start-up, in the state directory
        self.replays: dict[str, Replay] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # told of every snapshot stored (the playground's live list)

    def open(self, path) -> None:
        self.store = SnapshotStore(path, keep=self.keep, max_bytes=self.max_bytes)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # replays ----------------------------------------------------------------------------

    def replay(self, snapshot: dict[str, Any], mode: str) -> str:
        """Register a replay of snapshot; returns the X-Gati-Flags value its request must carry."""
        now = time.monotonic()
        for token in [t for t, r in self.replays.items() if now - r.made > REPLAY_TTL_S]:
            del self.replays[token]
        token = os.urandom(12).hex()
        self.replays[token] = Replay(snapshot["id"], mode, list(snapshot.get("calls") or ()))
        return REPLAY_FLAG + token

    def _replay_of(self, lctx: LocalContext, *, done: bool = False) -> Replay | None:
        """The replay this request is (done: and forget it: a token serves one request)."""
        for flag in lctx.flags:  # almost always empty
            if flag.startswith(REPLAY_FLAG):
                token = flag[len(REPLAY_FLAG):]
                return self.replays.pop(token, None) if done else self.replays.get(token)
        return None

    # module calls -------------------------------------------------------------------------

    async def intercept(self, module: str, method: str, payload: Any, ctx: CallContext, proceed: Proceed) -> Any:
        lctx = current_request.get()
        if lctx is None or lctx.request_id != ctx.request_id:
            return await proceed(module, method, payload, ctx)  # not a call of the request this task serves
        call: dict[str, Any] = {
            "module": module, "method": method, "depth": ctx.depth, "caller": ctx.caller,
            "payload": _json(payload), "ms": round((time.monotonic() - lctx.started_at) * 1000, 3), "answered": "module",
        }
        if lctx.calls is None:
            lctx.calls = []
        lctx.calls.append(call)
        replay = self._replay_of(lctx) if lctx.flags else None
        start = time.perf_counter()
        try:
            if replay is not None and replay.mode == "recorded" and ctx.depth == 0:
                call["answered"] = "recorded"
                answer = replay.answer(module, method)
            else:
                answer = await proceed(module, method, payload, ctx)
        except GatiError as err:
            call["error"] = err.to_dict()
            raise
        except Exception as err:
            call["error"] = {"code": "internal", "message": f"{type(err).__name__}: {err}"}
            raise
        finally:
            call["duration_ms"] = round((time.perf_counter() - start) * 1000, 3)
        call["answer"] = _json(answer)
        return answer

    # the snapshot ---------------------------------------------------------------------------

    def finish(self, request: web.Request, route: Route, lctx: LocalContext, resp: web.StreamResponse, seconds: float) -> None:
        """Store the snapshot of a request that reached a route, and tell the listeners."""
        if self.store is None:
            return
        try:
            self._finish(request, route, lctx, resp, seconds)
        except Exception:  # a snapshot must never fail the request it records
            log.exception("snapshot of request %s failed", lctx.request_id)

    def _finish(self, request: web.Request, route: Route, lctx: LocalContext, resp: web.StreamResponse, seconds: float) -> None:
        replay = self._replay_of(lctx, done=True) if lctx.flags else None
        body = request._read_bytes  # what aiohttp's read() returned; runtime.http.request reads through it
        snapshot = {
            "id": lctx.request_id,
            "time": time.time(),
            "method": request.method,
            "path": request.rel_url.raw_path,
            "query": request.rel_url.raw_query_string,
            "headers": self.redactor.headers(request.headers.items()),
            **self._body(body),
            "route": route.pattern,
            "handler": route.rel,
            "version": lctx.version,
            "status": resp.status,
            "outcome": "error" if lctx.failed else "ok",
            "duration_ms": round(seconds * 1000, 3),
            "answer": self._answer(resp),
            "lctx": _lctx(lctx),
            "calls": lctx.calls or [],
            "replay_of": replay.of if replay else None,
            "replay_mode": replay.mode if replay else None,
        }
        self.store.add(snapshot)
        if self.listeners:
            summary = {k: snapshot[k] for k in ("id", "time", "method", "path", "route", "version", "status", "duration_ms", "replay_of")}
            for listener in list(self.listeners):
                listener(summary)

    def _body(self, body: bytes | None) -> dict[str, Any]:
        if body is None:
            return {"body": None, "body_encoding": "utf-8", "body_size": None, "body_truncated": False}
        kept = bytes(body[: self.body_bytes])
        try:
            text, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(kept).decode(), "base64"
        return {"body": text, "body_encoding": encoding, "body_size": len(body), "body_truncated": len(kept) < len(body)}

    def _answer(self, resp: web.StreamResponse) -> dict[str, Any]:
        out: dict[str, Any] = {"status": resp.status, "headers": self.redactor.headers(resp.headers.items())}
        body = resp.body if isinstance(resp, web.Response) else None
        if isinstance(body, (bytes, bytearray)):
            out.update(self._body(body))
        else:
            out.update(self._body(None), streamed=True)  # streamed or a file: what was sent is not kept
        return out


def _lctx(lctx: LocalContext) -> Any:
    """lctx's final snapshot (runtime.http.snapshot); when its state holds what cannot be copied (a lock, a
    connection), the same fields without the copy: the store encodes at once, such values as their repr."""
    try:
        return lctx.snapshot()
    except Exception:
        return {
            "request_id": lctx.request_id, "trace_id": lctx.trace_id, "route": lctx.route, "version": lctx.version,
            "phase": lctx.phase, "hook_index": lctx.hook_index, "state": {k: lctx.get(k) for k in lctx.keys()},
            "tasks": [], "events": lctx.events, "copied": False,
        }


def chain(outer: Intercept, inner: Intercept | None) -> Intercept:
    """outer in front of inner: outer's proceed runs inner (which may answer itself or proceed)."""
    if inner is None:
        return outer

    async def both(module: str, method: str, payload: Any, ctx: CallContext, proceed: Proceed) -> Any:
        async def then(m: str, me: str, p: Any, c: CallContext) -> Any:
            return await inner(m, me, p, c, proceed)

        return await outer(module, method, payload, ctx, then)

    return both


def _json(value: Any) -> Any:
    """A JSON copy: later changes by the handler do not reach the record, and what is stored is what was sent."""
    return msgspec.json.decode(_encode(value))
