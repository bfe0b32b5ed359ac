"""Native modules (bubblewrap) against their bare baselines, measured in the same run.

1. A call: shortlink.preview (Go, no host call) through ModuleManager, against a bare
   grpc.aio call of the same RPC to the same process over the same Unix socket.
   Goal: at most 1.2x.
2. A cold start to the first answer (ModuleManager: cgroups, host service, bwrap, egress
   proxy, handshake, connection, first call), against a bare `bwrap` exec of the same binary
   until it prints its handshake line. Goal: at most 1.5x.

   The goal's row is a module starting in a running runtime, what a user waits for: the first
   call of a module, or a restart after a crash or a deadline. The runtime's own set-up (its
   cgroup folders, its run-directory folder, the backend: made once per runtime, 0.8 ms) is
   not in it. Until December 2026 the bench built a new ModuleManager per start and paid
   that set-up every time; that figure is still printed (the `new runtime` row) to compare.
   The floor row runs gati's bwrap command line bare, then connects a bare grpc.aio client and
   makes the first call: the module's own first connection and call are in gati's figure and
   not in the goal's baseline, so gati's own part of a start is its row minus the floor's.

Run: .venv/bin/python -m bench.native_bench    (needs bwrap and `make modules`)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import grpc
from gati_sdk.protocol import wire
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc

from bench.common import goal, percentiles, table, time_async
from runtime.core.call import CallContext
from runtime.core.capabilities.files import grants_of
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.native import bwrap

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "sample_modules" / "shortlink-go"
PAYLOAD = {"url": "https://www.debian.org/releases/bookworm/"}
CALLS = 2000
STARTS = 20
# What a start to the first answer costs with gati's sandbox and nothing of gati's runtime: the
# module's own first connection and first call are in it, as they are in gati's row.
FLOOR = "bare bwrap, gati's command line, + bare grpc.aio connect and first call"
CTX = CallContext(request_id="bench", caller="handler:/bench")
FIRST_CALL = module_pb2.CallRequest(method="preview", payload=json.dumps(PAYLOAD).encode(), context=module_pb2.CallContext(request_id="bench", timeout_ms=2000))


async def calls(state: StateDir) -> list[tuple[str, dict]]:
    manager = ModuleManager(state)
    try:
        expected = await manager.call("shortlink", "preview", PAYLOAD, ctx=CTX)
        instance = manager._running["shortlink"].sandbox.instances[0]
        channel = grpc.aio.insecure_channel(f"unix:{instance.run_dir / 'module.sock'}")
        stub = module_pb2_grpc.ModuleServiceStub(channel)
        request = module_pb2.CallRequest(
            method="preview", payload=json.dumps(PAYLOAD).encode(), context=module_pb2.CallContext(request_id="bench", timeout_ms=2000)
        )

        async def bare():
            reply = await stub.Call(request, timeout=2.0)
            return json.loads(reply.payload)

        async def gati():
            return await manager.call("shortlink", "preview", PAYLOAD, ctx=CTX)

        assert await bare() == expected == await gati()
        for _ in range(200):  # warm both paths
            await bare()
            await gati()
        rows = [("bare grpc.aio Call, same socket", percentiles(await time_async(bare, CALLS))),
                ("ModuleManager.call (native)", percentiles(await time_async(gati, CALLS)))]
        await channel.close()
        return rows
    finally:
        await manager.close()


def minimal_argv(binary: Path, run_dir: Path) -> list[str]:
    """As few bwrap options as let the binary run (it is static)."""
    return [
        "bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", str(binary), "/app/shortlink",
        "--bind", str(run_dir), "/run/gati", "--proc", "/proc", "--dev", "/dev", "--clearenv",
        "--setenv", "GATI_MODULE_SOCKET", "/run/gati/module.sock", "--setenv", "GATI_HOST_SOCKET", "/run/gati/host.sock",
        "--", "/app/shortlink",
    ]


def gati_argv(registration, run_dir: Path, info_fd: int, block_fd: int) -> list[str]:
    """The very command line the native sandbox runs (same mounts, namespaces, env), minus cgroups."""
    return bwrap.command(
        artifact=registration.loaded.artifact_path(), args=[], run_dir=run_dir, guest_run_dir="/run/gati",
        env={"GATI_MODULE_SOCKET": "/run/gati/module.sock", "GATI_HOST_SOCKET": "/run/gati/host.sock"},
        grants=grants_of(registration.manifest.capabilities.files, registration.loaded.base_dir), extra_ro={}, tmp_bytes=64 << 20, info_fd=info_fd, block_fd=block_fd,
    )


async def bare_bwrap_start(argv: list[str], run_dir: Path, pass_fds=(), answer: bool = False) -> float:
    """bwrap exec of the binary until it prints its handshake line; with answer, until a bare
    grpc.aio client has connected to its socket and had the answer to a first call."""
    for stale in run_dir.iterdir():
        stale.unlink()
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, pass_fds=pass_fds)
    line = await proc.stdout.readline()
    if answer:
        async with grpc.aio.insecure_channel(f"unix:{run_dir / 'module.sock'}") as channel:
            await module_pb2_grpc.ModuleServiceStub(channel).Call(FIRST_CALL, timeout=2.0, wait_for_ready=True)
    elapsed = time.perf_counter() - started
    assert line.decode().startswith(wire.handshake_line("")), line
    proc.kill()
    await proc.wait()
    return elapsed


async def gati_start(state: StateDir) -> float:
    """A new runtime (ModuleManager) per start: its set-up is measured too (the bench's old figure)."""
    manager = ModuleManager(state)
    started = time.perf_counter()
    await manager.call("shortlink", "preview", PAYLOAD, ctx=CTX)
    elapsed = time.perf_counter() - started
    await manager.close()
    return elapsed


async def module_start(manager: ModuleManager) -> float:
    """The module's start in a running runtime: its sandbox closed (not timed), then its first call."""
    running = manager._running.pop("shortlink", None)  # no public stop: the bench reaches in, as calls() does
    if running is not None:
        await running.sandbox.close()
    started = time.perf_counter()
    await manager.call("shortlink", "preview", PAYLOAD, ctx=CTX)
    return time.perf_counter() - started


async def cold_starts(state: StateDir, tmp: Path) -> list[tuple[str, dict]]:
    registration = state.registry.get("shortlink")
    run_dir = tmp / "bare-run"
    run_dir.mkdir()
    info_r, info_w = os.pipe()  # bwrap writes its child's pid there; nobody reads it here
    block_r, block_w = os.pipe()
    os.write(block_w, b"1" * 2 * STARTS)  # one byte releases one sandbox at once (two rows use it)
    minimal, same, floor, fresh, running = [], [], [], [], []
    await gati_start(state)  # page cache, python imports
    manager = ModuleManager(state)  # the running runtime
    await module_start(manager)
    try:
        for _ in range(STARTS):  # interleaved, so drift hits all alike
            minimal.append(await bare_bwrap_start(minimal_argv(registration.loaded.artifact_path(), run_dir), run_dir))
            same.append(await bare_bwrap_start(gati_argv(registration, run_dir, info_w, block_r), run_dir, (info_w, block_r)))
            os.read(info_r, 4096)
            floor.append(await bare_bwrap_start(gati_argv(registration, run_dir, info_w, block_r), run_dir, (info_w, block_r), answer=True))
            os.read(info_r, 4096)
            running.append(await module_start(manager))
    finally:
        await manager.close()
        for fd in (info_r, info_w, block_r, block_w):
            os.close(fd)
    # After: runtimes of one process share their cgroup folder (gati/<pid>), and closing one
    # removes it, so a new runtime per start cannot be interleaved with the running one.
    for _ in range(STARTS):
        fresh.append(await gati_start(state))
    return [
        ("bare bwrap exec to handshake line", percentiles(minimal)),
        ("bare bwrap, gati's command line, to handshake", percentiles(same)),
        (FLOOR, percentiles(floor)),
        ("ModuleManager, new runtime: start to first answer", percentiles(fresh)),
        ("ModuleManager, running runtime: start to first answer", percentiles(running)),
    ]


async def run() -> None:
    if shutil.which("bwrap") is None or not (MODULE / "build" / "shortlink").exists():
        print("native_bench: skipped (needs bwrap and sample_modules/shortlink-go built: make modules)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    try:
        state = StateDir(tmp / "state")
        register_module(state, MODULE)
        call_rows = await calls(state)
        table(f"Native call: shortlink.preview (Go), {CALLS} calls each", call_rows,
              "bare grpc.aio Call, same socket", "ModuleManager <= 1.2x bare")
        start_rows = await cold_starts(state, tmp)
        table(f"Native cold start, {STARTS} starts each", start_rows,
              "bare bwrap exec to handshake line", "start to first answer <= 1.5x bare")
        c, s = dict(call_rows), dict(start_rows)
        gati, bare = c["ModuleManager.call (native)"]["p50"], c["bare grpc.aio Call, same socket"]["p50"]
        goal("native module call p50 vs bare grpc.aio", gati / bare, "<=", 1.2, f"{gati * 1e6:.0f} vs {bare * 1e6:.0f} µs")
        gati, bare = s["ModuleManager, running runtime: start to first answer"]["p50"], s["bare bwrap exec to handshake line"]["p50"]
        goal("native module start to first answer vs bare bwrap to handshake", gati / bare, "<=", 1.5, f"{gati * 1e3:.1f} vs {bare * 1e3:.1f} ms")
        state.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    return run()


if __name__ == "__main__":
    asyncio.run(run())
