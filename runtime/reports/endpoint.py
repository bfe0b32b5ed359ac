"""The audit report over HTTP for `gati serve`: an admin endpoint, off unless enabled, behind a token.

    add_audit_routes(app, lambda: app[STATE], token)

    GET /_gati/audit?module=a&module=b&since=24h&until=...&learn=1&format=json|sarif
    Authorization: Bearer <token>

The answer is the same report as `gati audit --format json` (or SARIF). Probes are
not offered here: they start sandboxes and take seconds, which an HTTP request
should not trigger. The report reads the whole log, so it runs on a worker thread to
keep the event loop serving requests.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Callable

from aiohttp import web

from runtime.core.errors import GatiError
from runtime.reports.report import build_report, to_sarif
from runtime.reports.usage import parse_when

AUDIT_PATH = "/_gati/audit"


def add_audit_routes(app: web.Application, state_getter: Callable[[], Any], token: str, *, path: str = AUDIT_PATH) -> None:
    """Serve the audit report at `path`; state_getter returns the StateDir (it exists only once the app starts)."""
    if not token or len(token) < 16:
        raise ValueError("the audit endpoint needs a token of at least 16 characters; it must not be reachable without one")
    expected = f"Bearer {token}".encode()

    async def audit(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"code": "unauthorized", "message": "the audit endpoint needs the admin token", "fix": "send Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="gati-audit"'},
            )
        q = request.query
        try:
            body = await asyncio.get_running_loop().run_in_executor(
                None,
                _report,
                state_getter(),
                q.getall("module", []),
                q.get("since"),
                q.get("until"),
                q.get("learn", "") in ("1", "true", "yes"),
                q.get("format", "json"),
            )
        except GatiError as exc:
            return web.json_response(exc.to_dict(), status=400)
        return web.json_response(body)

    app.router.add_get(path, audit)


def _report(state, modules: list[str], since: str | None, until: str | None, learn: bool, fmt: str) -> dict:
    if fmt not in ("json", "sarif"):
        raise GatiError(f"unknown format {fmt!r}", fix="use format=json or format=sarif")
    report = build_report(state, modules, parse_when(since), parse_when(until), learn=learn)
    return to_sarif(report) if fmt == "sarif" else report.to_dict()
