"""JSON Schema -> GType, for the part of JSON Schema a GType can say, so schemas can be compared (gtype.diff).

    from_json_schema({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]})
        -> Converted(type=GType(object, n: integer >= 1), open_objects={...}, unsure=[])

Objects without `additionalProperties: false` are open in JSON Schema (any other key passes) while
GType objects are closed: `open_objects` holds the ids of the GType objects made from open ones,
so a comparison can let extra keys through. What has no GType counterpart (allOf, not, if/then,
patternProperties, uniqueItems, prefixItems, recursive refs, ...) becomes `any` at that place and
is listed in `unsure` by path: compared, it can neither pass nor fail, and a report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.core.issues import key_path
from runtime.http.gtype import Field, GType

ANNOTATIONS = {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples", "deprecated",
               "readOnly", "writeOnly", "format", "contentMediaType", "contentEncoding"}  # fmt: skip
NUMERIC = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf")
LENGTHS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"), "map": ("minProperties", "maxProperties")}
KNOWN = {"type", "enum", "const", "anyOf", "oneOf", "properties", "required", "additionalProperties", "items", "pattern", "$ref",
         *NUMERIC, "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}  # fmt: skip


@dataclass
class Converted:
    type: GType
    open_objects: set[int] = field(default_factory=set)  # id() of GType objects that admit other keys
    unsure: list[str] = field(default_factory=list)  # "$.a: allOf": what could not be expressed


def from_json_schema(schema: Any) -> Converted:
    out = Converted(GType("any"))
    out.type = _convert(schema, schema, "$", out, ())
    return out


def _convert(node: Any, root: Any, path: str, out: Converted, refs: tuple) -> GType:
    if node is True or node == {} or node is None:
        return GType("any")
    if not isinstance(node, dict):
        out.unsure.append(f"{path}: false schema")
        return GType("any")
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#") or ref in refs:
            out.unsure.append(f"{path}: $ref {ref}")
            return GType("any")
        target: Any = root
        for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]]:
            target = target.get(part) if isinstance(target, dict) else None
        return _convert(target, root, path, out, refs + (ref,))
    for key in sorted(set(node) - KNOWN - ANNOTATIONS):
        out.unsure.append(f"{path}: {key}")
    if "const" in node:
        return _literal([node["const"]], path, out)
    if isinstance(node.get("enum"), list):
        return _literal(node["enum"], path, out)
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            options: list[GType] = []
            for sub in node[key]:
                g = _convert(sub, root, path, out, refs)
                for o in g.options if g.kind == "union" else (g,):
                    if o not in options:
                        options.append(o)
            return options[0] if len(options) == 1 else GType("union", options=tuple(options))
    kinds = node.get("type")
    if isinstance(kinds, list):
        return _convert({"anyOf": [{**node, "type": k} for k in kinds]}, root, path, out, refs)
    if kinds in ("string", "integer", "number", "boolean", "null"):
        return GType(kinds, constraints=_constraints(node, kinds))
    if kinds == "array":
        items = _convert(node.get("items", {}), root, path + "[]", out, refs)
        return GType("array", items=items, constraints=_constraints(node, "array"))
    if kinds == "object" or "properties" in node:
        props = node.get("properties") or {}
        extra = node.get("additionalProperties", True)
        if not props and extra is not False:
            items = _convert(extra if isinstance(extra, dict) else {}, root, path + "{}", out, refs)
            return GType("map", items=items, constraints=_constraints(node, "map"))
        required = set(node.get("required") or [])
        fields = tuple(Field(k, _convert(v, root, key_path(path, k), out, refs), k in required) for k, v in props.items())
        made = GType("object", name=node.get("title", "") if isinstance(node.get("title"), str) else "", fields=fields)
        if extra is not False:
            out.open_objects.add(id(made))
        return made
    if kinds is None:
        return GType("any")
    out.unsure.append(f"{path}: type {kinds!r}")
    return GType("any")


def _literal(values: list, path: str, out: Converted) -> GType:
    if all(isinstance(v, (str, int, bool)) or v is None for v in values) and values:
        return GType("literal", values=tuple(dict.fromkeys(values)))
    out.unsure.append(f"{path}: enum of non-scalar values")
    return GType("any")


def _constraints(node: dict, kind: str) -> tuple:
    found = {}
    if kind in ("integer", "number"):
        found.update({k: node[k] for k in NUMERIC if k in node})
    if kind == "string" and "pattern" in node:
        found["pattern"] = node["pattern"]
    if kind in LENGTHS:
        for k in LENGTHS[kind]:
            if k in node:
                found[k] = node[k]
    return tuple(sorted(found.items()))
