"""WASM walls: one memory limit covers a store's memories and tables, and a module that breaks
the ABI or traps gets a typed module_crashed that names what happened (issue 10, items 7 and 17).

Each test writes a small WAT module of its own: the probe of runtime/reports/probes/wasm cannot
misbehave in these ways.
"""

import textwrap
from pathlib import Path

import pytest
import wasmtime

from runtime.core.errors import ManifestError, ModuleCrashed
from runtime.modules import register_module
from sandboxes.wasm.engine import _config
from sandboxes.wasm.limits import StoreLimits

MIB = 1 << 20
TABLE_ELEMENT_BYTES = 8  # wasmtime keeps a funcref table element as one pointer

# $out(n): output n as a JSON number (digits written backwards below offset 200).
PRELUDE = """
  (import "gati" "output" (func $output (param i32 i32)))
  (func $out (param $n i32)
    (local $p i32)
    (local.set $p (i32.const 200))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (call $output (local.get $p) (i32.sub (i32.const 200) (local.get $p))))
"""

# Grow table $t by `step` elements until refused, at most `cap` elements in all (so that a
# runtime without the limit is not taken down by its own test); leaves the size on the stack.
def grow_loop(table: int, step: int, cap: int) -> str:
    return f"""
    (block $full
      (loop $more
        (br_if $full (i32.ge_u (table.size {table}) (i32.const {cap})))
        (br_if $full (i32.eq (table.grow {table} (ref.null func) (i32.const {step})) (i32.const -1)))
        (br $more)))
    (table.size {table})"""


def write_module(tmp_path: Path, name: str, wat: str, methods: list[str], memory_mb: int = 16) -> Path:
    folder = tmp_path / "modules" / name
    folder.mkdir(parents=True)
    (folder / f"{name}.wat").write_text(wat)
    method_tables = "\n".join(f"[methods.{m}]" for m in methods)
    (folder / "module.toml").write_text(textwrap.dedent(f"""\
        name = "{name}"
        version = "1.0.0"
        kind = "wasm"

        [artifact]
        path = "{name}.wat"

        {method_tables}

        [limits]
        memory_mb = {memory_mb}
        timeout_ms = 5000
        """))
    return folder


# -- item 7: one limit for memory and table ----------------------------------------------------

def grow_table_wat(step: int) -> str:
    cap = 64 * MIB // TABLE_ELEMENT_BYTES  # 64 MiB of table: past any limit these tests set
    return f"""(module {PRELUDE}
      (memory (export "memory") 1)
      (table 1 funcref)
      (func (export "grow") (result i32)
        {grow_loop(0, step, cap)}
        (call $out)
        (i32.const 0)))"""


@pytest.mark.parametrize("memory_mb", [1, 16])
async def test_table_grow_is_bounded_by_memory_mb(state, manager, tmp_path, memory_mb):
    register_module(state, write_module(tmp_path, "tables", grow_table_wat(1 << 10), ["grow"], memory_mb=memory_mb))
    elements = await manager.call("tables", "grow", None)
    assert 0 < elements * TABLE_ELEMENT_BYTES + 64 * 1024 <= memory_mb * MIB  # with the one page of memory


def test_the_store_limits_alone_bound_a_table(tmp_path):
    """Without the engine's instance pool (an address space too small to reserve it), the store's
    limits are the fence: the same module, on a plain engine of gati's configuration."""
    engine = wasmtime.Engine(_config(False))
    wat = f"""(module (memory 1) (table 1 funcref)
      (func (export "grow_only") (result i32) {grow_loop(0, 1 << 10, 64 * MIB // TABLE_ELEMENT_BYTES)}))"""
    module = wasmtime.Module(engine, wat)
    for memory_mb in (1, 16):
        store = wasmtime.Store(engine)
        StoreLimits.for_memory_mb(memory_mb).apply(store)
        store.set_epoch_deadline(1000)
        instance = wasmtime.Instance(store, module, [])
        grow = instance.exports(store)["grow_only"]
        elements = grow(store)
        assert 0 < elements * TABLE_ELEMENT_BYTES + 64 * 1024 <= memory_mb * MIB


