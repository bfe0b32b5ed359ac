"""The module calls a handler file makes, found in its source, with the payload types they carry.

    await gctx.modules.thumbs.resize({"width": w, "height": h})      # thumbs.resize, payload {width, height}
    await gctx.modules["thumbs"].call("resize", req.data)             # thumbs.resize, payload REQUEST
    out: Thumb = await gctx.modules.thumbs.resize(payload)            # and the answer is read as a Thumb

Nothing is run: the file's syntax tree is read. A payload's type is known when it is the
validated body (`req.data`), a name or parameter annotated with a type, a TypedDict or dataclass
built by calling it ("declared": every value of the type may be sent), or when it is a literal
whose parts are literals, conversions (`int(...)`, f-strings) or request parameters ("inferred":
the shape is known, not the range of its values). What the handler reads back is known when the
answer is assigned to an annotated name or returned by a handler with a RESPONSE type. Anything
else is unknown (None), never guessed. runtime.http.contracts compares these with module schemas.
"""

from __future__ import annotations

import ast
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.http.gtype import Field, GType, GTypeError

ANY = GType("any")  # an inferred part whose type is unknown


@dataclass(frozen=True)
class Typed:
    type: GType
    declared: bool  # from a declared type (every value of it may occur), not inferred from expressions


@dataclass(frozen=True)
class ModuleCall:
    module: str  # as written: "thumbs", or "thumbs@1" for a pinned version
    method: str
    line: int
    payload: Typed | None  # None: not derivable
    result: Typed | None  # what the handler reads the answer as; None: not derivable

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "method": self.method,
            "line": self.line,
            "payload": self.payload.type.json_schema() if self.payload else None,
            "result": self.result.type.json_schema() if self.result else None,
        }


def find_module_calls(file: Path, module: ModuleType, request_type: GType | None, response_type: GType | None) -> list[ModuleCall]:
    """Every `<x>.modules.NAME.METHOD(...)` and `<x>.modules["NAME"].call("METHOD", ...)` in the file, in source order."""
    try:
        tree = ast.parse(file.read_bytes(), str(file))
    except (SyntaxError, ValueError, OSError):
        return []  # the file was imported already; a file we cannot read again has no calls we can show
    calls: list[ModuleCall] = []
    for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        scope = _Scope(fn, module, fn.name == "handler", request_type)
        parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(fn):
            found = _call_target(node)
            if found is None:
                continue
            name, method, arg = found
            payload = scope.infer(arg) if arg is not None else Typed(GType("null"), True)
            result = _expected_result(node, parents, scope, response_type if fn.name == "handler" else None)
            calls.append(ModuleCall(name, method, node.lineno, payload, result))
    # nested functions are walked by their parent too: keep one of each call
    unique = {(c.line, c.module, c.method): c for c in calls}
    return sorted(unique.values(), key=lambda c: (c.line, c.module, c.method))


