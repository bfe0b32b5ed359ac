"""The WASM call as one C call (sandboxes/wasm/_callpath.c): its C imports keep the ABI's
bounds, large outputs come through whole, calls on many threads at once keep to their own
state, the GIL is let go while WebAssembly runs, an inline call that acts gets its real
deadline, and the extension's absence or a wasmtime that changed its structures fail loudly.

Each test writes a small WAT module of its own, in real wasmtime.
"""

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import wasmtime

from runtime.core.call import CallContext
from runtime.core.errors import ModuleCrashed, ModuleTimeout
from runtime.modules import register_module
from sandboxes.wasm import _callpath, abi, capi, validate
from sandboxes.wasm.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]
CTX = CallContext(request_id="req-callpath", caller="test")
BIG = 4 << 20  # bytes of the large output: 64 pages of memory

WAT = f"""(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (import "gati" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "acted")
  (data (i32.const 8) "true")
  (func (export "echo") (result i32)
    (call $input_read (i32.const 1024))
    (call $output (i32.const 1024) (call $input_len))
    (i32.const 0))
  (func (export "input_past_memory") (result i32)
    (call $input_read (i32.const 65530))
    (i32.const 0))
  (func (export "output_past_memory") (result i32)
    (call $output (i32.const 65000) (i32.const 1000))
    (i32.const 0))
  (func (export "output_negative") (result i32)
    (call $output (i32.const 0) (i32.const -1))
    (i32.const 0))
  (func (export "big") (result i32)
    ;; a JSON string of {BIG} bytes with its quotes: "aaa...a"
    (drop (memory.grow (i32.const 64)))
    (memory.fill (i32.const 0) (i32.const 97) (i32.const {BIG}))
    (i32.store8 (i32.const 0) (i32.const 34))
    (i32.store8 (i32.const {BIG - 1}) (i32.const 34))
    (call $output (i32.const 0) (i32.const {BIG}))
    (i32.const 0))
  (func (export "acts_then_runs") (result i32) (local $i i32)
    ;; logs (which commits an inline call), then runs well past the inline budget of 10-20 ms
    (call $log (i32.const 1) (i32.const 0) (i32.const 5))
    (loop $more
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 400000000))))
    (call $output (i32.const 8) (i32.const 4))
    (i32.const 0))
  (func (export "logs_then_spins") (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 5))
    (loop $forever (br $forever))
    (i32.const 0)))
"""
METHODS = ["echo", "input_past_memory", "output_past_memory", "output_negative", "big", "acts_then_runs", "logs_then_spins"]


def write_module(tmp_path: Path, capabilities: str = "", limits: str = "") -> Path:
    folder = tmp_path / "modules" / "cp"
    folder.mkdir(parents=True)
    (folder / "cp.wat").write_text(WAT)
    tables = "\n".join(f"[methods.{m}]" for m in METHODS)
    (folder / "module.toml").write_text(textwrap.dedent("""\
        name = "cp"
        version = "1.0.0"
        kind = "wasm"

        [artifact]
        path = "cp.wat"

        """) + tables + "\n\n" + capabilities + textwrap.dedent("""
        [limits]
        memory_mb = 16
        timeout_ms = 10000
        concurrency = 8
        """) + limits)
    return folder


async def started(state, manager, tmp_path, capabilities="", limits=""):
    register_module(state, write_module(tmp_path, capabilities, limits))
    assert await manager.call("cp", "echo", {"hello": 1}, ctx=CTX) == {"hello": 1}
    return manager._running["cp"].sandbox


@pytest.mark.parametrize("method, range_", [
    ("input_past_memory", "65530+7"),  # the input, {"a":1} as JSON, is 7 bytes
    ("output_past_memory", "65000+1000"),
    ("output_negative", "0+-1"),
])
async def test_c_imports_trap_on_a_range_outside_memory_and_name_it(state, manager, tmp_path, method, range_):
    await started(state, manager, tmp_path)
    with pytest.raises(ModuleCrashed) as err:
        await manager.call("cp", method, {"a": 1}, ctx=CTX)
    assert f"gati ABI: range {range_} is outside the module's memory" in err.value.message
    assert "backtrace" not in err.value.message


async def test_a_large_output_comes_through_whole(state, manager, tmp_path):
    await started(state, manager, tmp_path)
    assert await manager.call("cp", "big", None, ctx=CTX) == "a" * (BIG - 2)


async def test_calls_on_many_threads_at_once_each_get_their_own_input_and_output(state, manager, tmp_path):
    sandbox = await started(state, manager, tmp_path)
    loop = asyncio.get_running_loop()

    def calls(thread: int) -> list[bytes]:
        out = []
        for i in range(200):
            payload = json.dumps({"thread": thread, "call": i, "pad": "x" * (thread * 37 + i)}).encode()
            state = abi.CallState(sandbox.host, CTX, loop, payload, deadline=time.monotonic() + 10)
            out.append((payload, sandbox._run("echo", state, 10.0)))
        return out

    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(calls, range(16)) for r in rs]
    assert len(results) == 16 * 200
    assert all(payload == answer for payload, answer in results)


