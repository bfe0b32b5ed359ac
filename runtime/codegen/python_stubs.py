"""Typed module stubs for handler authors: `gati_modules.pyi`, made from the modules' payload schemas.

    # handlers/thumbs/resize.py
    from typing import TYPE_CHECKING
    if TYPE_CHECKING:
        from gati_modules import GlobalContext

    async def handler(req, res, gctx: "GlobalContext", lctx):
        thumb = await gctx.modules.thumbs.resize({"width": 1920, "height": 1080, "max": 256})
        thumb["scale"]                 # float; thumb["nope"] is an error for mypy and pyright

For each module: a TypedDict per schema'd payload, a Protocol (`ThumbsModule`) whose methods
take the input type and return the output type (`call("resize", ...)` typed the same way), and
`Modules` / `GlobalContext` Protocols that type `gctx.modules.NAME` and `gctx.modules["NAME"]`.
A method without schemas takes and returns Any. The file is a stub (.pyi): it is read by the
type checker (put its folder on mypy_path or pyright's stubPath) and never imported at run time.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

from runtime.codegen.output import Output, digest
from runtime.codegen.py_types import PyTypes, class_name
from runtime.core.manifest import Manifest

HEAD = '''from typing import Any, Literal, Mapping, NotRequired, Protocol, TypedDict, overload
'''

CONTEXT = '''class GlobalContext(Protocol):
    """gctx as handlers see it (runtime.http.context.GlobalContext), with gctx.modules typed."""

    @property
    def modules(self) -> Modules: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def instance(self) -> Any: ...
    @property
    def secrets(self) -> Any: ...
    @property
    def metrics(self) -> Any: ...
    async def publish(self, topic: str, data: Any = None) -> int: ...
    async def subscribe(self, topic: str) -> Any: ...
'''


def python_stubs(manifests: list[Manifest], command: str) -> Output:
    manifests = sorted(manifests, key=lambda m: m.name)
    source = ", ".join(f"{m.name} {m.version}" for m in manifests) or "no modules"
    out = Output(command, f"the module manifests {source} (digest {digest([_shape(m) for m in manifests])})")
    types = PyTypes()
    protocols = []
    for m in manifests:
        protocols.append(_protocol(m, types))
    parts = [HEAD] + types.declarations() + protocols + [_modules(manifests), CONTEXT]
    out.add("gati_modules.pyi", "\n\n".join(p.rstrip("\n") for p in parts if p) + "\n", "#")
    return out


def protocol_name(module: str) -> str:
    return class_name(module) + "Module"


def _shape(m: Manifest) -> dict[str, Any]:
    return {"name": m.name, "version": m.version, "methods": {k: [v.input, v.output, v.description] for k, v in m.methods.items()}}


def _signatures(m: Manifest, types: PyTypes) -> list[tuple[str, str, str, str]]:
    """(method, payload parameter, result type, description) per method, in name order."""
    found = []
    for method, spec in sorted(m.methods.items()):
        stem = class_name(m.name) + class_name(method)
        arg = f"payload: {types.hint(spec.input, stem + 'Input')}" if isinstance(spec.input, dict) else "payload: Any = None"
        result = types.hint(spec.output, stem + "Output") if isinstance(spec.output, dict) else "Any"
        found.append((method, arg, result, spec.description))
    return found


def _protocol(m: Manifest, types: PyTypes) -> str:
    sigs = _signatures(m, types)
    doc = f"{m.name} {m.version} ({m.kind})" + (f": {m.description}" if m.description else "")
    lines = [f"class {protocol_name(m.name)}(Protocol):", f"    {json.dumps(doc)}", ""]
    for method, arg, result, description in sigs:
        if keyword.iskeyword(method) or method == "call":
            continue  # not reachable as an attribute: call("...") below still types it
        lines.append(f"    async def {method}(self, {arg}, /) -> {result}:")
        lines.append(f"        {json.dumps(description or f'{m.name}.{method}')}")
    many = len(sigs) > 1
    for method, arg, result, _ in sigs:
        if many:
            lines.append("    @overload")
        lines.append(f"    async def call(self, method: Literal[{method!r}], {arg}, /) -> {result}: ...")
    return "\n".join(lines)


def _modules(manifests: list[Manifest]) -> str:
    lines = ["class Modules(Protocol):", '    """gctx.modules: each registered module by attribute or by name."""', ""]
    for m in manifests:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m.name) and not keyword.iskeyword(m.name):
            lines += ["    @property", f"    def {m.name}(self) -> {protocol_name(m.name)}: ..."]
    many = len(manifests) > 1
    for m in manifests:
        if many:
            lines.append("    @overload")
        lines.append(f"    def __getitem__(self, name: Literal[{m.name!r}]) -> {protocol_name(m.name)}: ...")
    lines.append("    def __contains__(self, name: str) -> bool: ...")
    return "\n".join(lines)
