"""Where the CPU of one request goes inside gati's HTTP layer, in this process, no sockets.

`runtime.http.dispatch` is called in a loop on one aiohttp request (no network, no client), as
aiohttp would call it, beside a bare aiohttp JSON handler called the same way: what the layer
itself costs, apart from aiohttp's own 40-50 µs of parsing and writing a request (which both
servers pay; `python -m bench http` measures them served), and `python -m bench lifecycle`'s
request (body, hooks, validation) with execution records on and off. Then the parts of a request,
each alone, so the layer's microseconds can be added up. CPU time of this thread, best of interleaved
rounds (docs/performance.md).

Run: .venv/bin/python -m bench dispatch
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import types
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request
from rich.table import Table

from bench import lifecycle_bench
from bench.common import console
from runtime.http.app import build_app
from runtime.http.appstate import RUNTIME
from runtime.http.context import LocalContext
from runtime.http.dispatch import dispatch
from runtime.http.executions import _encoder, execution_record
from runtime.http.response import Response

ROOT = Path(__file__).resolve().parents[1]
N, ROUNDS = 20000, 3


async def bare(request: web.Request) -> web.Response:
    return web.json_response({"message": "hello, ada"})


def make_project(tmp: Path) -> Path:
    project = tmp / "app"
    (project / "handlers").mkdir(parents=True)
    (project / "handlers" / "dict.py").write_text('async def handler(req, res, gctx, lctx):\n    return {"message": "hello, ada"}\n')
    (project / "handlers" / "greet.py").write_text('async def handler(req, res, gctx, lctx):\n    return await gctx.modules.greet.hello({"name": "ada"})\n')
    (project / "gati.toml").write_text(f'[modules]\npaths = ["{ROOT / "sample_modules" / "greet-wat"}"]\n')
    return project


async def cpu_us(cases: dict[str, Callable[[], Awaitable[object]]]) -> dict[str, float]:
    """Best CPU µs per call of each case, rounds interleaved; the loop turns every 64 calls, as a server's does."""
    best = {name: float("inf") for name in cases}
    for fn in cases.values():
        for _ in range(500):
            await fn()
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            start = time.thread_time()
            for i in range(N):
                await fn()
                if i % 64 == 0:
                    await asyncio.sleep(0)
            best[name] = min(best[name], (time.thread_time() - start) / N * 1e6)
    return best


def parts(app: web.Application, request: web.Request) -> dict[str, Callable[[], object]]:
    rt = app[RUNTIME]
    lctx = rt.ingress.open(request)  # takes the emit part's events
    done = rt.ingress.open(request)  # a finished request's: two events
    done.emit("handler:start", handler="dict.py", version="")
    done.emit("handler:end", handler="dict.py", duration_ms=0.01)
    route = rt.router.match("GET", "/dict").route
    return {
        "ingress.open: request id, trace ids, lctx": lambda: rt.ingress.open(request),
        "  of which LocalContext()": lambda: LocalContext(None, None),
        "ingress.check: duplicated headers": lambda: rt.ingress.check(request),
        "router.match": lambda: rt.router.match("GET", "/dict"),
        "res.json + to_aiohttp": lambda: Response().json({"message": "hello, ada"}).to_aiohttp(),
        "lctx.emit (a request emits 2, more with hooks)": lambda: lctx.emit("handler:end", handler="x", duration_ms=1.0),
        "metrics: the request's histogram": lambda: rt.metrics.request("/dict", "GET", 200, 0.001),
        "the request's deadline (watch + end)": lambda: rt.deadlines.end(rt.deadlines.watch(30)),
        "execution record: built and encoded": lambda: _encoder.encode(execution_record(request, route, done, 200, 0.001)),
    }


class _Reading:
    """What a request body's StreamReader tells its connection: nothing to do here."""

    def pause_reading(self, **_: object) -> None: ...

    def resume_reading(self, **_: object) -> None: ...


