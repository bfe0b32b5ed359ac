"""A WASM method called through gctx.modules against bare wasmtime-py calls of the same export.

Baselines, in the same process and run:
- bare, fresh instance: new Store + instantiate + call (what gati does per call, for isolation)
- bare, reused instance: one instance, call the export again and again (the floor)
Goal: gctx.modules at most 1.5x the bare call.  Run: .venv/bin/python -m bench.wasm_bench
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import wasmtime

from bench.common import percentiles, table, time_async, time_sync
from runtime.core.call import CallContext, request_context
from runtime.core.state import StateDir
from runtime.modules import ModuleSet, register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "sample_modules" / "greet-wat"
N = 3000
PAYLOAD = {"name": "bench"}


def bare_wasmtime(wasm: Path):
    """The same export, called with the smallest host that can feed it input and take its output."""
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(wasm))
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    data = json.dumps(PAYLOAD).encode()
    out: dict = {}
    i32 = wasmtime.ValType.i32()
    linker.define_func("gati", "input_len", wasmtime.FuncType([], [i32]), lambda: len(data))

    def input_read(caller, ptr):
        caller.get("memory").write(caller, data, ptr)

    def output(caller, ptr, length):
        out["v"] = bytes(caller.get("memory").read(caller, ptr, ptr + length))

    linker.define_func("gati", "input_read", wasmtime.FuncType([i32], []), input_read, access_caller=True)
    linker.define_func("gati", "output", wasmtime.FuncType([i32, i32], []), output, access_caller=True)
    for name, params, results in [("error", 2, 0), ("log", 3, 0), ("result_len", 0, 1), ("result_read", 1, 0),
                                  ("kv_get", 4, 1), ("kv_put", 6, 1)]:
        stub = (lambda *a: 0) if results else (lambda *a: None)
        linker.define_func("gati", name, wasmtime.FuncType([i32] * params, [i32] * results), stub)
    pre = linker.instantiate_pre(module)

    def fresh():
        store = wasmtime.Store(engine)
        instance = pre.instantiate(store)
        instance.exports(store)["hello"](store)
        return json.loads(out["v"])

    store = wasmtime.Store(engine)
    instance = pre.instantiate(store)
    hello = instance.exports(store)["hello"]

    def reused():
        hello(store)
        return json.loads(out["v"])

    return fresh, reused


async def through_gati(state: StateDir) -> list[float]:
    manager = ModuleManager(state)
    request_context.set(CallContext(request_id="bench", caller="handler:/bench"))
    greet = ModuleSet(manager).greet
    await greet.hello(PAYLOAD)  # compile / load once
    samples = await time_async(lambda: greet.hello(PAYLOAD), N)
    await manager.close()
    return samples


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    try:
        state = StateDir(tmp / "state")
        registration = register_module(state, MODULE)
        fresh, reused = bare_wasmtime(registration.loaded.artifact_path())
        assert fresh() == reused() == {"message": "hello, bench"}
        rows = [
            ("bare wasmtime-py, reused instance", percentiles(time_sync(reused, N))),
            ("bare wasmtime-py, fresh instance", percentiles(time_sync(fresh, N))),
            ("gctx.modules.greet.hello", percentiles(asyncio.run(through_gati(state)))),
        ]
        table(f"WASM call: greet.hello, {N} calls each", rows, "bare wasmtime-py, fresh instance", "gctx.modules <= 1.5x bare")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
