"""gati codegen: files made from the project's contracts, never written by hand.

    typescript.py      the HTTP API as TypeScript: types and a fetch client per route (from the OpenAPI document)
    ts_types.py        JSON Schema -> TypeScript types
    python_stubs.py    the registered modules as typed Python stubs: TypedDicts, a Protocol per module, gctx.modules
    py_types.py        JSON Schema -> Python type hints and TypedDicts
    module_stubs.py    a module author's starting point: the Python SDK server with typed method signatures
    wasm_abi.py        the WebAssembly ABI (docs/wasm-abi.md) as a C header and as Rust bindings
    output.py          a set of generated files: the "generated from" header, write, and check for staleness

The layer sits between the HTTP layer (routes, handler manifests, the OpenAPI document) and the
CLI (`gati codegen`, runtime/cli/codegen.py). Every output is deterministic: the same inputs give
the same bytes, so checked-in output can be compared (`gati codegen --check`).
"""
