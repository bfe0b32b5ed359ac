"""The two contexts a handler receives: `gctx` (shared, read-only) and `lctx` (one request).

    async def handler(req, res, gctx, lctx):
        gctx.config["greeting"]        # from gati.toml [config]; writing raises TypeError
        gctx.modules.thumbs.resize({})  # the module manager, shared by every request
        lctx.request_id, lctx.trace_id # also in the X-Request-Id and traceparent response headers
        lctx.set("user", u); lctx.on_cleanup(close_it)
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("gati.http")

# A caller-supplied request id is echoed only when it cannot smuggle anything into logs or headers.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# W3C Trace Context, version 00: version-traceid-parentid-flags, all lower-case hex.
TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

PHASES = ("received", "handler", "responding", "cleanup", "done")


def _read_only(what: str) -> TypeError:
    return TypeError(f"{what} is read-only: it is shared by every request. Keep per-request state in lctx.set(key, value)")


class FrozenMap(Mapping):
    """A mapping nobody can change: gati.toml [config] as handlers see it."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping):
        object.__setattr__(self, "_data", {k: freeze(v) for k, v in data.items()})

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"FrozenMap({self._data!r})"

    def __setitem__(self, key, value):
        raise _read_only("gctx.config")

    def __setattr__(self, name, value):
        raise _read_only("gctx.config")

    __delitem__ = __setitem__
    __delattr__ = __setattr__

    def _refuse(self, *args, **kwargs):
        raise _read_only("gctx.config")

    update = setdefault = pop = popitem = clear = _refuse


class FrozenList(tuple):
    """A list nobody can change (a tuple whose write attempts say why they fail)."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise _read_only("gctx.config")

    __setitem__ = __delitem__ = append = extend = insert = remove = pop = clear = sort = reverse = _refuse


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Instance:
    id: str
    started_at: float
    pid: int
    host: str

    @classmethod
    def current(cls) -> "Instance":
        return cls(uuid.uuid4().hex, time.time(), os.getpid(), socket.gethostname())


class GlobalContext:
    """What every request shares: config, this server instance, the modules."""

    __slots__ = ("config", "instance", "modules")

    def __init__(self, config: Mapping, modules: Any, instance: Instance | None = None):
        object.__setattr__(self, "config", freeze(config))
        object.__setattr__(self, "instance", instance or Instance.current())
        object.__setattr__(self, "modules", modules)

    def __setattr__(self, name, value):
        raise _read_only("gctx")

    __delattr__ = __setattr__


class LocalContext:
    """One request's identity, state and cleanup hooks."""

    def __init__(self, request_id: str | None = None, traceparent: str | None = None):
        self.request_id = request_id if request_id and REQUEST_ID_RE.match(request_id) else uuid.uuid4().hex
        self.trace_id, self.trace_flags = _parse_traceparent(traceparent)
        self.span_id = uuid.uuid4().hex[:16]  # this server's span; callers further down use it as parent
        self.phase = "received"
        self.started_at = time.monotonic()
        self._state: dict[str, Any] = {}
        self._cleanups: list[Callable[[], Any]] = []

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.trace_flags}"

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._state[key] = value

    def delete(self, key: str) -> None:
        self._state.pop(key, None)

    def on_cleanup(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Run fn (sync or async) when the request ends, whatever the outcome; usable as a decorator."""
        self._cleanups.append(fn)
        return fn

    async def cleanup(self) -> None:
        """Run the hooks newest first; a failing hook is logged and the others still run."""
        self.phase = "cleanup"
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("cleanup hook %r failed (request %s)", fn, self.request_id)
        self.phase = "done"


def _parse_traceparent(header: str | None) -> tuple[str, str]:
    m = TRACEPARENT_RE.match(header.strip()) if header else None
    if m:
        version, trace_id, parent_id, flags, rest = m.groups()
        # Version ff is forbidden, all-zero ids are invalid, and version 00 has no trailing fields.
        if version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16 and not (version == "00" and rest):
            return trace_id, flags
    return uuid.uuid4().hex, "01"