async def test_memory_and_table_together_stay_within_memory_mb(state, manager, tmp_path):
    """Linear memory grown to its limit plus the table grown to its own."""
    wat = f"""(module {PRELUDE}
      (memory (export "memory") 1)
      (table 1 funcref)
      (func (export "fill") (result i32)
        (local $elements i32)
        (block $full (loop $more
          (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br_if $full (i32.gt_u (memory.size) (i32.const 4096)))
          (br $more)))
        {grow_loop(0, 1 << 10, 64 * MIB // TABLE_ELEMENT_BYTES)}
        (local.set $elements)
        ;; memory and table, in bytes (at most 64 MiB + 64 MiB here: fits an i32)
        (call $out (i32.add (i32.mul (memory.size) (i32.const 65536))
                            (i32.mul (local.get $elements) (i32.const {TABLE_ELEMENT_BYTES}))))
        (i32.const 0)))"""
    register_module(state, write_module(tmp_path, "both", wat, ["fill"]))
    total = await manager.call("both", "fill", None)
    assert 15 * MIB < total <= 16 * MIB  # the memory got most of the budget, and the two stay within it


async def test_a_module_with_two_memories_is_refused_clearly(state, tmp_path):
    wat = """(module
      (memory (export "memory") 1)
      (memory $second 256)
      (func (export "run") (result i32) (i32.const 0)))"""
    with pytest.raises(ManifestError) as err:
        register_module(state, write_module(tmp_path, "twomem", wat, ["run"]))
    assert "more than one linear memory" in err.value.message and "memory_mb" in err.value.message
    assert "invalid" not in err.value.message and "single memory" in err.value.fix


async def test_a_module_with_more_tables_than_allowed_is_refused_clearly(state, tmp_path):
    wat = f"""(module
      (memory (export "memory") 1)
      {" ".join("(table 1 funcref)" for _ in range(64))}
      (func (export "run") (result i32) (i32.const 0)))"""
    with pytest.raises(ManifestError) as err:
        register_module(state, write_module(tmp_path, "manytables", wat, ["run"]))
    assert "64 tables" in err.value.message and "memory_mb" in err.value.message
    assert "invalid" not in err.value.message and err.value.fix


@pytest.mark.parametrize("elements, memory_mb", [(1_000_000, 16), (10_000, 1)])
async def test_an_initial_table_past_the_budget_is_refused_clearly(state, tmp_path, elements, memory_mb):
    wat = f"""(module
      (memory (export "memory") 1)
      (table {elements} funcref)
      (func (export "run") (result i32) (i32.const 0)))"""
    with pytest.raises(ManifestError) as err:
        register_module(state, write_module(tmp_path, "bigtable", wat, ["run"], memory_mb=memory_mb))
    assert "table" in err.value.message and "memory_mb" in err.value.message
    assert "invalid" not in err.value.message


# -- item 17: ABI misuse and traps, typed and named ---------------------------------------------

ABI_WAT = """(module
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "env_get" (func $env_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "input_past_memory") (result i32)
    (call $input_read (i32.const 65535))  ;; the input is 2 bytes: one of them lies past the end
    (i32.const 0))
  (func (export "input_negative") (result i32)
    (call $input_read (i32.const -1))
    (i32.const 0))
  (func (export "result_past_memory") (result i32)
    (drop (call $env_get (i32.const 0) (i32.const 4)))  ;; a denial: the result buffer holds its JSON
    (call $result_read (i32.const 70000))
    (i32.const 0))
  (func $deep (export "stack_overflow") (result i32)
    (call $deep))
  (func (export "unreachable") (result i32)
    (unreachable)))"""


@pytest.mark.parametrize("method", ["input_past_memory", "input_negative", "result_past_memory"])
async def test_abi_reads_past_memory_are_module_crashed(state, manager, tmp_path, method):
    register_module(state, write_module(tmp_path, "abi", ABI_WAT, ["input_past_memory", "input_negative", "result_past_memory", "stack_overflow", "unreachable"]))
    with pytest.raises(ModuleCrashed) as err:
        await manager.call("abi", method, "x")
    assert "outside the module's memory" in err.value.message
    assert "IndexError" not in err.value.message


@pytest.mark.parametrize("method, says", [("stack_overflow", "stack overflow"), ("unreachable", "unreachable")])
async def test_traps_are_named(state, manager, tmp_path, method, says):
    register_module(state, write_module(tmp_path, "abi", ABI_WAT, ["input_past_memory", "input_negative", "result_past_memory", "stack_overflow", "unreachable"]))
    with pytest.raises(ModuleCrashed) as err:
        await manager.call("abi", method, None)
    assert says in err.value.message
    assert "backtrace" not in err.value.message
    assert err.value.details.get("trap") == says.replace(" ", "_")
