"""Small helpers the benchmarks share: timing loops and the ratio table."""

from __future__ import annotations

import statistics
import time
from typing import Awaitable, Callable

from aiohttp import web
from rich.console import Console
from rich.table import Table


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


def table(title: str, rows: list[tuple[str, dict[str, float]]], baseline: str, goal: str = "") -> None:
    """Print latency rows (seconds) with each row's p50 ratio against the baseline row."""
    base = dict(rows)[baseline]["p50"]
    t = Table(title=title + (f"  (goal: {goal})" if goal else ""))
    for col in ("what", "p50 µs", "p99 µs", "mean µs", "p50 ratio"):
        t.add_column(col, justify="left" if col == "what" else "right")
    for name, stats in rows:
        t.add_row(name, f"{stats['p50'] * 1e6:.1f}", f"{stats['p99'] * 1e6:.1f}", f"{stats['mean'] * 1e6:.1f}", f"{stats['p50'] / base:.2f}x")
    Console().print(t)


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on a free 127.0.0.1 port; returns the runner (to clean up) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def throughput_table(title: str, results: dict[str, list[float]], baseline: str) -> None:
    """Print the best requests/s of each target over the rounds, with its ratio to the baseline's."""
    base = max(results[baseline])
    t = Table(title=title)
    for col in ("what", "best req/s", "ratio"):
        t.add_column(col, justify="left" if col == "what" else "right")
    for name, values in results.items():
        t.add_row(name, f"{max(values):.0f}", f"{max(values) / base:.2f}x")
    Console().print(t)
