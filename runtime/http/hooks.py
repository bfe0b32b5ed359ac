"""A hook: a function run around a handler, with its level, timeout and retries.

    BEFORE = [load_user, hook(warm_cache, timeout_ms=200, retries=2, backoff_ms=20)]

Hooks take the handler's arguments, `(req, res, gctx, lctx)`; catch hooks get the error
first, `(err, req, res, gctx, lctx)`. runtime.http.lifecycle runs them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Hook:
    fn: Callable[..., Any]
    name: str
    level: str = "route"  # global | route | local
    timeout_ms: int | None = None  # None: [server] hook_timeout_ms
    retries: int = 0  # extra attempts after a failure (never after a 4xx error: that is a decision, not a fault)
    backoff_ms: int = 50  # wait before retry k: backoff_ms * 2**(k-1)
    is_async: bool = False


def hook(fn: Callable | None = None, *, timeout_ms: int | None = None, retries: int = 0, backoff_ms: int = 50, name: str | None = None):
    """A hook with its own timeout and retries: `hook(fn, timeout_ms=200)` or `@hook(retries=2)`."""
    if fn is None:
        return lambda f: hook(f, timeout_ms=timeout_ms, retries=retries, backoff_ms=backoff_ms, name=name)
    if timeout_ms is not None and (not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0):
        raise ValueError(f"hook timeout_ms={timeout_ms!r}: give a positive number of milliseconds")
    if not isinstance(retries, int) or retries < 0 or backoff_ms < 0:
        raise ValueError(f"hook retries={retries!r}, backoff_ms={backoff_ms!r}: give non-negative integers")
    return Hook(fn, name or _name(fn), timeout_ms=timeout_ms, retries=retries, backoff_ms=backoff_ms, is_async=_is_async(fn))


def as_hook(item: Any, level: str, arity: int = 4) -> Hook:
    """A Hook at level from a function or a hook(...); TypeError naming the problem otherwise."""
    h = item if isinstance(item, Hook) else None
    fn = h.fn if h else item
    if not callable(fn):
        raise TypeError(f"{item!r} is not a function")
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError:
        want = "(err, req, res, gctx, lctx)" if arity == 5 else "(req, res, gctx, lctx)"
        raise TypeError(f"hook {_name(fn)} must take {want}") from None
    except ValueError:
        pass  # builtins without a signature: trust them
    return replace(h, level=level) if h else Hook(fn, _name(fn), level=level, is_async=_is_async(fn))


@dataclass(frozen=True)
class HookSet:
    before: tuple[Hook, ...] = ()
    after: tuple[Hook, ...] = ()
    catch: tuple[Hook, ...] = ()

    @classmethod
    def of(cls, level: str, before: Iterable = (), after: Iterable = (), catch: Iterable = ()) -> "HookSet":
        return cls(
            tuple(as_hook(h, level) for h in before),
            tuple(as_hook(h, level) for h in after),
            tuple(as_hook(h, level, arity=5) for h in catch),
        )




def _is_async(fn: Callable) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
