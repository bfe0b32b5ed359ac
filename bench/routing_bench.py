"""gati's Router.match on a project of 101 routes, against the plain scan it replaced (every route's
regular expression in rank order until one matches), both in this process on the same Router.

The project: 25 resources, each with /rN, /rN/{id}, /rN/{id}/items and /rN/{id}/items/{item},
and one catch-all /docs/{path}. CPU µs per match (thread time, best of 5 interleaved rounds).
Run: .venv/bin/python -m bench routing
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runtime.http.routing import MethodNotAllowed, NotFound, Router, load_routes

RESOURCES, N, ROUNDS = 25, 20000, 5
HANDLER = "async def handler(req, res, gctx, lctx):\n    return {}\n"
PATHS = {
    "a static path, the last resource": f"/r{RESOURCES - 1}",
    "one parameter": f"/r{RESOURCES - 1}/42",
    "two parameters, four parts": f"/r{RESOURCES - 1}/42/items/7",
    "the catch-all": "/docs/a/b/c",
    "no route (404)": "/nope/x",
}


def plain_scan(router: Router, method: str, raw_path: str) -> object:
    """The match before the index: every route in rank order."""
    path = raw_path.rstrip("/") or "/"
    for route in router.routes:
        m = route.regex.match(path)
        if m is not None and route.allows(method):
            return route, m.groupdict()
    return None


def indexed(router: Router, method: str, path: str) -> object:
    try:
        return router.match(method, path)
    except (NotFound, MethodNotAllowed):
        return None


def project(root: Path) -> Path:
    handlers = root / "handlers"
    for n in range(RESOURCES):
        for rel in (f"r{n}/index.py", f"r{n}/[id].py", f"r{n}/[id]/items.py", f"r{n}/[id]/items/[item].py"):
            (handlers / rel).parent.mkdir(parents=True, exist_ok=True)
            (handlers / rel).write_text(HANDLER)
    (handlers / "docs").mkdir(parents=True)
    (handlers / "docs" / "[...path].py").write_text(HANDLER)
    return handlers


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gati-bench-") as tmp:
        router = load_routes(project(Path(tmp)))
    best = {(kind, name): float("inf") for name in PATHS for kind in ("scan", "index")}
    for _ in range(ROUNDS):
        for name, path in PATHS.items():
            for kind, fn in (("scan", plain_scan), ("index", indexed)):
                start = time.thread_time()
                for _ in range(N):
                    fn(router, "GET", path)
                best[kind, name] = min(best[kind, name], (time.thread_time() - start) / N * 1e6)
    t = Table(title=f"Router.match, {len(router.routes)} routes: CPU µs per match (best of {ROUNDS} x {N})")
    for col in ("path", "plain scan (before)", "Router.match", "ratio"):
        t.add_column(col, justify="left" if col == "path" else "right")
    for name, path in PATHS.items():
        scan, index = best["scan", name], best["index", name]
        t.add_row(f"{name}: {path}", f"{scan:.2f}", f"{index:.2f}", f"{index / scan:.2f}x")
    Console().print(t)


if __name__ == "__main__":
    main()
