"""What each module did and was refused, from one streaming pass over the audit log.

The log can hold millions of records, so it is read line by line, never loaded:
memory grows with the number of distinct (module, capability, target) seen, not with
the number of events. The same pass checks the chain, macs and head (runtime.core.audit_chain).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from runtime.core.audit_chain import LOG_EVENT, VerifyResult
from runtime.core.audit_key import AuditKey
from runtime.core.audit_log import start_check
from runtime.core.capabilities.egress import (
    ALLOW_ALL,
    Target,
    _ip_or_none,
    parse_rule,
    parse_target,
)
from runtime.core.errors import GatiError
from runtime.reports.permissions import FIELD_OF, Grant, grants, rule_index

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str | None, now: float | None = None) -> float | None:
    """A window bound: "90m", "24h", "7d" ago, an ISO date or time (UTC unless it says), or epoch seconds."""
    if text is None or text == "":
        return None
    text = text.strip()
    now = time.time() if now is None else now
    m = _DURATION.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GatiError(
            f"cannot read the time {text!r}",
            fix='give a duration ago ("90m", "24h", "7d"), an ISO time ("2024-05-01T12:00"), or epoch seconds',
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


@dataclass
class Usage:
    """One module's decisions in the window."""

    module: str
    versions: set[str] = field(default_factory=set)
    first: float | None = None
    last: float | None = None
    # (capability, target, rule) -> count
    allowed: Counter = field(default_factory=Counter)
    # (capability, target, reason, grant) -> count
    denied: Counter = field(default_factory=Counter)

    @property
    def events(self) -> int:
        return sum(self.allowed.values()) + sum(self.denied.values())

    @property
    def denials(self) -> int:
        return sum(self.denied.values())


@dataclass
class Scan:
    log: str
    records: int  # every record read
    in_window: int  # records inside the window (and of the modules asked for)
    chain: VerifyResult
    usage: dict[str, Usage]


def scan(
    path: str | Path,
    since: float | None = None,
    until: float | None = None,
    modules: set[str] | None = None,
    key: AuditKey | None = None,
) -> Scan:
    """Read the log once: per-module counters for the window, and the chain check over every record.

    key: the project's configured audit key; None uses the key file beside the log.
    """
    lo = float("-inf") if since is None else since
    hi = float("inf") if until is None else until
    usage: dict[str, Usage] = {}
    chain = start_check(path, key)
    decode = msgspec.json.Decoder().decode
    records = in_window = 0
    path = Path(path)
    if not path.exists():
        return Scan(str(path), 0, 0, chain.result(), usage)
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            try:
                r = decode(line)
            except msgspec.DecodeError:
                if not line.strip():
                    continue
                if line.endswith(b"\n"):
                    chain.invalid(lineno)
                else:
                    chain.incomplete(lineno, len(line))
                continue
            if type(r) is not dict:
                chain.invalid(lineno)
                continue
            records += 1
            chain.feed(lineno, r)
            if r.get("capability") == LOG_EVENT:  # the log's own events (a tail moved aside): no module's usage
                continue
            try:  # a record the host did not write (odd types) is skipped here; the chain check names it
                t = r.get("time") or 0.0
                if not lo <= t <= hi:
                    continue
                name = r.get("module") or "?"
                if modules is not None and name not in modules:
                    continue
                allow = r.get("decision") == "allow"
                if allow:
                    key = r.get("capability"), r.get("target"), r.get("rule")
                else:
                    key = r.get("capability"), r.get("target"), r.get("reason"), r.get("grant")
                hash(key), hash(name)
            except TypeError:
                continue
            u = usage.get(name)
            if u is None:
                u = usage[name] = Usage(name, first=t)
            (u.allowed if allow else u.denied)[key] += 1
            u.versions.add(r.get("version") or "?")
            u.last = t
            in_window += 1
    return Scan(str(path), records, in_window, chain.result(), usage)


def used(caps, usage: Usage | None) -> dict[Grant, list[tuple[str, str, int]]]:
    """Each grant the usage exercised -> its (capability, target, count) list."""
    index = rule_index(caps)
    out: dict[Grant, list] = {}
    for (cap, target, rule), count in (usage.allowed.items() if usage else ()):
        g = index.get((FIELD_OF.get(cap, ""), rule))
        if g is not None:
            out.setdefault(g, []).append((cap, target, count))
    # The host audits refused addresses but not allowed ones, so a rule naming an address
    # (the only way a name resolving to a private one gets through) cannot be seen used.
    # Count it used when a name was reached on its scheme and port: dropping it would break that.
    reached = [t for (cap, target, _) in (usage.allowed if usage else ()) if cap == "egress" and (t := _by_name(target))]
    for g in grants(caps):
        if g.field != "egress" or g.value == ALLOW_ALL or g in out:
            continue
        rule = parse_rule(g.value)
        via = [t for t in reached if rule.address is not None and rule.matches(t.scheme, str(rule.address), t.port)]
        if via:
            out[g] = [("egress", f"{t} (by address)", 0) for t in via]
    return out


def _by_name(target: str) -> Target | None:
    """The target if it names a host (not an address literal)."""
    try:
        t = parse_target(target)
    except (ValueError, TypeError):
        return None
    return t if _ip_or_none(t.host) is None else None


def unused(caps, usage: Usage | None) -> list[Grant]:
    exercised = used(caps, usage)
    return [g for g in grants(caps) if g not in exercised]
