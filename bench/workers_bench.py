"""`gati serve --workers N` against bare aiohttp served by N processes the same way (SO_REUSEPORT),
and N workers against one, for the handler that calls the WASM module greet.hello.

Each server is a process tree of its own: `gati serve PROJECT --workers N --no-access-log` as a
user runs it, and a bare aiohttp JSON handler in N processes with reuse_port, run as
web.run_app runs it (no logging set up, so no access lines either). Load: `wrk` (Debian package wrk), 127.0.0.1 only, fixed duration, rounds
alternating between the targets. Beside requests/s, the servers' CPU time per request (their
processes' user + system time from /proc, during the round), and wrk's own CPU time per request.

wrk runs on the same cores as the servers: on a 2-core machine N workers cannot go faster than
cores / (server CPU + wrk CPU per request). The last table prints that bound beside what each
target reached: a target near its bound is limited by the machine, not by what it shares.
Goals (issue 11): 2 workers >= 1.7x one worker; gati N workers >= 0.5x bare aiohttp N workers.
Run: .venv/bin/python -m bench workers   (skipped without wrk)
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.table import Table

from bench.common import console, goal, throughput_table, wrk
from bench.http_bench import make_project

ROUNDS, SECONDS, CONNECTIONS = 3, 3, 32
WORKERS = max(2, len(os.sched_getaffinity(0)))
CLK_TCK = os.sysconf("SC_CLK_TCK")

BARE_SERVER = '''
import multiprocessing, sys
from aiohttp import web

async def hello(request):
    return web.json_response({"message": f"hello, {request.match_info['name']}"})

def serve(port):
    app = web.Application()
    app.router.add_get("/greet/{name}", hello)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None)

if __name__ == "__main__":
    port, count = int(sys.argv[1]), int(sys.argv[2])
    processes = [multiprocessing.Process(target=serve, args=(port,)) for _ in range(count)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu_seconds() -> float:
    """User + system seconds of this process's children that were waited for (each wrk run, once it ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(root: int) -> float:
    """User + system seconds of root and every process under it (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total = 0.0
    for pid, seconds in times.items():
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += seconds
    return total


class Target:
    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str]):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}/greet/ada"
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


async def main() -> None:
    if shutil.which("wrk") is None:
        print("workers_bench: skipped (needs wrk: apt-get install wrk)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-workers-"))
    project = make_project(tmp)
    bare_script = tmp / "bare_server.py"
    bare_script.write_text(BARE_SERVER)
    env = {**os.environ, "GATI_HOME": str(tmp / "state"), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    gati = [sys.executable, "-m", "runtime.cli.main", "serve", str(project), "--host", "127.0.0.1", "--no-access-log"]
    targets: list[Target] = []
    processes: dict[str, int] = {}  # name -> how many serving processes
    try:
        for name, count, is_gati in [
            ("bare aiohttp, 1 process", 1, False),
            (f"bare aiohttp, {WORKERS} processes", WORKERS, False),
            ("gati serve --workers 1", 1, True),
            (f"gati serve --workers {WORKERS}", WORKERS, True),
        ]:
            port = free_port()
            argv = gati + ["--port", str(port), "--workers", str(count)] if is_gati else [sys.executable, str(bare_script), str(port), str(count)]
            target = Target(name, argv, port, env)
            processes[name] = count
            targets.append(target)
            target.wait_ready()  # one at a time: the first gati registers the module alone
        results: dict[str, list[float]] = {t.name: [] for t in targets}
        cpu: dict[str, list[float]] = {t.name: [] for t in targets}
        load: dict[str, list[float]] = {t.name: [] for t in targets}  # wrk's CPU µs per request
        for _ in range(ROUNDS):  # alternate, so every target sees the same machine
            for t in targets:
                before, wrk_before = tree_cpu_seconds(t.proc.pid), children_cpu_seconds()
                rate, served = await wrk(t.url, SECONDS, CONNECTIONS)
                cpu[t.name].append((tree_cpu_seconds(t.proc.pid) - before) / served * 1e6)
                load[t.name].append((children_cpu_seconds() - wrk_before) / served * 1e6)
                results[t.name].append(rate)
    finally:
        for t in targets:
            t.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    names = [t.name for t in targets]
    throughput_table(f"Workers: wrk {SECONDS}s x {ROUNDS} rounds, {CONNECTIONS} connections, handler -> WASM greet.hello", results, names[0], cpu)
    cores = len(os.sched_getaffinity(0))
    bounds = Table(title=f"What the machine allows: {cores} cores shared by the servers and wrk")
    for col in ("what", "server CPU µs/req", "wrk CPU µs/req", "bound req/s", "reached"):
        bounds.add_column(col, justify="left" if col == "what" else "right")
    bound = {}
    for name in names:
        server, client = min(cpu[name]), min(load[name])
        # One process runs on one core at a time; wrk (one thread) on any.
        bound[name] = min(cores / (server + client), processes[name] / server) * 1e6
        bounds.add_row(name, f"{server:.0f}", f"{client:.0f}", f"{bound[name]:.0f}", f"{max(results[name]) / bound[name]:.0%}")
    console.print(bounds)
    bare_n, gati_1, gati_n = (max(results[n]) for n in names[1:])
    allowed = bound[names[3]] / gati_1
    goal(
        f"gati {WORKERS} workers vs gati 1 worker (handler calling WASM)", gati_n / gati_1, ">=", 1.7,
        f"{gati_n:.0f} vs {gati_1:.0f} req/s; this machine allows {allowed:.2f}x with wrk on its cores",
    )
    goal(f"gati {WORKERS} workers vs bare aiohttp {WORKERS} processes", gati_n / bare_n, ">=", 0.5, f"{gati_n:.0f} vs {bare_n:.0f} req/s")


if __name__ == "__main__":
    asyncio.run(main())
