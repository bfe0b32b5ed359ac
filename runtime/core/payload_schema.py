"""Payload schemas: the JSON Schema a module method declares for its input and its output.

    [methods.resize]
    input = { type = "object", required = ["width"], properties = { width = { type = "integer", minimum = 1 } } }
    output = "schemas/resize.out.json"      # or a JSON file next to module.toml

A schema is JSON Schema, draft 2020-12 unless its "$schema" names another draft. It is checked
when the manifest is read (a broken schema is a ManifestError naming the key) and compiled once
per registration; the module manager then checks both directions of every call against it
(runtime.modules.contracts). Mismatches come back as Issues, the shape handler validation uses:
every one, each with its path, what was expected and what came.

jsonschema-rs does the checking: a payload that fits costs about half a microsecond, where
python-jsonschema takes about 80. A "$ref" must point inside the schema ("#/$defs/..."): nothing is
ever fetched, from the network or from disk, while a schema is compiled.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs

from runtime.core.issues import Issue, actual, key_path

MAX_SCHEMA_BYTES = 256 * 1024  # a schema file; a payload schema larger than this is a data file


def problem(schema: Any) -> str | None:
    """Why schema cannot be a payload schema, or None when it can."""
    if not isinstance(schema, dict):
        return "a schema is a table (an inline JSON Schema) or the path of a .json file"
    outside = _outside_refs(schema)
    if outside:
        return f"$ref {outside!r} points outside the schema; only refs like \"#/$defs/name\" are followed"
    try:
        jsonschema_rs.validator_for(schema, retriever=_refuse)
    except jsonschema_rs.ValidationError as exc:
        where = "".join(f"[{p!r}]" for p in exc.instance_path)
        return f"not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}"
    except (ValueError, TypeError, jsonschema_rs.ReferencingError) as exc:
        return f"not a valid JSON Schema: {str(exc).splitlines()[0]}"
    return None


def parse_file(text: bytes) -> tuple[Any, str | None]:
    """A schema file's JSON, or the reason it is not JSON (the problem names a position, never the content)."""
    if len(text) > MAX_SCHEMA_BYTES:
        return None, f"{len(text)} bytes, over the {MAX_SCHEMA_BYTES}-byte limit of a schema file"
    try:
        return json.loads(text), None
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"not JSON: {getattr(exc, 'msg', None) or type(exc).__name__} at byte {getattr(exc, 'pos', getattr(exc, 'start', 0))}"


class PayloadSchema:
    """One compiled schema: `issues(value)` lists every mismatch, empty when the value fits."""

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        self._validator = jsonschema_rs.validator_for(schema, retriever=_refuse)

    def issues(self, value: Any) -> list[Issue]:
        if self._validator.is_valid(value):
            return []
        found: list[Issue] = []
        for err in self._validator.iter_errors(value):
            found.extend(self._issues(err))
        return found

    def _issues(self, err: Any) -> list[Issue]:
        path = "$"
        for step in err.instance_path:
            path = key_path(path, step)
        kind = type(err.kind).__name__
        where = _walk(self.schema, list(err.schema_path)[:-1])
        if where is None:  # a location we cannot follow: the library's own words
            return [Issue(path, err.message, actual(err.instance))]
        if kind == "Required":
            name = err.kind.property
            field = (where.get("properties") or {}).get(name, {})
            return [Issue(key_path(path, name), describe(_deref(self.schema, field)) + " (required)", "(missing)")]
        if kind == "AdditionalProperties":
            known = ", ".join(sorted(where.get("properties") or {})) or "none"
            return [Issue(key_path(path, k), f"no such field (known: {known})", actual(err.instance.get(k))) for k in err.kind.unexpected]
        if kind == "FalseSchema":
            return [Issue(path, "nothing (the schema admits no value here)", actual(err.instance))]
        return [Issue(path, describe(_deref(self.schema, where)), actual(err.instance))]


def describe(schema: Any) -> str:
    """What a schema admits, for people, in the words GType.describe uses: 'integer, >= 1', "one of 'a', 'b'"."""
    if schema is True or schema == {}:
        return "any value"
    if not isinstance(schema, dict):
        return "nothing"
    if "const" in schema:
        return f"exactly {schema['const']!r}"
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " | ".join(describe(s) for s in schema[key])
    kinds = schema.get("type")
    base = " | ".join(kinds) if isinstance(kinds, list) else kinds or "value"
    if base == "object" and schema.get("title"):
        base = f"object {schema['title']}"
    items = schema.get("items") if base == "array" else schema.get("additionalProperties") if base == "object" else None
    if isinstance(items, dict) and items:
        base += f" of {describe(items)}"
    words = [(k, w) for k, w in _WORDS.items() if k in schema]
    return ", ".join([base] + [f"{w} {schema[k]!r}" if k == "pattern" else f"{w} {schema[k]}" for k, w in words])


_WORDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<", "multipleOf": "multiple of",
          "minLength": "length >=", "maxLength": "length <=", "minItems": "length >=", "maxItems": "length <=",
          "minProperties": "size >=", "maxProperties": "size <=", "pattern": "matching"}  # fmt: skip


def _refuse(uri: str) -> Any:
    raise ValueError(f"{uri} is outside the schema: payload schemas fetch nothing")


def _outside_refs(node: Any) -> str | None:
    if isinstance(node, dict):
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str) and not ref.startswith("#"):
                return ref
        for v in node.values():
            found = _outside_refs(v)
            if found:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _outside_refs(v)
            if found:
                return found
    return None


def _deref(root: dict, node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#") and seen < 16:
        node, seen = _pointer(root, node["$ref"][1:]), seen + 1
    return node


def _pointer(root: Any, pointer: str) -> Any:
    node = root
    for part in [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _walk(root: dict, steps: list) -> Any:
    """The schema object holding the failing keyword, following "$ref" steps the library reports."""
    node: Any = root
    for step in steps:
        if step == "$ref" and isinstance(node, dict):
            node = _pointer(root, str(node.get("$ref", "#"))[1:])
        elif isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
        if node is None:
            return None
    return node if isinstance(node, dict) else None
