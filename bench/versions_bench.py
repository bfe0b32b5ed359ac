"""Version resolution per request (runtime.http.versions) against the route match alone.

The project is docs/versions.md's worked example (examples/versions: /users/{id} in three
versions, with SINCE dates and a transformer). Each row is router.match plus, for a versioned
route, VersionSet.pick on a real aiohttp request: no version asked (the default), a version
header, a date pin, the query parameter. The figure that has a goal is what resolution adds to
the match: pick's cost, per request, in µs of one core (median of batches of 1000 calls).
Goal (issue 12): < 20 µs.  Run: .venv/bin/python -m bench versions
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from rich.table import Table

from bench.common import console
from runtime.http.routing import load_routes
from runtime.http.versions.availability import RETIRED, Out

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "versions"
BATCH, BATCHES = 1000, 40
GOAL_US = 20.0


def per_call_us(fn) -> float:
    samples = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(BATCH):
            fn()
        samples.append((time.perf_counter() - start) / BATCH * 1e6)
    return statistics.median(samples)


def main() -> None:
    router = load_routes(EXAMPLE / "handlers")
    cases = {
        "no version asked (default)": make_mocked_request("PUT", "/users/7"),
        "Gati-Version: 1": make_mocked_request("PUT", "/users/7", headers=CIMultiDict({"Gati-Version": "1"})),
        "Accept-Version: 3": make_mocked_request("PUT", "/users/7", headers=CIMultiDict({"Accept-Version": "3"})),
        "Gati-Version: 2026-12-01 (date pin)": make_mocked_request("PUT", "/users/7", headers=CIMultiDict({"Gati-Version": "2026-12-01"})),
        "?version=1": make_mocked_request("PUT", "/users/7?version=1"),
    }

    def match_only(request=cases["no version asked (default)"]):
        return router.match(request.method, request.rel_url.raw_path)

    def resolve(request):
        route = router.match(request.method, request.rel_url.raw_path).route
        return route.versions.pick(request)

    for request in cases.values():
        resolve(request)  # warm: aiohttp parses the query once per request and caches it, as in a real request
    base = per_call_us(match_only)
    t = Table(title=f"route match + version resolution, µs per request (goal: resolution adds < {GOAL_US:g} µs)")
    for col in ("what", "µs", "added by resolution µs", ""):
        t.add_column(col, justify="left" if col in ("what", "") else "right")
    t.add_row("route match alone", f"{base:.2f}", "", "")
    worst = 0.0
    for name, request in cases.items():
        us = per_call_us(lambda r=request: resolve(r))
        worst = max(worst, us - base)
        t.add_row(f"match + {name}", f"{us:.2f}", f"{us - base:.2f}", "met" if us - base < GOAL_US else "NOT met")
    # A retirement (or health) took the default out: requests asking for nothing fall back (availability.py).
    vs = router.match("PUT", "/users/7").route.versions
    vs.mark(vs.default, Out(RETIRED, "bench"))  # retired: version 1, which runs its handler through transformers, stays in service
    request = cases["no version asked (default)"]
    assert resolve(request).version != vs.default
    us = per_call_us(lambda: resolve(request))
    worst = max(worst, us - base)
    t.add_row("match + default out of service (fallback)", f"{us:.2f}", f"{us - base:.2f}", "met" if us - base < GOAL_US else "NOT met")
    vs.mark(vs.default, None)
    console.print(t)
    console.print(f"version resolution adds at most {worst:.2f} µs per request (goal < {GOAL_US:g} µs): {'met' if worst < GOAL_US else 'NOT met'}")


if __name__ == "__main__":
    main()
