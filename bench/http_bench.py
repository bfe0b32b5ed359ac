"""Requests per second of a gati handler that calls a WASM module, against a bare aiohttp
JSON handler, served side by side by one server process in the same run.

The load comes from a separate client process (so client and server do not share a
loop), over 127.0.0.1 only, a bounded number of requests with bounded concurrency.
Goal: gati at least 0.5x bare.  Run: .venv/bin/python -m bench.http_bench
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

from bench.common import serve, throughput_table
from runtime.http.app import build_app

ROOT = Path(__file__).resolve().parents[1]
REQUESTS, CONCURRENCY, ROUNDS = 2000, 16, 3

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


async def bare(request: web.Request) -> web.Response:
    return web.json_response({"message": f"hello, {request.match_info['name']}"})


def make_project(tmp: Path) -> Path:
    project = tmp / "app"
    (project / "handlers" / "greet").mkdir(parents=True)
    (project / "handlers" / "greet" / "[name].py").write_text(HANDLER)
    (project / "gati.toml").write_text(f'[modules]\npaths = ["{ROOT / "sample_modules" / "greet-wat"}"]\n')
    return project




async def load(url: str) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, str(REQUESTS), str(CONCURRENCY), stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return json.loads(out)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    runners = []
    try:
        bare_app = web.Application()
        bare_app.router.add_get("/greet/{name}", bare)
        bare_runner, bare_port = await serve(bare_app)
        gati_runner, gati_port = await serve(build_app(make_project(tmp)))
        runners = [bare_runner, gati_runner]
        results: dict[str, list[float]] = {"bare aiohttp JSON handler": [], "gati handler -> WASM greet.hello": []}
        for _ in range(ROUNDS):  # alternate, so both see the same machine
            results["bare aiohttp JSON handler"].append(await load(f"http://127.0.0.1:{bare_port}/greet/ada"))
            results["gati handler -> WASM greet.hello"].append(await load(f"http://127.0.0.1:{gati_port}/greet/ada"))
        throughput_table(f"HTTP: {REQUESTS} requests x {ROUNDS} rounds, {CONCURRENCY} in flight (goal: gati >= 0.5x bare)", results, "bare aiohttp JSON handler")
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
