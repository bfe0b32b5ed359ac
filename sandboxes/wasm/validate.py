"""Whether an artifact is a WASM module gati can run under its manifest: asked at registration, again at load.

A module that registers must be able to answer its first call: it compiles (binary or WAT),
it exports its linear memory as `memory`, every declared method is an exported `() -> i32`
function (and `_initialize`, if exported, a `() -> ()` one), it imports only what gati
provides (docs/wasm-abi.md), and its memory and table fit `[limits] memory_mb` (limits.py;
more memories or tables than one are refused as it compiles). Each problem is a
ManifestError naming the manifest key to change, and none quotes the artifact's text.
"""

from __future__ import annotations

from pathlib import Path

import wasmtime

from runtime.core.errors import ManifestError
from runtime.core.manifest import LoadedManifest
from sandboxes.wasm import abi
from sandboxes.wasm.engine import ArtifactInvalid, load_module, make_engine
from sandboxes.wasm.limits import TABLES, StoreLimits

I32 = wasmtime.ValType.i32()
# What wasmtime says when instantiation would pass a store limit.
LIMIT_ERRORS = ("resource limit exceeded", "exceeds memory limits", "exceeds table limits")


def validate(loaded: LoadedManifest, data: bytes, sha256: str, cache_dir: Path) -> None:
    """Refuse (ManifestError) an artifact that would fail its first call; data is the artifact's bytes.

    The compiled module goes to the state's compile cache, as the runtime's first load would put
    it there: checking costs a compile once per artifact, not once per registration."""
    fuel = bool(loaded.manifest.limits.fuel)
    engine = make_engine(fuel)
    try:
        module = load_module(engine, fuel, cache_dir, sha256, lambda: data)
    except ArtifactInvalid as exc:
        raise ManifestError(loaded.file, "artifact.path", f"{loaded.manifest.artifact.path} is {exc.message}", exc.fix or "") from None
    link(engine, module, loaded)


def link(engine: wasmtime.Engine, module: wasmtime.Module, loaded: LoadedManifest) -> tuple[wasmtime.InstancePre, bool]:
    """The module checked against its manifest and linked to gati's imports: (instance template, uses WASI)."""
    m, artifact = loaded.manifest, loaded.manifest.artifact.path

    def refuse(key: str, problem: str, fix: str) -> ManifestError:
        return ManifestError(loaded.file, key, f"{artifact} {problem}", fix)

    exports = {e.name: e.type for e in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise refuse("artifact.path", 'exports no linear memory named "memory"', 'export it as "memory" (docs/wasm-abi.md)')
    for method in sorted(m.methods):
        kind = exports.get(method)
        if kind is None:
            raise refuse(f"methods.{method}", f"exports no function {method!r}", f"export a () -> i32 function {method}, or remove [methods.{method}]")
        if not isinstance(kind, wasmtime.FuncType):
            what = type(kind).__name__.removesuffix("Type").lower()
            raise refuse(f"methods.{method}", f"exports {method!r} as a {what}, not a function", f"remove [methods.{method}]: only functions are methods")
        if kind.params or kind.results != [I32]:
            raise refuse(
                f"methods.{method}",
                f"exports {method!r} as ({', '.join(map(str, kind.params))}) -> ({', '.join(map(str, kind.results))})",
                "a method is a () -> i32 function: input and output go through the gati imports (docs/wasm-abi.md)",
            )
    init = exports.get("_initialize")
    if init is not None and not (isinstance(init, wasmtime.FuncType) and not init.params and not init.results):
        # gati calls it, unchecked (sandboxes/wasm/capi.py), before every method.
        raise refuse("artifact.path", "exports _initialize, but not as a () -> () function", "export _initialize as a function taking and returning nothing, or rename it")
    # WASI costs a context per call: link it only for modules that import it (C, Rust).
    uses_wasi = any(i.module.startswith("wasi_") for i in module.imports)
    linker = wasmtime.Linker(engine)
    if uses_wasi:
        linker.define_wasi()
    abi.define_imports(linker)
    try:
        pre = linker.instantiate_pre(module)
    except wasmtime.WasmtimeError as exc:
        raise refuse(
            "artifact.path",
            f"imports something gati does not provide: {str(exc).strip().splitlines()[0]}",
            "import only the gati functions of docs/wasm-abi.md and wasi_snapshot_preview1",
        ) from None
    problem = fits(engine, pre, m.limits.memory_mb, uses_wasi)
    if problem:
        raise refuse(
            "limits.memory_mb",
            f"does not fit [limits] memory_mb = {m.limits.memory_mb}: {problem}",
            "raise [limits] memory_mb, or build the module with a smaller initial memory or table",
        )
    return pre, uses_wasi


def fits(engine: wasmtime.Engine, pre: wasmtime.InstancePre, memory_mb: int, uses_wasi: bool) -> str | None:
    """Why the module cannot be instantiated within its store limits (its initial memory, its
    table), or None: instantiated once in a throwaway store, no method called."""
    limits = StoreLimits.for_memory_mb(memory_mb)
    store = wasmtime.Store(engine)
    limits.apply(store)
    store.set_epoch_deadline(1)  # a start function is the module's: not run to its end here
    if uses_wasi:
        store.set_wasi(wasmtime.WasiConfig())
    try:
        pre.instantiate(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(limit in said for limit in LIMIT_ERRORS):
            return (
                f"{said} (a module gets one linear memory of at most {limits.memory_bytes >> 10} KiB "
                f"and at most {TABLES} table of {limits.table_elements} elements)"
            )
    return None  # instantiated, or its start function trapped: a call will say so
