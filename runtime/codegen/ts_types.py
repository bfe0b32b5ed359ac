"""JSON Schema -> TypeScript types.

    ts_type({"type": "array", "items": {"type": "integer"}})                  -> "number[]"
    ts_type({"type": "object", "properties": {"a": {}}, "required": ["a"]})   -> "{ a: unknown }"
    ts_declaration("Order", schema)   -> "export interface Order { ... }" or "export type Order = ..."

What JSON Schema says that TypeScript cannot (bounds, lengths, patterns) goes into a doc comment.
A "$ref" to "#/components/schemas/X" or "#/$defs/X" is the named type X (its name made safe for
TypeScript). Anything unknown is `unknown`, never `any`: the compiler makes the caller look.
"""

from __future__ import annotations

import json
import re
from typing import Any

IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# names a type may not take (TypeScript's own, or globals the generated code uses)
RESERVED = {
    "any", "unknown", "never", "object", "string", "number", "boolean", "bigint", "symbol", "undefined", "null", "void",
    "this", "type", "interface", "class", "enum", "extends", "implements", "function", "var", "let", "const", "new",
    "delete", "in", "of", "typeof", "instanceof", "return", "if", "else", "for", "while", "do", "switch", "case",
    "default", "break", "continue", "throw", "try", "catch", "finally", "import", "export", "super", "with", "yield",
    "await", "async", "package", "private", "protected", "public", "static", "true", "false", "debugger",
    "Array", "Record", "Promise", "Error", "Object", "String", "Number", "Boolean", "Date", "Map", "Set", "Response", "Headers",
}  # fmt: skip
CONSTRAINTS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems", "format")


def type_name(name: str) -> str:
    """A schema name as a TypeScript type name: identifier characters only, never a reserved word."""
    cleaned = re.sub(r"[^A-Za-z0-9_$]", "_", name) or "Type"
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned + "_" if cleaned in RESERVED else cleaned


def ref_name(ref: str) -> str:
    return type_name(ref.rsplit("/", 1)[-1])


def ts_type(schema: Any, indent: str = "", prefix: str = "") -> str:
    """prefix qualifies named types: "T." gives `T.Order` for a module that imports types.ts as T."""
    if schema is True or schema == {} or schema is None:
        return "unknown"
    if schema is False:
        return "never"
    if not isinstance(schema, dict):
        return "unknown"
    if isinstance(schema.get("$ref"), str):
        return prefix + ref_name(schema["$ref"])
    if "const" in schema:
        return _literal(schema["const"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(_literal(v) for v in schema["enum"]) or "never"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " | ".join(dict.fromkeys(_wrap(ts_type(s, indent, prefix)) for s in schema[key])) or "never"
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " | ".join(dict.fromkeys(_wrap(ts_type({**schema, "type": k}, indent, prefix)) for k in kinds)) or "never"
    if kinds == "string":
        return "string"
    if kinds in ("integer", "number"):
        return "number"
    if kinds == "boolean":
        return "boolean"
    if kinds == "null":
        return "null"
    if kinds == "array":
        items = schema.get("items")
        return f"{_wrap(ts_type(items, indent, prefix))}[]" if items is not None else "unknown[]"
    if kinds == "object" or "properties" in schema:
        return _object(schema, indent, prefix)
    return "unknown"


def ts_declaration(name: str, schema: Any) -> str:
    """`export interface Name {...}` for objects with properties, `export type Name = ...` otherwise."""
    doc = _doc(schema, "")
    if isinstance(schema, dict) and (schema.get("type") == "object" or "properties" in schema) and "anyOf" not in schema:
        body = _object(schema, "")
        if body.startswith("{"):
            return f"{doc}export interface {type_name(name)} {body}"
    return f"{doc}export type {type_name(name)} = {ts_type(schema)};"


def _object(schema: dict, indent: str, prefix: str = "") -> str:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    extra = schema.get("additionalProperties", True)
    inner = indent + "  "
    lines = []
    for key, sub in props.items():
        lines.append(f"{_doc(sub, inner)}{inner}{_key(key)}{'' if key in required else '?'}: {ts_type(sub, inner, prefix)};")
    if extra is not False and extra is not None:
        value = "unknown" if extra is True or extra == {} else ts_type(extra, inner, prefix)
        if props:  # an index signature must admit every named property's type as well
            value = "unknown"
        lines.append(f"{inner}[key: string]: {value};")
    if not lines:
        return "{}" if extra is False else "{ [key: string]: unknown }"
    return "{\n" + "\n".join(lines) + "\n" + indent + "}"


def _doc(schema: Any, indent: str) -> str:
    if not isinstance(schema, dict):
        return ""
    parts = []
    if isinstance(schema.get("description"), str):
        parts.append(schema["description"])
    shown = [f"{k} {json.dumps(schema[k])}" for k in CONSTRAINTS if k in schema]
    if shown:
        parts.append(", ".join(shown))
    if not parts:
        return ""
    text = " ".join(parts).replace("*/", "* /")
    return f"{indent}/** {text} */\n"


def _key(key: str) -> str:
    return key if IDENT.match(key) else json.dumps(key)


def _literal(value: Any) -> str:
    if isinstance(value, (str, bool)) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return json.dumps(value) if abs(value) < 2**53 else "number"
    return "unknown"


def _wrap(t: str) -> str:
    """Parenthesise anything holding a union before [] or inside another union (harmless when not needed)."""
    return f"({t})" if " | " in t else t
