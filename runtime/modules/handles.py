"""gctx.modules: how a handler calls a module.

    await gctx.modules["thumbs"].call("resize", {"width": 640})
    await gctx.modules.thumbs.resize({"width": 640})
    await gctx.modules["thumbs@2"].resize({})        # a version: 2.x.y, 2.1.0, ^2.1 (runtime/core/versions.py)

A handle is only a name: which version a call reaches is the manager's to resolve, from the
name's constraint or the handler's MODULES pins carried by the request's CallContext.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Awaitable

from runtime.modules.manager import ModuleManager

MAX_KEPT = 256  # handles and methods kept per set and handle: names a handler computes cannot grow memory without end


class ModuleHandle:
    """One module as a handler sees it: `.call(method, payload)` or `.method(payload)`."""

    def __init__(self, manager: ModuleManager, name: str):
        self._manager = manager
        self.name = name

    def call(self, method: str, payload: Any = None) -> Awaitable[Any]:
        # The manager's own coroutine, handed back as it is: one coroutine frame less per call than an async def around it.
        return self._manager.call(self.name, method, payload)

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        # handle.method(payload) is manager.call(name, method, payload): a partial, not a coroutine wrapping it.
        invoke = partial(self._manager.call, self.name, method)
        invoke.__name__ = method
        if len(self.__dict__) < MAX_KEPT:
            setattr(self, method, invoke)  # made once: the next `handle.method` is a plain attribute
        return invoke


class ModuleSet:
    """gctx.modules: `modules["thumbs"]` or `modules.thumbs`. Handles are made once per name and kept."""

    def __init__(self, manager: ModuleManager):
        self._manager = manager
        self._handles: dict[str, ModuleHandle] = {}

    def __getitem__(self, name: str) -> ModuleHandle:
        handle = self._handles.get(name)
        if handle is None:
            handle = ModuleHandle(self._manager, name)
            if len(self._handles) < MAX_KEPT:
                self._handles[name] = handle
        return handle

    def __getattr__(self, name: str) -> ModuleHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        handle = self[name]
        if len(self.__dict__) < MAX_KEPT:
            setattr(self, name, handle)  # the next `modules.name` is a plain attribute, not this call
        return handle

    def __contains__(self, name: str) -> bool:
        return name.partition("@")[0] in self._manager.state.registry.names()

    def __iter__(self):
        return iter(self._manager.state.registry.names())
