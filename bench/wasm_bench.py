"""A WASM method called through gctx.modules against bare wasmtime-py and Extism, in one run.

Rows, all in this process, measured in interleaved rounds so that drift in machine load hits
every row alike:
- bare wasmtime-py, reused instance: one instance, the export called again and again (no isolation)
- bare wasmtime-py, fresh instance: new Store + instantiate + call, as its public API is written
  (what gati promises per call: a fresh instance)
- gctx.modules.greet.hello: gati's call, a fresh instance per call
- Extism (its Python host SDK), the same function against Extism's ABI: a reused plugin, and a
  fresh plugin per call from a module compiled once (Extism's own isolated call). Skipped when
  the `extism` package (the bench extra) is not installed.

Then the gati call layer by layer (best of interleaved rounds): what each layer adds.
Goals (issue 11): gctx.modules <= 1.3x bare fresh; >= 3x faster than a fresh Extism plugin;
<= 4x a reused Extism plugin.   Run: .venv/bin/python -m bench wasm
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import wasmtime
from rich.table import Table

from bench.common import console, goal, percentiles, table
from runtime.core.call import CallContext, request_context
from runtime.core.state import StateDir
from runtime.modules import ModuleSet, register_module
from runtime.modules.manager import ModuleManager
from sandboxes.wasm import abi

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "sample_modules" / "greet-wat"
ROUNDS, PER_ROUND = 10, 300
PAYLOAD = {"name": "bench"}
DATA = json.dumps(PAYLOAD, separators=(",", ":")).encode()
EXPECTED = {"message": "hello, bench"}


def bare_wasmtime(wasm: Path):
    """The same export, called with the smallest host that can feed it input and take its output."""
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(wasm))
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    out: dict = {}
    i32 = wasmtime.ValType.i32()
    linker.define_func("gati", "input_len", wasmtime.FuncType([], [i32]), lambda: len(DATA))

    def input_read(caller, ptr):
        caller.get("memory").write(caller, DATA, ptr)

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


# greet.wat against Extism's ABI: the gati imports it uses become small functions over Extism's
# kernel (input bytes loaded one by one, output stored one by one, as Extism's own PDKs do), so
# both hosts run the very same JSON parsing and building code.
EXTISM_IMPORTS = """  (import "extism:host/env" "input_length" (func $x_input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $x_input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $x_alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $x_store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $x_output_set (param i64 i64)))"""

EXTISM_SHIMS = """
  (func $input_len (result i32) (i32.wrap_i64 (call $x_input_length)))
  (func $input_read (param $p i32) (local $i i32) (local $n i32)
    (local.set $n (call $input_len))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (local.get $p) (local.get $i)) (call $x_input_load_u8 (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  (func $output (param $p i32) (param $n i32) (local $at i64) (local $i i32)
    (local.set $at (call $x_alloc (i64.extend_i32_u (local.get $n))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $x_store_u8 (i64.add (local.get $at) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $x_output_set (local.get $at) (i64.extend_i32_u (local.get $n))))
  (func $error (param i32 i32))
  (func $result_len (result i32) (i32.const 0))
  (func $result_read (param i32))
  (func $kv_get (param i32 i32 i32 i32) (result i32) (i32.const 3))
  (func $kv_put (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 3))
)"""


def extism_greet_wasm() -> bytes:
    source = (MODULE / "greet.wat").read_text()
    gati_imports = "\n".join(line for line in source.splitlines() if line.strip().startswith('(import "gati"'))
    adapted = source.replace(gati_imports, EXTISM_IMPORTS).rstrip()
    assert adapted.endswith(")")
    return bytes(wasmtime.wat2wasm(adapted[:-1] + EXTISM_SHIMS))


def extism_targets():
    """(reused plugin, fresh plugin per call) calling greet's hello through Extism, or None without the package."""
    try:
        import extism
        from extism.extism import CompiledPlugin
    except ImportError:
        return None
    compiled = CompiledPlugin(extism_greet_wasm(), False, [])  # compiled once, as gati compiles once
    plugin = extism.Plugin(compiled)

    def reused():
        return json.loads(plugin.call("hello", DATA))

    def fresh():
        return json.loads(extism.Plugin(compiled).call("hello", DATA))

    return reused, fresh


async def measure(targets: dict[str, object]) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-call seconds of every target in interleaved rounds (a target is a sync or async callable),
    and each target's best per-call CPU µs over the rounds (this thread's CPU time)."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    cpu = {name: float("inf") for name in targets}
    for _ in range(ROUNDS):
        for name, fn in targets.items():
            out = samples[name]
            cpu_start = time.thread_time()
            for _ in range(PER_ROUND):
                start = time.perf_counter()
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
                out.append(time.perf_counter() - start)
            cpu[name] = min(cpu[name], (time.thread_time() - cpu_start) / PER_ROUND * 1e6)
    return samples, cpu


async def layers(manager: ModuleManager, greet) -> dict[str, float]:
    """Best per-call CPU µs of each layer of the gati call, interleaved (each row includes the ones above).

    CPU time of this thread: every layer here runs on it (the calls are short, so inline)."""
    ctx = request_context.get()
    running = manager._running["greet"]
    sandbox = running.sandbox
    loop = asyncio.get_running_loop()

    async def run_only():  # the fresh store and instance and the call, nothing of asyncio
        return sandbox._run("hello", abi.CallState(sandbox.host, ctx, loop, DATA, deadline=time.monotonic() + 2), 2.0)

    rows = {
        "sandbox: store + instance + call (one C call, capi.Callee)": run_only,
        "+ sandbox.call (inline or worker)": lambda: sandbox.call("hello", DATA, ctx, 2.0),
        "+ concurrency slot and backstop": lambda: running.call("hello", DATA, ctx, 2.0),
        "+ manager: registry, JSON in and out": lambda: manager._call("greet", "hello", PAYLOAD, ctx),
        "+ gctx.modules.greet.hello": lambda: greet.hello(PAYLOAD),
    }
    best = {name: float("inf") for name in rows}
    for _ in range(ROUNDS * 2):
        for name, fn in rows.items():
            start = time.thread_time()
            for _ in range(PER_ROUND):
                await fn()
            best[name] = min(best[name], (time.thread_time() - start) / PER_ROUND * 1e6)
    # Serving, a call does not find its code and data in the caches: other requests ran between.
    junk = bytearray(4 << 20)
    disturbed = float("inf")
    for _ in range(ROUNDS):
        spent = 0.0
        for _ in range(PER_ROUND):
            junk[::64] = bytes(len(junk) // 64)  # a write to every cache line of 4 MiB
            start = time.thread_time()
            await greet.hello(PAYLOAD)
            spent += time.thread_time() - start
        disturbed = min(disturbed, spent / PER_ROUND * 1e6)
    best["gctx.modules.greet.hello, 4 MiB of other work between calls"] = disturbed
    return best


async def through_gati(state: StateDir, bare: dict) -> tuple[tuple[dict[str, list[float]], dict[str, float]], dict[str, float]]:
    manager = ModuleManager(state)
    try:
        request_context.set(CallContext(request_id="bench", caller="handler:/bench"))
        greet = ModuleSet(manager).greet
        assert await greet.hello(PAYLOAD) == EXPECTED  # compile / load once
        targets = {**bare, "gctx.modules.greet.hello": lambda: greet.hello(PAYLOAD)}
        for fn in targets.values():  # warm every path alike
            for _ in range(50):
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
        return await measure(targets), await layers(manager, greet)
    finally:
        await manager.close()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    try:
        state = StateDir(tmp / "state")
        registration = register_module(state, MODULE)
        fresh, reused = bare_wasmtime(registration.loaded.artifact_path())
        assert fresh() == reused() == EXPECTED
        bare = {"bare wasmtime-py, reused instance": reused, "bare wasmtime-py, fresh instance": fresh}
        extism = extism_targets()
        if extism:
            assert extism[0]() == extism[1]() == EXPECTED
            bare |= {"Extism, reused plugin": extism[0], "Extism, fresh plugin per call": extism[1]}
        (samples, cpu), layer_us = asyncio.run(through_gati(state, bare))
        state.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    stats = {name: percentiles(values) for name, values in samples.items()}
    table(f"WASM call: greet.hello, {ROUNDS} x {PER_ROUND} calls each, interleaved", list(stats.items()),
          "bare wasmtime-py, fresh instance", "gctx.modules <= 1.3x bare fresh", cpu)
    t = Table(title="The gati call, layer by layer (CPU time, best of interleaved rounds; docs/performance.md)")
    for col in ("layer", "CPU µs per call", "adds µs"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    previous = 0.0
    for name, us in layer_us.items():
        t.add_row(name, f"{us:.1f}", f"{us - previous:+.1f}")
        previous = us
    console.print(t)

    p50 = {name: s["p50"] * 1e6 for name, s in stats.items()}
    gati = p50["gctx.modules.greet.hello"]
    bare_fresh = p50["bare wasmtime-py, fresh instance"]
    goal("gctx.modules.greet.hello p50 vs bare wasmtime-py, fresh instance", gati / bare_fresh, "<=", 1.3,
         f"{gati:.0f} vs {bare_fresh:.0f} µs")
    if extism:
        ext_fresh, ext_reused = p50["Extism, fresh plugin per call"], p50["Extism, reused plugin"]
        goal("how much faster than a fresh Extism plugin (isolated vs isolated)", ext_fresh / gati, ">=", 3,
             f"{ext_fresh:.0f} vs {gati:.0f} µs")
        goal("gati's isolated call vs a reused Extism plugin (not isolated)", gati / ext_reused, "<=", 4,
             f"{gati:.0f} vs {ext_reused:.0f} µs")
    else:
        print("Extism rows skipped: pip install extism (the bench extra)")


if __name__ == "__main__":
    main()
