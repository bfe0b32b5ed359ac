"""Real WebAssembly modules for the module-version tests: greet at any version, and a caller of it.

greet(folder, version) answers hello with {"message": "hello from VERSION"}, so a test sees which
version served a call; its `ping` (the [health] method) answers, or traps when told to. caller()
calls greet through the host with the targets given, one method per target, and answers with
what the host gave back (greet's answer, or the denial)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GREET_SAMPLE = ROOT / "sample_modules" / "greet-wat"


def _wat_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def greet(folder: Path, version: str, *, ping_traps: bool = False, health: str | None = 'method = "ping"\ninterval_ms = 100\nunhealthy_after = 2') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    message = f'{{"message":"hello from {version}"}}'
    ping = "unreachable" if ping_traps else f"(call $output (i32.const 0) (i32.const {len(message)})) (i32.const 0)"
    (folder / "greet.wat").write_text(
        f"""(module
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{_wat_string(message)}")
  (func (export "hello") (result i32) (call $output (i32.const 0) (i32.const {len(message)})) (i32.const 0))
  (func (export "ping") (result i32) {ping}))
"""
    )
    section = f"[health]\n{health}\n" if health else ""
    (folder / "module.toml").write_text(
        f'name = "greet"\nversion = "{version}"\nkind = "wasm"\n[artifact]\npath = "greet.wat"\n[methods.hello]\n[methods.ping]\n{section}'
    )
    return folder


def caller(folder: Path, grant: str, targets: dict[str, str]) -> Path:
    """A module "caller" granted `modules = [grant]`; its method NAME calls targets[NAME].hello({})."""
    folder.mkdir(parents=True, exist_ok=True)
    data, funcs, at = [], [], 64
    for method, target in targets.items():
        data.append(f'  (data (i32.const {at}) "{_wat_string(target)}")')
        funcs.append(f'  (func (export "{method}") (result i32) (call $go (i32.const {at}) (i32.const {len(target)})))')
        at += 64
    (folder / "caller.wat").write_text(
        """(module
  (import "gati" "call" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello")
  (data (i32.const 8) "{}")
"""
        + "\n".join(data)
        + """
  (func $go (param $p i32) (param $n i32) (result i32)
    (drop (call $call (local.get $p) (local.get $n) (i32.const 0) (i32.const 5) (i32.const 8) (i32.const 2)))
    (call $result_read (i32.const 4096))
    (call $output (i32.const 4096) (call $result_len))
    (i32.const 0))
"""
        + "\n".join(funcs)
        + ")\n"
    )
    methods = "".join(f"[methods.{m}]\n" for m in targets)
    (folder / "module.toml").write_text(
        f'name = "caller"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "caller.wat"\n{methods}[capabilities]\nmodules = ["{grant}"]\n'
    )
    return folder


def greet_sample(folder: Path, version: str) -> Path:
    """The greet-wat sample module (built), copied with its manifest's version changed."""
    shutil.copytree(GREET_SAMPLE, folder, ignore=shutil.ignore_patterns("*.tmp"))
    toml = folder / "module.toml"
    toml.write_text(toml.read_text().replace('version = "1.0.0"', f'version = "{version}"', 1))
    return folder
