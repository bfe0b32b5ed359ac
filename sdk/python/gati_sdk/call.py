"""The call a piece of module code works for, so that what it asks of the host is attributed to it.

The runtime hands each call an unguessable token (CallContext.call_token) and attributes a
host request or an egress proxy request to a call only by the token it presents. The SDK
keeps the token of the call being served in a context variable while the method runs, and
carries it into the threads the method starts (threading.Thread, and each task given to a
concurrent.futures.ThreadPoolExecutor), so a method that fans its work out to threads still
asks for its own call. A thread that is still at work after its call ended presents that
call's token, which the runtime refuses: it acts for no one.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

_token: contextvars.ContextVar[str] = contextvars.ContextVar("gati_call_token", default="")


def current_token() -> str:
    """The token of the call this code works for; "" outside every call."""
    return _token.get()


@contextmanager
def working_for(token: str) -> Iterator[None]:
    reset = _token.set(token)
    try:
        yield
    finally:
        _token.reset(reset)


def _run_for(token: str, fn, *args, **kwargs):
    with working_for(token):
        return fn(*args, **kwargs)


_start = threading.Thread.start
_submit = ThreadPoolExecutor.submit


def _start_for_current_call(self: threading.Thread) -> None:
    token = _token.get()
    if token:  # a thread started outside every call (gRPC's own, say) is left as it is
        self.run = functools.partial(_run_for, token, self.run)
    _start(self)


def _submit_for_current_call(self: ThreadPoolExecutor, fn, /, *args, **kwargs):
    # Per task, also outside every call (""): a pool's threads outlive the call that started
    # them, and one started during a call must not work for it ever after.
    return _submit(self, _run_for, _token.get(), fn, *args, **kwargs)


def carry_into_threads() -> None:
    """Make threads and thread-pool tasks work for the call that started them (Module.serve does this)."""
    threading.Thread.start = _start_for_current_call
    ThreadPoolExecutor.submit = _submit_for_current_call
