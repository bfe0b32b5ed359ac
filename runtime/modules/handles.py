"""gctx.modules: how a handler calls a module.

    await gctx.modules["thumbs"].call("resize", {"width": 640})
    await gctx.modules.thumbs.resize({"width": 640})
"""

from __future__ import annotations

from typing import Any

from runtime.modules.manager import ModuleManager


class ModuleHandle:
    """One module as a handler sees it: `.call(method, payload)` or `.method(payload)`."""

    def __init__(self, manager: ModuleManager, name: str):
        self._manager = manager
        self.name = name

    async def call(self, method: str, payload: Any = None) -> Any:
        return await self._manager.call(self.name, method, payload)

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)

        async def invoke(payload: Any = None) -> Any:
            return await self.call(method, payload)

        invoke.__name__ = method
        return invoke


class ModuleSet:
    """gctx.modules: `modules["thumbs"]` or `modules.thumbs`."""

    def __init__(self, manager: ModuleManager):
        self._manager = manager

    def __getitem__(self, name: str) -> ModuleHandle:
        return ModuleHandle(self._manager, name)

    def __getattr__(self, name: str) -> ModuleHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return ModuleHandle(self._manager, name)

    def __contains__(self, name: str) -> bool:
        return name in self._manager.state.registry.names()

    def __iter__(self):
        return iter(self._manager.state.registry.names())
