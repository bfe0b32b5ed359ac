"""Findings: what a security reviewer should look at, each with a severity, the line and the fix.

Severities: high (fix before shipping), medium (justify or fix), low (tidy up).
Each finding names the manifest line it is about (or the audit log record) so a
reviewer, or a code-scanning tool reading SARIF, can jump to it.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.core.audit_log import VerifyResult
from runtime.core.capabilities.egress import ALLOW_ALL
from runtime.core.registry import Registration
from runtime.reports.permissions import FIELD_OF, Grant, grants, is_wildcard
from runtime.reports.usage import Usage, unused

SEVERITIES = ("high", "medium", "low")
REPEATED_DENIALS = 5  # denials in the window from which a module looks like it is probing
# Absolute paths this shallow (/, /home, /tmp, /etc, ...) are too wide to write to.
WIDE_PATH_DEPTH = 2

# rule id -> what it checks (SARIF rule descriptions come from here)
RULES = {
    "egress-allow-all": "Egress allows every host",
    "egress-wildcard": "Egress rule matches more than one host, scheme or port",
    "files-rw-wide": "Write access to a wide part of the file system",
    "files-wide": "Read access to a wide part of the file system",
    "secret-without-egress": "Secret granted to a module that cannot send anything anywhere",
    "limits-missing": "Limit left to its default",
    "calls-wider-module": "Calls a module that holds grants the caller does not",
    "repeated-denials": "Repeated capability denials (a module probing its sandbox)",
    "unused-grant": "Grant declared and never used",
    "audit-chain-broken": "Audit log hash chain broken",
    "probe-not-refused": "A sandbox did not refuse what it must",
}


@dataclass(frozen=True)
class Finding:
    severity: str  # high | medium | low
    rule: str  # a key of RULES
    module: str | None
    message: str
    line: str  # the manifest line (or log record) it concerns
    fix: str
    file: str | None = None
    lineno: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def at_least(findings: list[Finding], severity: str) -> list[Finding]:
    rank = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) <= rank]


def chain_findings(log: str, chain: VerifyResult) -> list[Finding]:
    if chain.ok:
        return []
    if chain.broken_line is None:  # the head checkpoint itself (missing, forged): no line of the log to name
        where = "its head checkpoint"
    else:
        where = f"line {chain.broken_line}" + (f", record seq {chain.broken_seq}" if chain.broken_seq is not None else "")
    return [
        Finding(
            "high",
            "audit-chain-broken",
            None,
            f"the audit log is broken at {where}: {chain.problem}",
            where,
            "treat the log after this point as untrusted; keep a copy, find out who changed it, run: gati audit verify",
            log,
            chain.broken_line,
        )
    ]


def module_findings(reg: Registration, usage: Usage | None, registered: dict[str, Registration]) -> list[Finding]:
    """Findings for one registered module, from its manifest, its usage and the modules it may call."""
    m = reg.manifest
    file = reg.loaded.file
    lines = _read_lines(file)
    out: list[Finding] = []

    def add(severity: str, rule: str, message: str, about: Grant | tuple[str, str], fix: str) -> None:
        """about: the grant concerned, or (manifest line, key to find it by)."""
        if isinstance(about, Grant):
            line, lineno = about.line, locate(lines, about.field, about.value)
        else:
            line, lineno = about[0], locate(lines, about[1], None)
        out.append(Finding(severity, rule, m.name, message, line, fix, file, lineno))

    observed = _observed_targets(usage)
    for g in grants(m.capabilities):
        if g.field == "egress" and g.value == ALLOW_ALL:
            hosts = ", ".join(sorted(observed)) or "the hosts it needs"
            add("high", "egress-allow-all", f"{m.name} may connect to any host", g, f"replace it with rules for {hosts}")
        elif g.field == "egress" and is_wildcard(g.value):
            add("medium", "egress-wildcard", f"{m.name}: {g.sentence}", g, "name the exact scheme, host and port it needs")
        elif g.field == "files" and _wide(reg, g.value):
            if g.mode == "rw":
                add("high", "files-rw-wide", f"{m.name} {g.sentence}", g, "grant rw on a dedicated directory only")
            else:
                add("medium", "files-wide", f"{m.name} {g.sentence}", g, "grant only the directory or files it reads")
        elif g.field == "secrets" and not m.capabilities.egress:
            add(
                "medium",
                "secret-without-egress",
                f"{m.name} holds the secret {g.value} but may not connect anywhere to use it",
                g,
                "remove the secret, or declare the egress it is meant for",
            )

    declared = _declared_limits(file)
    if declared is not None:
        for key, why in (("memory_mb", "memory"), ("timeout_ms", "time per call")):
            if key not in declared:
                default = getattr(m.limits, key)
                add("low", "limits-missing", f"{m.name} sets no {why} limit (default {default})", (f"[limits] {key}", "[limits]"), f"set [limits] {key} to what it needs")

    own = {(g.field, g.value) for g in grants(m.capabilities)}
    for callee in m.capabilities.modules:
        other = registered.get(callee.partition("@")[0])  # a grant may pin a version: greet@^1
        if other is None:
            continue
        wider = [g for g in grants(other.manifest.capabilities) if (g.field, g.value) not in own and g.field != "modules"]
        if wider:
            add(
                "medium",
                "calls-wider-module",
                f"{m.name} may call {callee}, which " + "; ".join(g.sentence for g in wider[:3]) + (" ..." if len(wider) > 3 else ""),
                Grant("modules", callee),
                f"check that {m.name} should reach these through {callee}, or narrow {callee}'s grants",
            )

    if usage is not None and usage.denials >= REPEATED_DENIALS:
        (cap, target, reason, grant), _ = usage.denied.most_common(1)[0]
        add(
            "medium",
            "repeated-denials",
            f"{m.name} was refused {usage.denials} times ({len(usage.denied)} distinct), most often {cap} {target}",
            (grant or f"[capabilities] {FIELD_OF.get(cap, cap)}", FIELD_OF.get(cap, cap)),
            f"find out why it tries; if it needs it add {grant}, otherwise treat the module as hostile",
        )

    if usage is not None and usage.events:
        for g in unused(m.capabilities, usage):
            caveat = " through the host" if m.kind == "wasm" and g.field in ("files", "env") else ""
            add("low", "unused-grant", f"{m.name} never used{caveat} in the window: {g.sentence}", g, "remove it (see gati audit --learn)")
    return out


def locate(lines: list[str], key: str, value: str | None) -> int | None:
    """1-based line of a manifest entry: the line holding the value after its key, else the key."""
    key_line = None
    for i, text in enumerate(lines, 1):
        stripped = text.split("#", 1)[0]
        if key_line is None and (stripped.strip() == key or re.match(rf"\s*{re.escape(key)}\s*=", stripped)):
            key_line = i
        if key_line is not None and value is not None and json.dumps(value) in stripped:
            return i
    return key_line


def _read_lines(file: str) -> list[str]:
    try:
        return Path(file).read_text().splitlines()
    except OSError:
        return []


def _declared_limits(file: str) -> dict | None:
    """The [limits] keys the manifest file spells out (defaults do not count), or None if unreadable."""
    try:
        return tomllib.loads(Path(file).read_text()).get("limits", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _wide(reg: Registration, declared: str) -> bool:
    base = Path(reg.loaded.base_dir)
    host = (Path(declared) if Path(declared).is_absolute() else base / declared).resolve()
    return host == base or host in base.parents or len(host.parts) <= WIDE_PATH_DEPTH


def _observed_targets(usage: Usage | None) -> set[str]:
    return {target for (cap, target, _), _ in (usage.allowed.items() if usage else ()) if cap == "egress"}
