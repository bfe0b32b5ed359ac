"""Requests per second of a gati handler that calls a WASM module, against a bare aiohttp
JSON handler, served side by side by one server process in the same run.

The load comes from a separate client process (so client and server do not share a loop):
`wrk` (Debian package wrk; fixed duration) when installed, then a bounded number of requests
from an aiohttp client (the method issue 11's first figures were taken with); 127.0.0.1 only;
rounds alternate, so both see the same machine. Beside
requests/s, the server's CPU time per request (this process's, during the round): on a busy
machine it moves far less than requests/s.
Goal: gati at least 0.5x bare.  Run: .venv/bin/python -m bench http [--client aiohttp: that one only]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from bench.common import cpu_seconds, goal, serve, throughput_table, wrk
from runtime.http.app import build_app

ROOT = Path(__file__).resolve().parents[1]
REQUESTS, CONCURRENCY, ROUNDS, WRK_SECONDS = 2000, 16, 3, 3

HANDLER = '''
async def handler(req, res, gctx, lctx):
    return await gctx.modules.greet.hello({"name": req.params["name"]})
'''

CLIENT = '''
import asyncio, json, sys, time, aiohttp
url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    async with aiohttp.ClientSession() as s:
        left = n
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with s.get(url) as r:
                    assert r.status == 200, r.status
                    await r.read()
        await asyncio.gather(*(worker() for _ in range(c)))  # warm-up
        left = n
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        print(json.dumps(n / (time.perf_counter() - start)))
asyncio.run(main())
'''

BARE = "bare aiohttp JSON handler"
GATI = "gati handler -> WASM greet.hello"


async def bare(request: web.Request) -> web.Response:
    return web.json_response({"message": f"hello, {request.match_info['name']}"})


def make_project(tmp: Path) -> Path:
    project = tmp / "app"
    (project / "handlers" / "greet").mkdir(parents=True)
    (project / "handlers" / "greet" / "[name].py").write_text(HANDLER)
    (project / "gati.toml").write_text(f'[modules]\npaths = ["{ROOT / "sample_modules" / "greet-wat"}"]\n')
    return project


async def load_aiohttp(url: str) -> tuple[float, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, str(REQUESTS), str(CONCURRENCY), stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return json.loads(out), 2 * REQUESTS  # the warm-up is served too


async def main() -> None:
    # Both load generators when wrk is there: wrk (C) loads the servers hardest; the aiohttp client
    # (Python, the issue's own method) is what the first figures of issue 11 were taken with.
    clients = (["wrk"] if shutil.which("wrk") and "--client" not in sys.argv else []) + ["aiohttp client"]
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    runners = []
    try:
        bare_app = web.Application()
        bare_app.router.add_get("/greet/{name}", bare)
        bare_runner, bare_port = await serve(bare_app)
        gati_runner, gati_port = await serve(build_app(make_project(tmp)))
        runners = [bare_runner, gati_runner]
        urls = {BARE: f"http://127.0.0.1:{bare_port}/greet/ada", GATI: f"http://127.0.0.1:{gati_port}/greet/ada"}
        for client in clients:
            results: dict[str, list[float]] = {name: [] for name in urls}
            cpu: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(ROUNDS):  # alternate, so both see the same machine
                for name, url in urls.items():
                    before = cpu_seconds()
                    rate, served = await (wrk(url, WRK_SECONDS, CONCURRENCY) if client == "wrk" else load_aiohttp(url))
                    cpu[name].append((cpu_seconds() - before) / served * 1e6)
                    results[name].append(rate)
            how = f"wrk {WRK_SECONDS}s" if client == "wrk" else f"aiohttp client, {REQUESTS} requests"
            throughput_table(f"HTTP: {how} x {ROUNDS} rounds, {CONCURRENCY} connections (goal: gati >= 0.5x bare)", results, BARE, cpu)
            ratio = max(results[GATI]) / max(results[BARE])
            goal(f"HTTP handler -> greet.hello (WASM) vs bare aiohttp JSON handler [{client}]", ratio, ">=", 0.5,
                 f"{max(results[GATI]):.0f} vs {max(results[BARE]):.0f} req/s; CPU {min(cpu[GATI]):.0f} vs {min(cpu[BARE]):.0f} µs/req")
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
