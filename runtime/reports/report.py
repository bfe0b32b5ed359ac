"""The audit report: manifests plus one pass over the log, as a table, JSON or SARIF.

build_report() assembles it (sync: the CLI calls it directly, the HTTP endpoint runs
it on a worker thread). Probes are async and have side effects, so they are run by
the caller and handed in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Iterable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from runtime.core.audit_log import VerifyResult
from runtime.core.registry import Registration
from runtime.reports.cluster import scan_logs
from runtime.reports.findings import (
    RULES,
    SEVERITIES,
    Finding,
    at_least,
    chain_findings,
    module_findings,
)
from runtime.reports.learn import Proposal
from runtime.reports.learn import learn as learn_proposal
from runtime.reports.permissions import describe
from runtime.reports.probe import BackendProbe, probe_dirs
from runtime.reports.usage import Usage, scan, unused

TABLE_ROWS = 10  # per module and list in the table; JSON carries everything


@dataclass
class ModuleReport:
    name: str
    registration: Registration | None  # None: seen in the log but not registered
    usage: Usage | None
    proposal: Proposal | None = None

    def to_dict(self) -> dict:
        reg, u = self.registration, self.usage
        m = reg.manifest if reg else None
        out = {
            "name": self.name,
            "registered": reg is not None,
            "version": m.version if m else None,
            "kind": m.kind if m else None,
            "manifest": reg.loaded.file if reg else None,
            "may": describe(m) if m else [],
            "versions_seen": sorted(u.versions) if u else [],
            "first_event": _iso(u.first) if u else None,
            "last_event": _iso(u.last) if u else None,
            "exercised": [
                {"capability": c, "target": t, "rule": r, "count": n} for (c, t, r), n in (u.allowed.most_common() if u else [])
            ],
            "refused": [
                {"capability": c, "target": t, "reason": why, "grant": g, "count": n}
                for (c, t, why, g), n in (u.denied.most_common() if u else [])
            ],
            "unused": [{"line": g.line, "means": g.sentence} for g in unused(m.capabilities, u)] if m else [],
        }
        if self.proposal is not None:
            p = self.proposal
            out["learn"] = {"diff": p.diff, "removed": [g.line for g in p.removed], "narrowed_to": [g.line for g in p.added]}
        return out


@dataclass
class Report:
    since: float | None
    until: float | None
    log: str
    records: int
    in_window: int
    chain: VerifyResult
    modules: list[ModuleReport]
    findings: list[Finding]
    probes: list[BackendProbe] | None = None
    learn: bool = False
    generated: float = field(default_factory=time.time)

    def failed(self, fail_on: str | None) -> bool:
        """The exit status CI gates on: findings at or above fail_on, or a probe that failed."""
        if self.probes and any(p.status == "failed" for p in self.probes):
            return True
        return bool(fail_on and at_least(self.findings, fail_on))

    def to_dict(self) -> dict:
        return {
            "generated": _iso(self.generated),
            "window": {"since": _iso(self.since), "until": _iso(self.until)},
            "log": {"path": self.log, "records": self.records, "in_window": self.in_window, "chain": vars(self.chain)},
            "modules": [m.to_dict() for m in self.modules],
            "findings": [f.to_dict() for f in self.findings],
            "summary": {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES},
            **({"probes": [p.to_dict() for p in self.probes]} if self.probes is not None else {}),
        }


def build_report(
    state,
    modules: Iterable[str] = (),
    since: float | None = None,
    until: float | None = None,
    *,
    learn: bool = False,
    probes: list[BackendProbe] | None = None,
    logs: dict[str, Path] | None = None,
) -> Report:
    """state: a runtime.core.state.StateDir. Names narrow the report; none means every registered or logged module.

    logs: every instance's log by instance (gati audit --cluster) in place of the state's own."""
    names = list(dict.fromkeys(modules))
    registry = state.registry
    registered = {r.name: r for r in registry.all()}
    only = set(names) if names else None
    if logs is None:
        result = scan(state.audit_path, since, until, only, key=state.audit_key)
    else:
        result = scan_logs(logs, since, until, only, key=state.audit_key)
    for name in names:
        if name not in registered and name not in result.usage:
            registry.get(name)  # raises ModuleNotFound listing what is registered
    in_scope = names or sorted(set(registered) | set(result.usage))

    reports, findings = [], chain_findings(result.log, result.chain)
    for name in in_scope:
        reg, u = registered.get(name), result.usage.get(name)
        report = ModuleReport(name, reg, u)
        if reg is not None:
            findings += module_findings(reg, u, registered)
            if learn and u is not None and u.events:  # no events: nothing to learn from, not "remove everything"
                report.proposal = learn_proposal(reg, u)
        reports.append(report)
    for p in probes or ():
        findings += _probe_findings(p)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.module or "", f.rule))
    return Report(since, until, result.log, result.records, result.in_window, result.chain, reports, findings, probes, learn)


def _probe_findings(p: BackendProbe) -> list[Finding]:
    file = str(probe_dirs().get(p.kind, Path(p.kind)) / "module.toml")
    if p.status == "failed" and not p.outcomes:
        return [Finding("high", "probe-not-refused", None, f"the {p.kind} probe could not run: {p.reason}", p.kind, "fix the probe folder", file)]
    return [
        Finding(
            "high",
            "probe-not-refused",
            None,
            f"{p.kind} sandbox: {o.attempt}: expected {o.expected}, observed {o.observed}" + (f" ({o.detail})" if o.detail else ""),
            o.attempt,
            f"the {p.kind} backend must enforce this; do not run untrusted modules on it until fixed",
            file,
        )
        for o in p.outcomes
        if not o.ok
    ]


# table ---------------------------------------------------------------------------------


def render(report: Report, console: Console) -> None:
    """The report for people; every table folds its cells so 80 columns are enough."""
    c = console
    window = f"{_iso(report.since) or 'start'} .. {_iso(report.until) or 'now'}"
    c.print(f"[bold]gati audit[/]  {escape(report.log)}", highlight=False)
    c.print(f"{report.records:,} records, {report.in_window:,} in window {window}", highlight=False)
    ch = report.chain
    if ch.ok:
        c.print(f"hash chain: [green]intact[/] ({ch.records:,} records)", highlight=False)
    elif ch.broken_line is None:
        c.print(f"hash chain: [bold red]BROKEN[/]: {escape(ch.problem)}", highlight=False)
    else:
        c.print(f"hash chain: [bold red]BROKEN[/] at line {ch.broken_line} (seq {ch.broken_seq}): {escape(ch.problem)}", highlight=False)
    for note in ch.notes:
        c.print(f"  note: {escape(note)}", highlight=False)

    for m in report.modules:
        d = m.to_dict()
        title = f"{m.name} {d['version'] or ''} ({d['kind'] or 'not registered'})"
        c.rule(f"[bold]{escape(title)}[/]", align="left")
        for sentence in d["may"]:
            c.print(f"  {escape(sentence)}", highlight=False)
        _rows(c, "exercised", ["capability", "target", "rule", "n"], [(e["capability"], e["target"], e["rule"], e["count"]) for e in d["exercised"]])
        _rows(c, "refused", ["capability", "target", "reason", "n"], [(e["capability"], e["target"], e["reason"], e["count"]) for e in d["refused"]])
        if d["unused"]:
            c.print("  [bold]declared, never used[/]")
            for u in d["unused"]:
                c.print(f"    {escape(u['line'])}", highlight=False)
        if report.learn and m.proposal is None and m.registration is not None:
            c.print("  [bold]least-privilege proposal[/]: no events in the window to learn from")
        if m.proposal is not None:
            c.print("  [bold]least-privilege proposal[/]" + ("" if m.proposal.diff else ": nothing to remove"))
            for line in m.proposal.diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                c.print(f"    [{style}]{escape(line)}[/]" if style else f"    {escape(line)}", highlight=False)

    if report.probes is not None:
        c.rule("[bold]probes[/]", align="left")
        if not report.probes:
            c.print("  no probe modules found")
        for p in report.probes:
            status = {"passed": "[green]passed[/]", "failed": "[bold red]FAILED[/]"}.get(p.status, "[yellow]skipped[/]")
            c.print(f"  {p.kind}: {status} {escape(p.reason)}", highlight=False)
            if p.outcomes:
                t = Table("attempt", "expected", "observed", "", box=box.SIMPLE, padding=(0, 1), expand=False)
                for o in p.outcomes:
                    t.add_row(escape(o.attempt), escape(o.expected), escape(o.observed), "[green]ok[/]" if o.ok else "[bold red]FAIL[/]")
                _fold(t)
                c.print(Padding(t, (0, 0, 0, 2)))

    c.rule("[bold]findings[/]", align="left")
    if not report.findings:
        c.print("  none")
    colours = {"high": "bold red", "medium": "yellow", "low": "cyan"}
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for f in report.findings:
        where = f"{Path(f.file).name}:{f.lineno}" if f.file and f.lineno else Path(f.file).name if f.file else ""
        text = f"{escape(f.message)}\n[dim]{escape(f.line)}{'  (' + escape(where) + ')' if where else ''}[/]\nfix: {escape(f.fix)}"
        grid.add_row(f"[{colours[f.severity]}]{f.severity}[/]", text)
    if report.findings:
        c.print(grid, highlight=False)
    summary = ", ".join(f"{sum(f.severity == s for f in report.findings)} {s}" for s in SEVERITIES)
    c.print(f"[bold]{summary}[/]", highlight=False)


def _rows(c: Console, title: str, header: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    t = Table(*header, title=None, box=box.SIMPLE, padding=(0, 1), expand=False, show_edge=False)
    for row in rows[:TABLE_ROWS]:
        t.add_row(*(escape(str(v)) if v is not None else "" for v in row[:-1]), f"{row[-1]:,}")
    _fold(t)
    t.columns[-1].justify = "right"
    t.columns[-1].no_wrap = True
    c.print(f"  [bold]{title}[/]" + (f" (top {TABLE_ROWS} of {len(rows)})" if len(rows) > TABLE_ROWS else ""))
    c.print(Padding(t, (0, 0, 0, 2)))


def _fold(t: Table) -> None:
    for col in t.columns:
        col.overflow = "fold"


# SARIF 2.1.0 -----------------------------------------------------------------------------

LEVELS = {"high": "error", "medium": "warning", "low": "note"}


def to_sarif(report: Report, root: Path | None = None) -> dict:
    """SARIF for code-scanning tools: one result per finding, located at its manifest line."""
    root = (root or Path.cwd()).resolve()
    ids = list(RULES)
    results = []
    for f in report.findings:
        result = {
            "ruleId": f.rule,
            "ruleIndex": ids.index(f.rule),
            "level": LEVELS[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "properties": {"severity": f.severity, "module": f.module, "line": f.line, "fix": f.fix},
        }
        if f.file:
            location: dict = {"artifactLocation": _artifact(Path(f.file), root)}
            if f.lineno:
                location["region"] = {"startLine": f.lineno}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gati audit",
                        "version": _version(),
                        "rules": [
                            {
                                "id": rule,
                                "name": "".join(w.capitalize() for w in rule.split("-")),
                                "shortDescription": {"text": text},
                                "defaultConfiguration": {"level": _default_level(rule)},
                            }
                            for rule, text in RULES.items()
                        ],
                    }
                },
                "originalUriBaseIds": {"PROJECTROOT": {"uri": root.as_uri() + "/"}},
                "results": results,
            }
        ],
    }


def _artifact(path: Path, root: Path) -> dict:
    path = path.resolve()
    if path.is_relative_to(root):
        return {"uri": path.relative_to(root).as_posix(), "uriBaseId": "PROJECTROOT"}
    return {"uri": path.as_uri()}


def _default_level(rule: str) -> str:
    high = {"egress-allow-all", "files-rw-wide", "audit-chain-broken", "probe-not-refused"}
    low = {"limits-missing", "unused-grant"}
    return "error" if rule in high else "note" if rule in low else "warning"


def _version() -> str:
    try:
        return package_version("gati")
    except PackageNotFoundError:
        return "0"


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)
