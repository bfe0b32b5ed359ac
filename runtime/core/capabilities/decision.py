"""A Decision: one capability check's answer, the unit of every audit record.

Every capability unit (egress.py, files.py, env.py, ...) answers with one. It says
allowed or not, the manifest entry that allowed it, and for a denial the exact manifest
line that would grant it. Nothing here acts or audits: runtime/core/host.py does both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    # egress | file.read | file.write | file.mount | env | secret | kv.read | kv.write | module.call | limit.*
    capability: str
    target: str
    allowed: bool
    rule: str | None = None  # the manifest entry that allowed it
    grant: str | None = None  # for a denial: the manifest line that would grant it
    reason: str = ""


def grant_line(field: str, value: str) -> str:
    """The `[capabilities]` line declaring one value of a list field, as denials name it."""
    return f"[capabilities] {field} = [{json.dumps(value)}]"


def named(capability: str, field: str, name: str, declared: list[str]) -> Decision:
    """The decision for capabilities granted by name (env, secrets, kv, modules): declared or not."""
    if name in declared:
        return Decision(capability, name, True, rule=f"{field}: {name}")
    return Decision(capability, name, False, grant=grant_line(field, name), reason="not declared")
