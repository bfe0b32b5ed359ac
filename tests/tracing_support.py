"""What the tracing tests share (tests/test_tracing.py, tests/test_otlp.py): a WASM module that
answers with the trace context the host hands it (docs/wasm-abi.md, trace_context), or null."""

from pathlib import Path

TRACE_WAT = """
(module
  (import "gati" "trace_context" (func $trace_context (result i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "null")
  (func (export "context") (result i32)
    (if (i32.eqz (call $trace_context))
      (then (call $result_read (i32.const 64)) (call $output (i32.const 64) (call $result_len)))
      (else (call $output (i32.const 0) (i32.const 4))))
    (i32.const 0)))
"""
TRACE_TOML = 'name = "tracewasm"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "trace.wat"\n[methods.context]\n'


def wasm_module(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.toml").write_text(TRACE_TOML)
    (folder / "trace.wat").write_text(TRACE_WAT)
    return folder
