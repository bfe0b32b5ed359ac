"""A container module called through gctx.modules against bare grpcio and bare `docker run`.

Everything runs against the real engine with the test probe (runtime/reports/probes/oci),
its `echo` method, in one process and one run:

- call latency (p50/p99) and calls/s through the module client, against a bare grpcio
  call (grpc.aio, and the blocking stub) to the same container over the same socket;
  goal: at most 1.2x the bare latency
- cold start to first answer through the module client (container, proxy, host service,
  health), against a bare `docker run` (engine API, same image, same socket mount) and
  a bare grpcio client polling until the first answer; goal: at most 1.3x

Run: .venv/bin/python -m bench.oci_bench   (or: make bench)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker
import grpc
from docker.types import Mount
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from rich.table import Table

from bench.common import console, goal, percentiles, table, time_async, time_sync
from runtime.core.call import CallContext, request_context
from runtime.core.state import StateDir
from runtime.modules import ModuleSet, register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "oci"
N = 2000
COLD = 8
CONCURRENCY = 16
THROUGHPUT_S = 3.0
PAYLOAD = {"name": "bench", "n": [1, 2, 3]}
DATA = json.dumps(PAYLOAD, separators=(",", ":")).encode()


def request(method: str = "echo") -> module_pb2.CallRequest:
    return module_pb2.CallRequest(method=method, payload=DATA, context=module_pb2.CallContext(request_id="bench", timeout_ms=3000))


async def throughput(call) -> float:
    """Calls per second with CONCURRENCY callers for THROUGHPUT_S seconds."""
    done = 0
    stop = time.perf_counter() + THROUGHPUT_S

    async def worker():
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - start)


async def warm_calls(state: StateDir) -> tuple[list, dict]:
    manager = ModuleManager(state)
    try:
        return await _warm_calls(manager)
    finally:
        await manager.close()


async def _warm_calls(manager: ModuleManager) -> tuple[list, dict]:
    request_context.set(CallContext(request_id="bench", caller="handler:/bench"))
    probe = ModuleSet(manager).probe
    assert await probe.echo(PAYLOAD) == PAYLOAD
    socket = manager._running["probe"].sandbox.instances[0].client.socket_path

    channel = grpc.aio.insecure_channel(f"unix:{socket}")
    stub = module_pb2_grpc.ModuleServiceStub(channel)
    req = request()

    async def bare_aio():
        reply = await stub.Call(req, timeout=3)
        return json.loads(reply.payload)

    sync_channel = grpc.insecure_channel(f"unix:{socket}")
    sync_stub = module_pb2_grpc.ModuleServiceStub(sync_channel)

    def bare_sync():
        return json.loads(sync_stub.Call(req, timeout=3).payload)

    assert await bare_aio() == bare_sync() == PAYLOAD
    for _ in range(200):  # warm every path alike
        await bare_aio(), bare_sync(), await probe.echo(PAYLOAD)
    rows = [
        ("bare grpcio (blocking stub)", percentiles(time_sync(bare_sync, N))),
        ("bare grpcio (grpc.aio)", percentiles(await time_async(bare_aio, N))),
        ("gctx.modules.probe.echo", percentiles(await time_async(lambda: probe.echo(PAYLOAD), N))),
    ]
    rates = {"bare grpcio (grpc.aio)": await throughput(bare_aio), "gctx.modules.probe.echo": await throughput(lambda: probe.echo(PAYLOAD))}
    sync_channel.close()
    await channel.close()
    return rows, rates


async def cold_through_gati(state: StateDir) -> float:
    manager = ModuleManager(state)
    try:
        start = time.perf_counter()
        assert await manager.call("probe", "echo", PAYLOAD) == PAYLOAD
        return time.perf_counter() - start
    finally:
        await manager.close()


def cold_bare_docker(client: docker.DockerClient, image: str, tmp: Path) -> float:
    """`docker run` of the same image, then a bare grpcio client retrying until the first answer."""
    run_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="bare-"))
    run_dir.chmod(0o777)
    socket = run_dir / "module.sock"
    start = time.perf_counter()
    container = client.containers.run(
        image, detach=True, network_mode="none", user="65534:65534",
        mounts=[Mount("/run/gati", str(run_dir), type="bind")],
        environment={"GATI_MODULE_SOCKET": "/run/gati/module.sock", "GATI_HOST_SOCKET": "/run/gati/host.sock"},
    )
    try:
        while not socket.exists():
            time.sleep(0.002)
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            stub = module_pb2_grpc.ModuleServiceStub(channel)
            while True:
                try:
                    assert json.loads(stub.Call(request(), timeout=3, wait_for_ready=True).payload) == PAYLOAD
                    break
                except grpc.RpcError:
                    time.sleep(0.002)
        return time.perf_counter() - start
    finally:
        container.remove(force=True)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-oci-"))
    client = docker.from_env()
    try:
        module = tmp / "probe"
        shutil.copytree(PROBE, module)
        manifest = module / "module.toml"
        # processes counts threads too: the SDK server runs one thread per call in flight.
        manifest.write_text(manifest.read_text().replace("processes = 24", "processes = 64").replace("warm = 1", f"warm = 1\nconcurrency = {CONCURRENCY}"))
        state = StateDir(tmp / "state")
        image = register_module(state, module).artifact_sha256

        rows, rates = await warm_calls(state)
        table(f"container call: probe.echo, {N} calls each", rows, "bare grpcio (grpc.aio)", "gctx.modules <= 1.2x bare")

        bare_cold, gati_cold = [], []
        for _ in range(COLD):  # interleaved, so that drift in the engine hits both alike
            bare_cold.append(await asyncio.to_thread(cold_bare_docker, client, image, tmp))
            gati_cold.append(await cold_through_gati(state))

        base_rate = rates["bare grpcio (grpc.aio)"]
        base_p50 = dict(rows)["bare grpcio (grpc.aio)"]["p50"]
        summary = Table(title="container module: ratios against baselines measured in this run")
        for col in ("measure", "baseline", "gati", "ratio", "goal"):
            summary.add_column(col, justify="left" if col in ("measure", "goal") else "right")
        gati_p50 = dict(rows)["gctx.modules.probe.echo"]["p50"]
        summary.add_row("call p50 (µs)", f"{base_p50 * 1e6:.0f}", f"{gati_p50 * 1e6:.0f}", f"{gati_p50 / base_p50:.2f}x", "<= 1.2x bare grpc.aio")
        gati_p99, base_p99 = dict(rows)["gctx.modules.probe.echo"]["p99"], dict(rows)["bare grpcio (grpc.aio)"]["p99"]
        summary.add_row("call p99 (µs)", f"{base_p99 * 1e6:.0f}", f"{gati_p99 * 1e6:.0f}", f"{gati_p99 / base_p99:.2f}x", "")
        gati_rate = rates["gctx.modules.probe.echo"]
        summary.add_row(f"calls/s ({CONCURRENCY} callers)", f"{base_rate:.0f}", f"{gati_rate:.0f}", f"{gati_rate / base_rate:.2f}x", "(higher is better)")
        b, g = statistics.median(bare_cold), statistics.median(gati_cold)
        summary.add_row(f"cold start, median of {COLD} (ms)", f"{b * 1e3:.0f}", f"{g * 1e3:.0f}", f"{g / b:.2f}x", "<= 1.3x bare docker run")
        console.print(summary)
        goal("container module call p50 vs bare grpc.aio", gati_p50 / base_p50, "<=", 1.2, f"{gati_p50 * 1e6:.0f} vs {base_p50 * 1e6:.0f} µs")
        state.close()
    finally:
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
