"""Small helpers the benchmarks share: timing loops, the ratio tables, and the goals of issue 11.

Each benchmark reports the ratios that have a goal with goal(...); `python -m bench` prints them
all at the end, one row per ratio with the figure measured now beside its goal.
"""

from __future__ import annotations

import asyncio
import operator
import re
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web
from rich.console import Console
from rich.table import Table

console = Console(width=150)  # wide enough that no table wraps when the output is a file or a pipe


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "mean": statistics.fmean(ordered),
    }


def time_sync(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


async def time_async(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


def table(title: str, rows: list[tuple[str, dict[str, float]]], baseline: str, goal: str = "", cpu: dict[str, float] | None = None) -> None:
    """Print latency rows (seconds) with each row's p50 ratio against the baseline row.

    cpu: per-call CPU µs of each row (thread time), which a busy machine disturbs far less than wall time."""
    base = dict(rows)[baseline]["p50"]
    t = Table(title=title + (f"  (goal: {goal})" if goal else ""))
    columns = ("what", "p50 µs", "p99 µs", "mean µs", "p50 ratio") + (("CPU µs", "CPU ratio") if cpu else ())
    for col in columns:
        t.add_column(col, justify="left" if col == "what" else "right")
    for name, stats in rows:
        cells = [name, f"{stats['p50'] * 1e6:.1f}", f"{stats['p99'] * 1e6:.1f}", f"{stats['mean'] * 1e6:.1f}", f"{stats['p50'] / base:.2f}x"]
        if cpu:
            cells += [f"{cpu[name]:.1f}", f"{cpu[name] / cpu[baseline]:.2f}x"]
        t.add_row(*cells)
    console.print(t)


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on a free 127.0.0.1 port; returns the runner (to clean up) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def throughput_table(title: str, results: dict[str, list[float]], baseline: str, cpu: dict[str, list[float]] | None = None) -> None:
    """Print the best requests/s of each target over the rounds, with its ratio to the baseline's.

    cpu: the server's CPU µs per request of each round; the best is shown (a busy machine moves it far less)."""
    base = max(results[baseline])
    t = Table(title=title)
    for col in ("what", "best req/s", "ratio") + (("CPU µs/req", "CPU ratio") if cpu else ()):
        t.add_column(col, justify="left" if col == "what" else "right")
    for name, values in results.items():
        cells = [name, f"{max(values):.0f}", f"{max(values) / base:.2f}x"]
        if cpu:
            cells += [f"{min(cpu[name]):.0f}", f"{min(cpu[name]) / min(cpu[baseline]):.2f}x"]
        t.add_row(*cells)
    console.print(t)


WRK_RE = re.compile(r"(\d+) requests in .*?Requests/sec:\s+([\d.]+)", re.S)


async def wrk(url: str, seconds: float, connections: int, script: Path | None = None, threads: int = 1) -> tuple[float, int]:
    """(requests/s, requests) of `wrk` against url; raises when any answer was not 2xx."""
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"] + (["-s", str(script)] if script else []) + [url]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    match = WRK_RE.search(out)
    if "Non-2xx" in out or proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return float(match.group(2)), int(match.group(1))


@dataclass
class Goal:
    path: str  # what is measured against what
    now: float  # the ratio measured in this run
    op: str  # ">=" or "<="
    target: float
    detail: str = ""  # the two figures the ratio comes from

    @property
    def met(self) -> bool:
        return {">=": operator.ge, "<=": operator.le}[self.op](round(self.now, 2), self.target)


GOALS: list[Goal] = []


def goal(path: str, now: float, op: str, target: float, detail: str = "") -> Goal:
    """Record one ratio of the goals table (printed by `python -m bench` after every benchmark ran)."""
    g = Goal(path, now, op, target, detail)
    GOALS.append(g)
    return g


def goals_table(goals: list[Goal]) -> None:
    t = Table(title="Goals (issue 11): every ratio measured in this run")
    for col in ("path", "now", "goal", "", "from"):
        t.add_column(col, justify="right" if col in ("now", "goal") else "left")
    for g in goals:
        t.add_row(g.path, f"{g.now:.2f}x", f"{g.op} {g.target:g}x", "met" if g.met else "NOT met", g.detail)
    console.print(t)


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used: per-request CPU stays readable when the machine is busy."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
