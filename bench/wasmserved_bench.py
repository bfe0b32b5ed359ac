"""Why a WASM call costs about twice as much served as in a loop: the call measured inside the server.

The gati app of `python -m bench http` (a handler calling greet.hello) is served to `wrk`, and
every WasmSandbox._run (store, instance, call, store dropped: one C call) is timed by this
thread's CPU clock, with the minor page faults it took. Then the same call in a loop with nothing between calls, and, on a
machine with 2 cores or more, served again with wrk held to one core and the server to another,
so that the load generator never preempts the server (involuntary context switches per request
are printed beside). If the served call cost more because of the allocator (another slot each
time, page faults, memory wiped; an earlier round also printed each call's memory
address: always the same slot) or because wrk took the server's core, the rows would say so;
what they show is docs/performance.md's "The WASM call served".

Run: .venv/bin/python -m bench wasmserved
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from rich.table import Table

from bench.common import WRK_RE, console, serve, wrk
from bench.http_bench import make_project
from runtime.core.call import CallContext
from runtime.http.app import build_app
from sandboxes.wasm.sandbox import WasmSandbox

WRK_SECONDS, CONNECTIONS, ROUNDS, HOT_CALLS = 3, 16, 3, 3000


class Probe:
    """Wraps WasmSandbox._run for the bench's life (put back by close())."""

    def __init__(self) -> None:
        self.run = WasmSandbox._run
        self.sandbox: WasmSandbox | None = None
        self.reset()
        probe, run = self, self.run

        def timed_run(sandbox, *args):
            probe.sandbox = sandbox
            faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            start = time.thread_time_ns()
            try:
                return run(sandbox, *args)
            finally:
                probe.cpu_ns += time.thread_time_ns() - start
                probe.faults += resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults
                probe.calls += 1

        WasmSandbox._run = timed_run

    def reset(self) -> None:
        self.cpu_ns = self.faults = self.calls = 0

    def close(self) -> None:
        WasmSandbox._run = self.run


async def pinned_wrk(url: str) -> tuple[float, int]:
    """wrk on core 1 while this process runs on core 0 (put back after)."""
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", "wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{WRK_SECONDS}s", url, stdout=asyncio.subprocess.PIPE
        )
        out = (await proc.communicate())[0].decode()
    finally:
        os.sched_setaffinity(0, mask)
    match = WRK_RE.search(out)
    if match is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return float(match.group(2)), int(match.group(1))


async def main() -> None:
    if shutil.which("wrk") is None:
        console.print("wasmserved: needs wrk (Debian package wrk); skipped")
        return
    pin = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None and {0, 1} <= os.sched_getaffinity(0)
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    probe = Probe()
    runner = None
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    try:
        runner, port = await serve(build_app(make_project(tmp)))
        url = f"http://127.0.0.1:{port}/greet/ada"
        await wrk(url, 1, CONNECTIONS)  # warm-up: the module started, the method inline
        ctx = CallContext(caller="bench")
        for _ in range(ROUNDS):
            for name, load in [("served (wrk free to share the cores)", wrk)] + ([("served, wrk and server on 2 cores", pinned_wrk)] if pin else []):
                probe.reset()
                before = resource.getrusage(resource.RUSAGE_SELF)
                _, served = await (load(url) if load is pinned_wrk else load(url, WRK_SECONDS, CONNECTIONS))
                after = resource.getrusage(resource.RUSAGE_SELF)
                process_us = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / served * 1e6
                rows.setdefault(name, []).append(
                    (probe.cpu_ns / probe.calls / 1e3, probe.faults / probe.calls, (after.ru_nivcsw - before.ru_nivcsw) / served, process_us)
                )
            probe.reset()
            for _ in range(HOT_CALLS):  # the sandbox alone, call after call: everything it touches stays in cache
                await probe.sandbox.call("hello", b'{"name":"ada"}', ctx, 5.0)
            rows.setdefault("hot: sandbox.call in a loop", []).append((probe.cpu_ns / probe.calls / 1e3, probe.faults / probe.calls, 0.0, 0.0))
    finally:
        probe.close()
        if runner is not None:
            await runner.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(title="A WASM call (WasmSandbox._run: store, instance, call, drop) served and hot; best round of each")
    for col in ("what", "_run CPU µs", "minor faults / call", "invol. ctx switches / req", "process CPU µs / req"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for name, measured in rows.items():
        cpu, faults, switches, process = min(measured)
        table.add_row(name, f"{cpu:.1f}", f"{faults:.2f}", f"{switches:.2f}" if process else "-", f"{process:.0f}" if process else "-")
    console.print(table)
    console.print("_run's CPU includes two getrusage calls (~1-2 µs) of the probe itself.")
