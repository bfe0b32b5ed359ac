"""The module layer: the manager that owns the backends and routes calls, and how callers reach it."""

from runtime.modules.handles import ModuleHandle, ModuleSet
from runtime.modules.manager import ModuleManager
from runtime.modules.registration import register_module

__all__ = ["ModuleHandle", "ModuleManager", "ModuleSet", "register_module"]
