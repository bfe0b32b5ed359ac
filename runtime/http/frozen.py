"""Read-only views of shared data: gati.toml [config] as handlers see it through gctx.config.

Every request shares them, so a write is a bug in the handler: it raises TypeError saying
where per-request state belongs instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def read_only(what: str) -> TypeError:
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
        raise read_only("gctx.config")

    def __setattr__(self, name, value):
        raise read_only("gctx.config")

    __delitem__ = __setitem__
    __delattr__ = __setattr__

    def _refuse(self, *args, **kwargs):
        raise read_only("gctx.config")

    update = setdefault = pop = popitem = clear = _refuse


class FrozenList(tuple):
    """A list nobody can change (a tuple whose write attempts say why they fail)."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise read_only("gctx.config")

    __setitem__ = __delitem__ = append = extend = insert = remove = pop = clear = sort = reverse = _refuse


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value
