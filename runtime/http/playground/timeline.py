"""A request's timeline: its hooks, handler, module calls and their capability decisions, in order.

    timeline(snapshot, decisions) -> [{"kind", "label", "start_ms", "duration_ms", "outcome", "detail"}, ...]

kind is hook | handler | module | capability | gate | event; start_ms counts from the request's
arrival. Hooks and the handler come from the lifecycle events (runtime.http.lifecycle), module calls
from the snapshot (runtime.http.recorder), capability decisions from the audit log
(runtime.core.audit_log: every decision carries the request id), placed by their wall-clock time.
`label` names an entry the same way in any execution of the route: diffs align on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.core.audit_log import read_events

ENDS = {"hook:end", "hook:error", "handler:end", "handler:error", "compensation:end", "compensation:error"}
SHOWN = {"gate:paused", "gate:resumed", "gate:state", "timeout", "alert", "validation:error", "secret:read", "task:cancelled"}


def decisions(audit_path: Path, request_id: str) -> list[dict[str, Any]]:
    """The audit log's capability decisions made for request_id (blocking: a worker thread's job)."""
    if not audit_path.is_file():
        return []
    return [e for e in read_events(audit_path) if e.get("request_id") == request_id]


def timeline(snapshot: dict[str, Any], found: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    events = (snapshot.get("lctx") or {}).get("events") or ()
    for e in events:
        kind = e["type"]
        if kind in ENDS:
            what, _, how = kind.partition(":")
            duration = float(e.get("duration_ms") or 0)
            if what == "hook":
                label = f"hook {e.get('phase')}:{e.get('hook')}"
            elif what == "handler":
                label = "handler"
            else:
                label = f"compensation {e.get('name')}"
            rows.append({
                "kind": "handler" if what == "handler" else "hook", "label": label,
                "start_ms": round(float(e["ms"]) - duration, 3), "duration_ms": duration,
                "outcome": "error" if how == "error" else "ok", "detail": e.get("error") or "",
            })
        elif kind in SHOWN:
            detail = {k: v for k, v in e.items() if k not in ("type", "request_id", "ms")}
            rows.append({"kind": "gate" if kind.startswith("gate:") else "event", "label": kind, "start_ms": round(float(e["ms"]), 3),
                         "duration_ms": 0, "outcome": "ok", "detail": detail})
    for call in snapshot.get("calls") or ():
        rows.append({
            "kind": "module", "label": f"module {call['module']}.{call['method']}", "start_ms": call["ms"],
            "duration_ms": call.get("duration_ms", 0), "outcome": "error" if "error" in call else "ok",
            "detail": {"payload": call.get("payload"), "answer": call.get("answer"), "error": call.get("error"),
                       "answered": call.get("answered"), "depth": call.get("depth", 0)},
        })
    began = snapshot["time"] - snapshot["duration_ms"] / 1000  # wall-clock arrival, to place audit records
    for d in found:
        rows.append({
            "kind": "capability", "label": f"capability {d.get('module')} {d.get('capability')} {d.get('target')}",
            "start_ms": round(max(0.0, (float(d.get("time", began)) - began) * 1000), 3), "duration_ms": 0,
            "outcome": d.get("decision", ""), "detail": {k: d.get(k) for k in ("module", "capability", "target", "decision", "rule", "reason")},
        })
    rows.sort(key=lambda r: (r["start_ms"], r["kind"] != "handler"))
    return rows
