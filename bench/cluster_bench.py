"""Cluster mode: shared state on NATS JetStream against the embedded SQLite files, in one run.

    .venv/bin/python -m bench cluster      (or: python bench/cluster_bench.py [--seconds 5])

Starts its own nats-server with JetStream on loopback (a temp store), then measures:

    kv             get / put / increment / cas on the SQLite store (baseline) and on JetStream KV
    rate limit     one admitted check: the in-memory token bucket (baseline) and the shared one
    versions       Timescape's store: a round's served batch (1 and 20 versions), a retire, reading
                   the rows, on versions.db (baseline) and on the shared store; and how long a
                   retire made on one instance takes to be read on another
    throughput     POST /count (a handler calling a WASM module that increments a kv counter)
                   through `gati serve`: one embedded instance (baseline), one cluster instance,
                   and two cluster instances sharing the NATS server, each under the same load

Latencies are per operation, one at a time (what one request pays). Throughput is requests
per second with 32 requests in flight, spread evenly over the instances; on a machine with
few cores the load generator and the instances share them, which the ratio includes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from bench.common import percentiles, table, time_async, time_sync
from runtime.cluster.state import ClusterState
from runtime.core.kv import SqliteKvStore
from runtime.http.ratelimit import Rate, RateLimiter, SharedRateLimiter
from runtime.http.versions.cluster_store import ClusterVersionStore
from runtime.http.versions.store import VersionStore

ROOT = Path(__file__).resolve().parents[1]
KVATOMIC = ROOT / "tests" / "modules" / "kvatomic"
GATI = str(Path(sys.executable).parent / "gati")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nats(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    config = folder / "nats.conf"
    config.write_text(f'listen: "127.0.0.1:{port}"\nmax_payload: 2MB\njetstream {{ store_dir: "{folder / "store"}" }}\n')
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nats-server did not start")


async def kv_latencies(folder: Path, url: str, n: int) -> None:
    sqlite = SqliteKvStore(folder / "kv.db")
    state = ClusterState.connect(folder / "cluster-state", url, namespace="bench")
    nats = state.kv
    rows = []
    try:
        for name, kv in (("sqlite", sqlite), ("jetstream", nats)):
            await kv.put("b", "k", b"value")
            rows.append((f"{name} get", percentiles(await time_async(lambda: kv.get("b", "k"), n))))
            rows.append((f"{name} put", percentiles(await time_async(lambda: kv.put("b", "k", b"value"), n))))
            rows.append((f"{name} increment", percentiles(await time_async(lambda: kv.increment("b", "n", 1), n))))

            async def cas():
                entry = await kv.entry("b", "k")
                await kv.cas("b", "k", b"value", entry.revision)

            rows.append((f"{name} entry+cas", percentiles(await time_async(cas, n))))
        table("kv operation latency (one at a time)", rows, baseline="sqlite get")

        rate = Rate.parse("1000000/s")
        local, shared = RateLimiter(), SharedRateLimiter(state.buckets)

        async def local_hit():
            local.hit("/r", "ip:1", rate)

        limits = [
            ("in-memory bucket", percentiles(await time_async(local_hit, n))),
            ("shared bucket (JetStream)", percentiles(await time_async(lambda: shared.hit("/r", "ip:1", rate), n))),
        ]
        table("rate-limit check latency (admitted)", limits, baseline="in-memory bucket")
    finally:
        sqlite.close()
        state.close()


def version_store_latencies(folder: Path, url: str, n: int) -> None:
    """What the Timescape's background round and `gati versions retire` pay (never a request)."""
    graphs = [{"route": f"/r{i}", "versions": [{"version": "1", "fingerprint": f"f{i}"}]} for i in range(20)]
    a = ClusterState.connect(folder / "versions-a", url, namespace="bench")
    b = ClusterState.connect(folder / "versions-b", url, namespace="bench")
    stores = {"versions.db": VersionStore(folder / "versions.db"), "shared": ClusterVersionStore.open(a.cluster)}
    other = ClusterVersionStore.open(b.cluster)
    rows = []
    try:
        for name, store in stores.items():
            store.record(graphs, {}, time.time())
            rows.append((f"{name} served, 1 version", percentiles(time_sync(lambda: store.served([("/r0", "1")], time.time()), n))))
            rows.append((f"{name} served, 20 versions", percentiles(time_sync(lambda: store.served([(g["route"], "1") for g in graphs], time.time()), n // 10))))
            rows.append((f"{name} retire", percentiles(time_sync(lambda: store.set_state("/r1", "1", "retired", "bench", time.time()), n))))
            rows.append((f"{name} versions()", percentiles(time_sync(store.versions, n))))
        table("version store operations (one at a time; the Timescape's round, the CLI)", rows, baseline="versions.db served, 1 version")
        seen = []
        for i in range(50):
            state = "retired" if i % 2 == 0 else "live"
            started = time.perf_counter()
            stores["shared"].set_state("/r2", "1", state, "bench", time.time())
            while other.versions()[("/r2", "1")].state != state:
                time.sleep(0.001)
            seen.append(time.perf_counter() - started)
        table("a retire on one instance read by another's replica", [("write + replica refresh", percentiles(seen))], baseline="write + replica refresh")
    finally:
        for store in (*stores.values(), other):
            store.close()
        a.close()
        b.close()


HANDLER = """
METHODS = ["POST"]

async def handler(req, res, gctx, lctx):
    return {"value": await gctx.modules.kvatomic.count({})}
"""


def project(folder: Path, toml: str) -> Path:
    (folder / "handlers").mkdir(parents=True)
    (folder / "handlers" / "count.py").write_text(textwrap.dedent(HANDLER))
    shutil.copytree(KVATOMIC, folder / "modules" / "kvatomic")
    (folder / "gati.toml").write_text(toml)
    return folder


async def serve(folder: Path, session: aiohttp.ClientSession) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GATI_HOME"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}"
    proc = subprocess.Popen([GATI, "serve", str(folder), "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "/readyz") as r:
                if r.status == 200:
                    return proc, url
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gati serve {folder} did not start")


async def load(session: aiohttp.ClientSession, urls: list[str], seconds: float, in_flight: int = 32) -> float:
    done, failed = 0, 0
    stop = time.monotonic() + seconds

    async def worker(url: str) -> None:
        nonlocal done, failed
        while time.monotonic() < stop:
            async with session.post(url + "/count") as r:
                await r.read()
                done, failed = (done + 1, failed) if r.status == 200 else (done, failed + 1)

    started = time.monotonic()
    await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(in_flight)))
    if failed:
        print(f"  ({failed} requests failed)")
    return done / (time.monotonic() - started)


async def throughput(folder: Path, url: str, seconds: float) -> None:
    cluster_toml = f'[cluster]\nnats = "{url}"\nnamespace = "throughput"\n'
    embedded = project(folder / "embedded", "")
    nodes = [project(folder / name, cluster_toml) for name in ("one", "two")]
    results = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for label, folders in (("1 instance, embedded (SQLite)", [embedded]), ("1 instance, cluster", nodes[:1]), ("2 instances, cluster", nodes)):
            procs = [await serve(f, session) for f in folders]
            try:
                await load(session, [u for _, u in procs], 1.0)  # warm: sandboxes started, connections open
                results.append((label, await load(session, [u for _, u in procs], seconds)))
            finally:
                for proc, _ in procs:
                    proc.send_signal(signal.SIGINT)
                for proc, _ in procs:
                    proc.wait(timeout=30)
    base = results[0][1]
    t = Table(title=f"POST /count throughput, 32 in flight, {seconds:.0f} s each ({os.cpu_count()} cores)")
    for col in ("what", "requests/s", "ratio"):
        t.add_column(col, justify="left" if col == "what" else "right")
    for label, rps in results:
        t.add_row(label, f"{rps:,.0f}", f"{rps / base:.2f}x")
    Console().print(t)
    two, one = results[2][1], results[1][1]
    print(f"two cluster instances / one: {two / one:.2f}x")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="operations per latency row")
    parser.add_argument("--seconds", type=float, default=5.0, help="load per throughput row")
    parser.add_argument("--versions-only", action="store_true", help="stop after the version store's rows")
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory(prefix="gati-cluster-bench-") as tmp:
        folder = Path(tmp)
        proc, url = start_nats(folder)
        try:
            await kv_latencies(folder, url, args.n)
            version_store_latencies(folder, url, args.n)
            if args.versions_only:
                return
            await throughput(folder, url, args.seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
