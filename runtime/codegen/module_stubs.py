"""A module author's starting point, made from the module's manifest and payload schemas.

    gati codegen module thumbs --lang python OUT/     OUT/thumbs.py: the gati_sdk server, one typed function per method
    gati codegen module thumbs --lang c OUT/          OUT/gati.h (the WASM ABI) and OUT/thumbs_methods.h (the exports to write)
    gati codegen module thumbs --lang rust OUT/       OUT/gati.rs (the WASM ABI) and OUT/thumbs_methods.rs (the exports)

The Python skeleton types each method `fn(payload: Input, ctx: Context) -> Output` with
TypedDicts from the schemas, so the author's type checker holds the module to its own contract;
the runtime checks it again on every call. For WASM, the ABI files are the same for every module
(runtime.codegen.wasm_abi); the methods file holds the exports `module.toml` declares, each with
its payload schemas in a comment: C prototypes to define, or Rust exports that call the crate's
`fn NAME(input: &[u8]) -> Result<Vec<u8>, String>`, so a declared method left unwritten fails the build.
"""

from __future__ import annotations

import json
import re

from runtime.codegen.output import Output, digest
from runtime.codegen.py_types import PyTypes, class_name
from runtime.codegen.wasm_abi import c_header, rust_bindings
from runtime.core.manifest import Manifest

LANGS = ("python", "c", "rust")


def module_stubs(m: Manifest, lang: str, command: str) -> Output:
    shape = {k: [v.input, v.output, v.description] for k, v in sorted(m.methods.items())}
    out = Output(command, f"the manifest of {m.name} {m.version} (digest {digest(shape)})")
    stem = re.sub(r"[^A-Za-z0-9_]", "_", m.name)
    if lang == "python":
        out.add(f"{stem}.py", _python(m), "#")
    elif lang == "c":
        abi = Output(command, "docs/wasm-abi.md (ABI version 1)")
        abi.add("gati.h", c_header(), "//")
        out.files.update(abi.files)
        out.add(f"{stem}_methods.h", _c_methods(m, stem), "//")
    elif lang == "rust":
        abi = Output(command, "docs/wasm-abi.md (ABI version 1)")
        abi.add("gati.rs", rust_bindings(), "//")
        out.files.update(abi.files)
        out.add(f"{stem}_methods.rs", _rust_methods(m), "//")
    else:
        raise ValueError(f"unknown language {lang!r}")
    return out


def _python(m: Manifest) -> str:
    types = PyTypes()
    functions = []
    for method, spec in sorted(m.methods.items()):
        name = class_name(m.name) + class_name(method)
        arg = types.hint(spec.input, name + "Input") if isinstance(spec.input, dict) else "Any"
        result = types.hint(spec.output, name + "Output") if isinstance(spec.output, dict) else "Any"
        doc = spec.description or f"{m.name}.{method}"
        functions.append(
            f"@module.method\n"
            f"def {method}(payload: {arg}, ctx: Context) -> {result}:\n"
            f"    {json.dumps(doc)}\n"
            f"    raise NotImplementedError({json.dumps(f'{m.name}.{method}')})"
        )
    head = (
        f'"""{m.name} {m.version}: {m.description or "a gati module"}\n\n'
        "Each method is typed from [methods.NAME] input / output in module.toml; the runtime checks every\n"
        'call against the same schemas. Run by the runtime as: python3 this_file.py\n"""\n\n'
        "from __future__ import annotations\n\n"
        "from typing import Any, Literal, NotRequired, TypedDict\n\n"
        "from gati_sdk import Context, Module\n"
    )
    parts = [head] + types.declarations() + [f"module = Module({json.dumps(m.name)}, {json.dumps(m.version)})"] + functions
    parts.append('if __name__ == "__main__":\n    module.serve()')
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _schema_comment(prefix: str, label: str, schema: object) -> list[str]:
    if not isinstance(schema, dict):
        return [f"{prefix} {label}: any JSON (no schema declared)"]
    return [f"{prefix} {label}: " + json.dumps(schema, sort_keys=True)]


def _c_methods(m: Manifest, stem: str) -> str:
    guard = f"GATI_{stem.upper()}_METHODS_H"
    lines = [f"#ifndef {guard}", f"#define {guard}", "", '#include "gati.h"', ""]
    lines.append(f"// The methods {m.name} {m.version} declares: define each; return 0 on success (gati_output the JSON answer).")
    for method, spec in sorted(m.methods.items()):
        lines.append("")
        if spec.description:
            lines.append(f"// {spec.description}")
        lines += _schema_comment("//", "input", spec.input) + _schema_comment("//", "output", spec.output)
        lines.append(f'GATI_EXPORT("{method}") int {method}(void);')
    lines += ["", f"#endif  // {guard}"]
    return "\n".join(lines)


def _rust_methods(m: Manifest) -> str:
    lines = [
        f"// The exports of {m.name} {m.version}, one per method module.toml declares. Each hands the call's input",
        "// to a function of the same name at the crate root, `fn NAME(input: &[u8]) -> Result<Vec<u8>, String>`",
        "// (Ok: the JSON answer; Err: the error message), so a declared method left unwritten does not compile.",
        "",
        "use crate::gati;",
    ]
    for method, spec in sorted(m.methods.items()):
        lines.append("")
        if spec.description:
            lines.append(f"/// {spec.description}")
        lines += _schema_comment("///", "input", spec.input) + _schema_comment("///", "output", spec.output)
        lines += [
            "#[no_mangle]",
            f'pub extern "C" fn {method}() -> i32 {{',
            f"    match crate::{method}(&gati::input()) {{",
            "        Ok(json) => {",
            "            gati::output(&json);",
            "            0",
            "        }",
            "        Err(message) => gati::fail(&message),",
            "    }",
            "}",
        ]
    return "\n".join(lines)
