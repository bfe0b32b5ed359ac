"""Two executions side by side: their answers and their timelines.

    diff(a, b, timeline_a, timeline_b) -> {"a": {...}, "b": {...}, "answer": {"same", "lines"},
                                           "timeline": [{"a": row | None, "b": row | None, "same"}], "calls": [...]}

The answers are compared as people read them: JSON bodies pretty-printed with sorted keys, so a
different key order is no difference; `lines` is a unified diff. Timelines are aligned on their
labels (runtime.http.playground.timeline), so a hook or module call present in only one execution
stands alone on its row; durations always differ and are shown, not compared.
"""

from __future__ import annotations

import base64
import difflib
import json
from typing import Any


def readable(answer: dict[str, Any]) -> str:
    body = answer.get("body")
    if body is None:
        return "(streamed: not kept)" if answer.get("streamed") else ""
    if answer.get("body_encoding") == "base64":
        return f"({len(base64.b64decode(body))} bytes, not text)"
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return body


def _side(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": s["id"], "version": s["version"], "status": s["status"], "duration_ms": s["duration_ms"],
        "replay_of": s.get("replay_of"), "replay_mode": s.get("replay_mode"), "body": readable(s["answer"]),
    }


def _align(a: list[Any], b: list[Any], key) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=[key(x) for x in a], b=[key(x) for x in b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows += [{"a": a[i], "b": b[j], "same": True} for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            rows.append({"a": left[k] if k < len(left) else None, "b": right[k] if k < len(right) else None, "same": False})
    return rows


def _call_key(call: dict[str, Any]) -> str:
    outcome = json.dumps(call.get("error") or call.get("answer"), sort_keys=True, default=repr)
    return f"{call['module']}.{call['method']} {json.dumps(call.get('payload'), sort_keys=True, default=repr)} -> {outcome}"


def diff(a: dict[str, Any], b: dict[str, Any], timeline_a: list[dict[str, Any]], timeline_b: list[dict[str, Any]]) -> dict[str, Any]:
    left, right = _side(a), _side(b)
    same = left["status"] == right["status"] and left["body"] == right["body"]
    lines = list(difflib.unified_diff(
        f"status {left['status']}\n{left['body']}".splitlines(), f"status {right['status']}\n{right['body']}".splitlines(),
        f"{a['id']} (version {a['version'] or '-'})", f"{b['id']} (version {b['version'] or '-'})", lineterm="",
    ))
    return {
        "a": left,
        "b": right,
        "answer": {"same": same, "lines": lines},
        "timeline": _align(timeline_a, timeline_b, lambda r: (r["label"], r["outcome"])),
        "calls": _align(a.get("calls") or [], b.get("calls") or [], _call_key),
    }
