"""The audit report over every instance of a cluster: one scan per instance's log, merged.

Each instance chains its own log (runtime/cluster/audit.py mirrors it byte for byte), so each
is verified on its own, with the key every instance signs with ([audit] key_secret, one
secret for all of them: a key file is each instance's own and cannot be checked elsewhere): the merged chain is intact when every one is, and otherwise is the
first broken one, named by its instance (`gati audit verify --cluster` lists them all).
Usage is added up per module across instances: what a module did anywhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runtime.core.audit_key import AuditKey
from runtime.core.audit_log import VerifyResult, verify
from runtime.reports.usage import Scan, Usage, scan


def scan_logs(
    logs: dict[str, Path], since: float | None = None, until: float | None = None, modules: set[str] | None = None, key: AuditKey | None = None
) -> Scan:
    """key: the key every instance signs with ([audit] key_secret); without it signed records cannot be checked."""
    merged = Scan(f"{len(logs)} instance log(s): {', '.join(sorted(logs)) or 'none'}", 0, 0, VerifyResult(True, 0), {})
    for instance, path in sorted(logs.items()):
        one = scan(path, since, until, modules, key=key)
        merged.records += one.records
        merged.in_window += one.in_window
        if merged.chain.ok:
            if one.chain.ok:
                merged.chain = VerifyResult(True, merged.chain.records + one.chain.records)
            else:
                merged.chain = replace(one.chain, problem=f"instance {instance}: {one.chain.problem}")
                merged.log = str(path)
        for name, usage in one.usage.items():
            merged.usage[name] = _add(merged.usage.get(name), usage)
    return merged


def _add(into: Usage | None, usage: Usage) -> Usage:
    if into is None:
        return usage
    into.versions |= usage.versions
    firsts = [t for t in (into.first, usage.first) if t is not None]
    lasts = [t for t in (into.last, usage.last) if t is not None]
    into.first, into.last = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
    into.allowed.update(usage.allowed)
    into.denied.update(usage.denied)
    return into


def verify_logs(logs: dict[str, Path], key: AuditKey | None) -> dict[str, VerifyResult]:
    """Each instance's chain, verified on its own with the key they share."""
    return {instance: verify(path, key) for instance, path in sorted(logs.items())}