async def test_module_calls_on_workers_at_once_each_get_their_answer(state, manager, tmp_path):
    # Granted egress, the module runs on its worker threads (concurrency 8), never inline.
    sandbox = await started(state, manager, tmp_path, '[capabilities]\negress = ["http://example.com:80"]\n')
    assert not sandbox.inline
    payloads = [{"n": i, "pad": "y" * i} for i in range(64)]
    assert await asyncio.gather(*(manager.call("cp", "echo", p, ctx=CTX) for p in payloads)) == payloads


async def test_the_gil_is_let_go_while_webassembly_runs(state, manager, tmp_path):
    """Another thread runs Python while a call spins in WebAssembly: were the GIL held through the
    call, it could run only after the call returned, when `in_call` is False again. Held, it
    would also keep the epoch ticker thread from ticking and the call from reaching its 1 s
    deadline: the fuel (seconds' worth) then stops it, and the test fails instead of hanging."""
    sandbox = await started(state, manager, tmp_path, limits="fuel = 20_000_000_000\n")
    logged = threading.Event()
    seen: list[bool] = []
    in_call = False

    def log(ctx, level, line):  # the module's log line: it is in its call, about to spin
        logged.set()

    def other():
        logged.wait(30)
        seen.append(in_call)

    sandbox.host.log = log
    watcher = threading.Thread(target=other)
    watcher.start()
    state = abi.CallState(sandbox.host, CTX, asyncio.get_running_loop(), b"null", deadline=time.monotonic() + 1.0)
    in_call = True
    try:
        with pytest.raises(ModuleTimeout, match="deadline"):  # its deadline, not its fuel
            sandbox._run("logs_then_spins", state, 1.0)
    finally:
        in_call = False
        del sandbox.host.log
    watcher.join(30)
    assert seen == [True]


async def test_an_inline_call_that_acted_runs_on_to_its_own_deadline(state, manager, tmp_path):
    # Logging commits the call: its epoch deadline, 10-20 ms until then, becomes the method's
    # 10 s (set from Python on the running store). Were it not set, the call would be stopped
    # at the budget, and, having acted, not moved but failed.
    sandbox = await started(state, manager, tmp_path)
    assert sandbox.inline
    assert await manager.call("cp", "acts_then_runs", None, ctx=CTX) is True
    assert "acts_then_runs" not in sandbox._offloaded


def test_c_imports_called_from_a_store_gati_did_not_make_trap(state, tmp_path):
    """wasmtime-py's stores (validate.fits instantiates in one) have other data: a C import
    called there traps, naming itself, instead of reading another call's state."""
    folder = write_module(tmp_path)
    loaded = register_module(state, folder).loaded
    engine = make_engine(False)
    pre, _ = validate.link(engine, wasmtime.Module(engine, WAT), loaded)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(100)
    instance = pre.instantiate(store)
    with pytest.raises((wasmtime.Trap, wasmtime.WasmtimeError), match="input_read was called outside a gati call"):
        instance.exports(store)["echo"](store)


def test_a_wasmtime_whose_structures_changed_is_refused_by_name():
    with pytest.raises(RuntimeError, match=r"wasmtime_extern_t is 40 in wasmtime-py, 32 in sandboxes/wasm/_callpath.c"):
        _callpath.bind(capi.FUNCTIONS, {**capi.LAYOUT, "wasmtime_extern_t": 40}, wasmtime.WasmtimeError)
    with pytest.raises(RuntimeError, match="libwasmtime has no wasmtime_store_new"):
        _callpath.bind({**capi.FUNCTIONS, "wasmtime_store_new": 0}, capi.LAYOUT, wasmtime.WasmtimeError)


def test_without_the_built_extension_sandboxes_wasm_says_to_run_make_setup():
    script = textwrap.dedent("""
        import sys
        class NoExtension:
            def find_spec(self, name, path=None, target=None):
                if name == "sandboxes.wasm._callpath":
                    raise ImportError("No module named 'sandboxes.wasm._callpath'")
        sys.meta_path.insert(0, NoExtension())
        try:
            import sandboxes.wasm
        except ImportError as exc:
            print(type(exc).__name__, exc, exc.fix)
        else:
            print("imported")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.startswith("CallPathMissing"), out.stdout + out.stderr
    assert "make setup" in out.stdout


def test_the_running_call_s_deadline_and_result_are_refused_when_no_call_runs():
    # CallState.commit and the Python host calls reach the call running on their own thread; on a
    # thread running none there is nothing to set (and no store whose memory could be touched).
    with pytest.raises(RuntimeError, match="no WASM call is running on this thread"):
        capi.set_epoch_deadline(1)
    with pytest.raises(RuntimeError, match="no WASM call is running on this thread"):
        capi.set_result(b"{}")
