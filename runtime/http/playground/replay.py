"""Replay: a stored request sent again to this server, against the version asked for.

    await replay(request, recorder, snapshot, mode="recorded", version="2", headers={"Authorization": "Bearer .."})

The request goes over a real connection to the address the playground was reached on, so it
takes the whole path again (ingress, auth, rate limits, hooks). It carries the stored method,
path, query, headers and body, minus the redacted headers (their values were never stored: give
them in `headers` when the route needs them), plus:

    X-Gati-Flags: replay-<token>    marks it a replay (runtime.http.recorder); in "recorded" mode its
                                    module calls are answered from the original's recorded answers
    Gati-Version: V                 the version asked for (docs/versions.md); by default the one the
                                    original ran, on a route with several versions

A body that was cut when stored ([audit] snapshot_body_bytes) or never read cannot be sent as it
was: the first is refused, the second is sent without a body (the handler did not read it).
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from runtime.core.errors import GatiError
from runtime.http.recorder import Recorder
from runtime.http.redact import REDACTED

MODES = ("real", "recorded")
VERSION_HEADER = "Gati-Version"
# Set again by the replay or by the connection: never copied from the stored request.
NOT_COPIED = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "expect",
              "x-request-id", "traceparent", "tracestate", "x-gati-flags", VERSION_HEADER.lower(), "accept-version"}
TIMEOUT_S = 120


class ReplayRefused(GatiError):
    code = "replay_refused"
    http_status = 400


async def replay(
    request: web.Request, recorder: Recorder, snapshot: dict[str, Any], *, mode: str = "real", version: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if mode not in MODES:
        raise ReplayRefused(f"unknown replay mode {mode!r}", fix='use "real" (modules run) or "recorded" (answered from the recording)')
    if snapshot.get("body_truncated"):
        raise ReplayRefused(
            f"request {snapshot['id']} had a {snapshot['body_size']}-byte body and only part of it was stored",
            fix="raise [audit] snapshot_body_bytes and send the request again to store it whole",
        )
    sent: CIMultiDict[str] = CIMultiDict()
    flags = [f.strip() for name, value in snapshot["headers"] if name.lower() == "x-gati-flags" for f in value.split(",")]
    for name, value in snapshot["headers"]:
        if name.lower() not in NOT_COPIED and value != REDACTED:
            sent.add(name, value)
    for name, value in (headers or {}).items():
        sent[name] = value
    # ours first: ingress keeps the first 8 flags
    sent["X-Gati-Flags"] = ", ".join([recorder.replay(snapshot, mode)] + [f for f in flags if f and not f.startswith("replay-")])
    if version:
        sent[VERSION_HEADER] = version
    body = snapshot.get("body")
    data = None if body is None else base64.b64decode(body) if snapshot.get("body_encoding") == "base64" else body.encode()
    host, port = request.transport.get_extra_info("sockname")[:2]
    url = URL(f"http://{f'[{host}]' if ':' in host else host}:{port}{snapshot['path']}" + (f"?{snapshot['query']}" if snapshot["query"] else ""), encoded=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), auto_decompress=False) as session:
        async with session.request(snapshot["method"], url, headers=sent, data=data, allow_redirects=False) as resp:
            await resp.read()
            return {"id": resp.headers.get("X-Request-Id"), "status": resp.status, "of": snapshot["id"], "mode": mode, "version": version}
