"""Requests per second of a handler behind gati's full request lifecycle, against a bare aiohttp
handler doing the same work, both served by this process in the same run.

Full lifecycle: ingress (request id, W3C trace context and an OpenTelemetry span), route, one
before and one after hook, validation of a small JSON body against a TypedDict, metrics (OTel
counter + histogram), and, in the first gati row, the execution record (one JSON line per
request, on by default). The bare handler does the same work by hand: a uuid4 request id,
traceparent parsing and echo, the two hook calls, isinstance checks, a counter and a duration.

Load: `wrk` when installed (Debian package wrk; fixed duration), else a bounded number of
requests from an aiohttp client in a separate process; 127.0.0.1 only, rounds alternate.
Beside requests/s, the server's CPU time per request (this process's, during the round).
Goal (issue 11): gati >= 0.75x bare.  Run: .venv/bin/python -m bench lifecycle [--client aiohttp]
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import web

from bench.common import cpu_seconds, goal, serve, throughput_table, wrk
from runtime.http.app import build_app

REQUESTS, CONCURRENCY, ROUNDS, WRK_SECONDS = 3000, 16, 3, 3
BODY = {"name": "ann", "qty": 3}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

HANDLER = '''
from typing import Annotated, TypedDict
from annotated_types import Ge, MinLen

class Order(TypedDict):
    name: Annotated[str, MinLen(1)]
    qty: Annotated[int, Ge(1)]

def before(req, res, gctx, lctx):
    lctx.set("seen", True)

def after(req, res, gctx, lctx):
    res.header("X-Seen", "1")

METHODS = ["POST"]
REQUEST = Order
BEFORE = [before]
AFTER = [after]

async def handler(req, res, gctx, lctx):
    return {"name": req.data["name"], "total": req.data["qty"] * 2}
'''

WRK_LUA = f'''
wrk.method = "POST"
wrk.body = '{json.dumps(BODY)}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["traceparent"] = "{TRACEPARENT}"
'''

CLIENT = f'''
import asyncio, json, sys, time, aiohttp
url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = {json.dumps(json.dumps(BODY))}
headers = {{"Content-Type": "application/json", "traceparent": "{TRACEPARENT}"}}
async def main():
    async with aiohttp.ClientSession() as s:
        left = n
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with s.post(url, data=body, headers=headers) as r:
                    assert r.status == 200, r.status
                    await r.read()
        await asyncio.gather(*(worker() for _ in range(c)))  # warm-up
        left = n
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        print(json.dumps(n / (time.perf_counter() - start)))
asyncio.run(main())
'''

BARE = "bare aiohttp, same work by hand"
GATI = "gati full lifecycle (defaults: + execution record)"

TRACE_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def bare_app() -> web.Application:
    """The same work by hand, as a careful aiohttp author would write it."""
    counts: dict[tuple, int] = {}
    durations: list[float] = []

    def before(state):
        state["seen"] = True

    def after(resp):
        resp.headers["X-Seen"] = "1"

    async def handle(request: web.Request) -> web.Response:
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        m = TRACE_RE.match(request.headers.get("traceparent", ""))
        trace_id = m.group(2) if m else uuid.uuid4().hex
        state: dict = {}
        before(state)
        body = await request.json()
        if not (isinstance(body, dict) and set(body) == {"name", "qty"} and isinstance(body["name"], str) and body["name"]
                and type(body["qty"]) is int and body["qty"] >= 1):
            return web.json_response({"error": "invalid"}, status=400)
        resp = web.json_response({"name": body["name"], "total": body["qty"] * 2})
        after(resp)
        resp.headers["X-Request-Id"] = request_id
        resp.headers["traceparent"] = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
        key = ("/orders", "POST", 200)
        counts[key] = counts.get(key, 0) + 1
        durations.append(time.perf_counter() - start)
        if len(durations) > 10000:
            durations.clear()
        return resp

    app = web.Application()
    app.router.add_post("/orders", handle)
    return app


def make_project(tmp: Path, executions: bool) -> Path:
    project = tmp / ("app-audit" if executions else "app")
    (project / "handlers").mkdir(parents=True)
    (project / "handlers" / "orders.py").write_text(HANDLER)
    (project / "gati.toml").write_text(f"[audit]\nexecutions = {'true' if executions else 'false'}\n")
    return project




async def load_aiohttp(url: str) -> tuple[float, int]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, url, str(REQUESTS), str(CONCURRENCY), stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed against {url}")
    return json.loads(out), 2 * REQUESTS  # the warm-up is served too


async def main() -> None:
    use_wrk = shutil.which("wrk") is not None and "--client" not in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    script = tmp / "post.lua"
    script.write_text(WRK_LUA)
    runners = []
    try:
        targets = {
            BARE: bare_app(),
            GATI: build_app(make_project(tmp, True)),
            "gati full lifecycle, execution records off": build_app(make_project(tmp, False)),
        }
        urls = {}
        for name, app in targets.items():
            runner, port = await serve(app)
            runners.append(runner)
            urls[name] = f"http://127.0.0.1:{port}/orders"
        results: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(ROUNDS):  # alternate, so every target sees the same machine
            for name, url in urls.items():
                before = cpu_seconds()
                rate, served = await (wrk(url, WRK_SECONDS, CONCURRENCY, script) if use_wrk else load_aiohttp(url))
                cpu[name].append((cpu_seconds() - before) / served * 1e6)
                results[name].append(rate)
        how = f"wrk {WRK_SECONDS}s x {ROUNDS} rounds" if use_wrk else f"aiohttp client, {REQUESTS} requests x {ROUNDS} rounds"
        throughput_table(f"Lifecycle: {how}, {CONCURRENCY} connections, best round (goal: gati >= 0.75x bare)", results, BARE, cpu)
        gati = max(results[GATI])
        goal("full request lifecycle vs bare aiohttp doing the same work", gati / max(results[BARE]), ">=", 0.75,
             f"{gati:.0f} vs {max(results[BARE]):.0f} req/s; CPU {min(cpu[GATI]):.0f} vs {min(cpu[BARE]):.0f} µs/req")
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