def lifecycle_cases(apps: dict[str, web.Application]) -> dict[str, Callable[[], Awaitable[object]]]:
    """`python -m bench lifecycle`'s request (JSON body, traceparent, two hooks, a TypedDict) through
    dispatch, with records on and off. Each call makes a new aiohttp request with its body to read
    (make_mocked_request's mocks would cost more than the request): its own row gives that cost."""
    body = json.dumps(lifecycle_bench.BODY).encode()
    headers = {"Content-Type": "application/json", "traceparent": lifecycle_bench.TRACEPARENT, "Content-Length": str(len(body))}
    loop, reading = asyncio.get_running_loop(), _Reading()
    made = {name: make_mocked_request("POST", "/orders", headers=headers, app=app) for name, app in apps.items()}
    # What aiohttp's Request reads of its connection, as plain attributes: the mocked protocol is a Mock, which
    # keeps every call made to it (three a request), so the heap grew by 60,000 objects per round and full
    # garbage collections of the whole runtime (90 ms each) landed in the measured rows: 22 µs a request.
    protocol = types.SimpleNamespace(ssl_context=None, peername=("127.0.0.1", 40000), sockname=("127.0.0.1", 8080))

    def request(name: str) -> web.Request:
        t = made[name]
        payload = streams.StreamReader(reading, 1 << 16, loop=loop)
        payload.feed_data(body)
        payload.feed_eof()
        r = web.Request(t._message, payload, protocol, t._payload_writer, t._task, loop)
        r._match_info = t._match_info
        return r

    async def only_the_request() -> None:
        request("records on")

    cases: dict[str, Callable[[], Awaitable[object]]] = {"(making the aiohttp request, its body)": only_the_request}
    for name in apps:
        cases[f"gati dispatch, the lifecycle request, {name}"] = lambda name=name: dispatch(request(name))
    return cases


def sync_cpu_us(cases: dict[str, Callable[[], object]], n: int = 50000) -> dict[str, float]:
    out = {}
    for name, fn in cases.items():
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.thread_time()
            for _ in range(n):
                fn()
            best = min(best, (time.thread_time() - start) / n * 1e6)
        out[name] = best
    return out


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    app = build_app(make_project(tmp))
    lifecycle_apps = {"records on": build_app(lifecycle_bench.make_project(tmp / "lifecycle", True)), "records off": build_app(lifecycle_bench.make_project(tmp / "lifecycle", False))}
    runners = [web.AppRunner(a) for a in (app, *lifecycle_apps.values())]
    for runner in runners:
        await runner.setup()  # start-up: modules registered, gctx made
    try:
        rt = app[RUNTIME]
        plain = make_mocked_request("GET", "/dict", app=app)
        greet = make_mocked_request("GET", "/greet", app=app)
        hello = rt.gctx.modules.greet.hello

        async def both() -> None:
            await dispatch(plain)
            await hello({"name": "ada"})

        rows = await cpu_us({
            "bare aiohttp JSON handler": lambda: bare(plain),
            "gati dispatch, handler returning a dict": lambda: dispatch(plain),
            "gctx.modules.greet.hello alone, in a loop": lambda: hello({"name": "ada"}),
            "the dict request, then greet.hello, in turn": both,
            "gati dispatch, handler calling greet.hello": lambda: dispatch(greet),
            **lifecycle_cases(lifecycle_apps),
        })
        t = Table(title=f"The HTTP layer in-process: CPU µs per request (thread time, best of {ROUNDS} x {N})")
        t.add_column("what")
        t.add_column("CPU µs", justify="right")
        made = rows["(making the aiohttp request, its body)"]
        for name, us in rows.items():
            t.add_row(name, f"{us:.1f}" + (f" ({us - made:.1f} without making it)" if "lifecycle request" in name else ""))
        console.print(t)

        t = Table(title="Its parts, each alone (CPU µs per call)")
        t.add_column("part")
        t.add_column("CPU µs", justify="right")
        for name, us in sync_cpu_us(parts(app, plain)).items():
            t.add_row(name, f"{us:.2f}")
        console.print(t)
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
