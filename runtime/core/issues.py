"""Issue: one way a value does not match its type, as every validator of gati reports it.

Handler bodies (runtime.http.gtype) and module payloads (runtime.core.payload_schema) report
mismatches in this one shape, so a client reads `errors` the same way whoever refused it:

    {"path": "$.user.tags[2]", "expected": "integer >= 0", "actual": "x"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Issue:
    path: str  # "$.user.tags[2]"
    expected: str
    actual: Any  # the offending value (scalars), or a short description of it

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "expected": self.expected, "actual": self.actual}


def key_path(path: str, key: Any) -> str:
    """path extended by an object key or an array index: $.name, $['odd key'], $[2]."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if isinstance(key, str) and _IDENT.match(key) else f"{path}[{key!r}]"


def actual(v: Any) -> Any:
    """The offending value as an error may show it: scalars as they are, containers described, long text cut."""
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return f"an array of {len(v)}"
    if isinstance(v, str) and len(v) > 80:
        return v[:77] + "..."
    return v if v is None or isinstance(v, (str, int, float, bool)) else type(v).__name__


def show(v: Any) -> str:
    return v if isinstance(v, str) and v.startswith(("an ", "(missing)")) else repr(v)