def _modules_ref(node: ast.AST) -> str | None:
    """The module name of `<x>.modules.NAME` or `<x>.modules["NAME"]`."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "modules":
        return node.attr
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "modules"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _call_target(node: ast.AST) -> tuple[str, str, ast.expr | None] | None:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    name = _modules_ref(node.func.value)
    if name is None:
        return None
    if node.func.attr == "call":
        if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
            return None  # a method name computed at run time
        return name, node.args[0].value, node.args[1] if len(node.args) > 1 else _keyword(node, "payload")
    return name, node.func.attr, node.args[0] if node.args else _keyword(node, "payload")


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _expected_result(call: ast.Call, parents: dict, scope: _Scope, response_type: GType | None) -> Typed | None:
    up = parents.get(call)
    if isinstance(up, ast.Await):
        up = parents.get(up)
    if isinstance(up, ast.AnnAssign):
        return scope.annotation(up.annotation)
    if isinstance(up, ast.Return) and response_type is not None:
        return Typed(response_type, True)
    return None


class _Scope:
    """One function: its parameters and assignments, enough to type the expressions a payload is built of."""

    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, module: ModuleType, is_handler: bool, request_type: GType | None):
        self.module = module
        self.request_type = request_type
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        self.req = args[0].arg if is_handler and args else None  # handler(req, res, gctx, lctx)
        self.assigned: dict[str, list[ast.expr | Typed]] = {}
        for i, a in enumerate(args):
            if a.annotation is not None and not (i == 0 and self.req):
                self.assigned.setdefault(a.arg, []).append(self.annotation(a.annotation) or Typed(ANY, False))
            elif not (i == 0 and self.req):
                self.assigned.setdefault(a.arg, []).append(Typed(ANY, False))
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.assigned.setdefault(node.target.id, []).append(self.annotation(node.annotation) or Typed(ANY, False))
            elif isinstance(node, (ast.AugAssign, ast.For, ast.With, ast.NamedExpr)):
                for name in _names(getattr(node, "target", None)):
                    self.assigned.setdefault(name, []).append(Typed(ANY, False))
        self._resolving: set[str] = set()

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.assigned.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                self._bind(t, v)
        else:
            for name in _names(target):
                self.assigned.setdefault(name, []).append(Typed(ANY, False))

    def annotation(self, node: ast.expr) -> Typed | None:
        try:
            hint = eval(compile(ast.Expression(node), "<annotation>", "eval"), vars(self.module))  # the module's own names
            return Typed(GType.of(hint), True)
        except Exception:  # a hint that is no payload type (or names nothing importable): not derivable
            return None

    def infer(self, node: ast.expr) -> Typed | None:
        t = self._infer(node)
        return None if t is None or (t.type.kind == "any" and not t.declared) else t

    def _infer(self, node: ast.expr) -> Typed | None:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None:
                return Typed(GType("boolean" if isinstance(v, bool) else "null"), False)
            # a constant's range is itself: a module's bounds are then checked against the value
            if isinstance(v, str):
                return Typed(GType("string", constraints=(("maxLength", len(v)), ("minLength", len(v)))), False)
            if isinstance(v, (int, float)):
                return Typed(GType("integer" if isinstance(v, int) else "number", constraints=(("maximum", v), ("minimum", v))), False)
            return None
        if isinstance(node, ast.JoinedStr):
            return Typed(GType("string"), False)
        if isinstance(node, ast.Dict):
            if any(k is None or not isinstance(k, ast.Constant) or not isinstance(k.value, str) for k in node.keys):
                return None
            fields = []
            for k, v in zip(node.keys, node.values):
                part = self._infer(v)
                fields.append(Field(k.value, part.type if part else ANY, True))
            return Typed(GType("object", fields=tuple(fields)), False)
        if isinstance(node, (ast.List, ast.Tuple)):
            parts = [self._infer(e) for e in node.elts]
            return Typed(GType("array", items=_union([p.type if p else ANY for p in parts])), False)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.req and node.attr == "data":
            return Typed(self.request_type, True) if self.request_type is not None else None
        if isinstance(node, ast.Subscript) and self._req_part(node.value) in ("params", "query"):
            return Typed(GType("string"), False)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Compare) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            return Typed(GType("boolean"), False)
        if isinstance(node, ast.IfExp):
            a, b = self._infer(node.body), self._infer(node.orelse)
            return Typed(_union([a.type, b.type]), False) if a and b else None
        if isinstance(node, ast.BinOp):
            a, b = self._infer(node.left), self._infer(node.right)
            kinds = {a.type.kind if a else "?", b.type.kind if b else "?"}
            if kinds == {"string"} and isinstance(node.op, ast.Add):
                return Typed(GType("string"), False)
            if kinds <= {"integer", "number"} and not isinstance(node.op, ast.Div):
                return Typed(GType("number" if "number" in kinds else "integer"), False)
            if kinds <= {"integer", "number"}:
                return Typed(GType("number"), False)
        return None

    def _req_part(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.req:
            return node.attr
        return None

    def _call(self, node: ast.Call) -> Typed | None:
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "get" and self._req_part(f.value) in ("params", "query"):
            if len(node.args) > 1:
                default = self._infer(node.args[1])
                return Typed(_union([GType("string"), default.type if default else ANY]), False)
            return Typed(GType("union", options=(GType("string"), GType("null"))), False)
        if not isinstance(f, ast.Name):
            return None
        simple = {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "len": "integer", "round": "integer"}
        if f.id in simple and f.id not in self.assigned:
            return Typed(GType(simple[f.id]), False)
        target = vars(self.module).get(f.id)
        if isinstance(target, type) and (typing.is_typeddict(target) or hasattr(target, "__dataclass_fields__")):
            try:
                return Typed(GType.of(target), True)
            except GTypeError:
                return None
        return None

    def _name(self, name: str) -> Typed | None:
        values = self.assigned.get(name)
        if not values or name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            found = [v if isinstance(v, Typed) else self._infer(v) for v in values]
        finally:
            self._resolving.discard(name)
        if any(f is None for f in found):
            return None
        return Typed(_union([f.type for f in found]), all(f.declared for f in found))


SCALARS = ("string", "integer", "number", "boolean", "null")
LOWER = {"minimum", "minLength"}


def _union(types: list[GType]) -> GType:
    options: list[GType] = []
    for t in types:
        for o in t.options if t.kind == "union" else (t,):
            same = next((i for i, x in enumerate(options) if o.kind in SCALARS and x.kind == o.kind), None)
            if same is not None:  # "x" or any str: one string, as wide as both
                options[same] = _hull(options[same], o)
            elif o not in options:
                options.append(o)
    if not options:
        return ANY
    if any(o.kind == "any" for o in options):
        return ANY
    return options[0] if len(options) == 1 else GType("union", options=tuple(options))


def _hull(a: GType, b: GType) -> GType:
    """The narrowest one-kind type holding both: a bound stays only where both have one, at the looser value."""
    x, y = dict(a.constraints), dict(b.constraints)
    kept = {k: (min if k in LOWER else max)(x[k], y[k]) for k in x.keys() & y.keys() if k in LOWER or k in ("maximum", "maxLength")}
    return GType(a.kind, constraints=tuple(sorted(kept.items())))


def _names(target: ast.AST | None) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)] if target is not None else []
