"""JSON Schema -> Python type hints, with a TypedDict for each object that names its properties.

    types = PyTypes()
    types.hint({"type": "array", "items": {"type": "integer"}}, "Sizes")      -> "list[int]"
    types.hint({"type": "object", "title": "Thumbnail", "properties": {...}}, "ThumbsResizeOutput")
                                                                             -> "Thumbnail" (class declared)
    types.declarations()                                                     -> the TypedDict classes, in order

A name comes from the schema's title, else from where it appears (module, method, direction,
property). Two different schemas never share a name (the second gets a number); the same schema
seen twice is declared once. Required keys are plain, others NotRequired. What typing cannot say
(bounds, patterns) goes into a comment. Anything unknown is Any.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# names a generated class may not take: they would shadow what the stub file itself uses
RESERVED = {"Any", "Literal", "NotRequired", "Protocol", "TypedDict", "overload", "Mapping", "str", "int", "float", "bool", "list", "dict", "None"}
CONSTRAINTS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems")


def class_name(text: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Payload"
    if name[0].isdigit():
        name = "_" + name
    return name + "_" if name in RESERVED or keyword.iskeyword(name) else name


class PyTypes:
    def __init__(self) -> None:
        self._decls: dict[str, str] = {}  # name -> class text
        self._schemas: dict[str, str] = {}  # name -> canonical JSON of the schema it declares

    def declarations(self) -> list[str]:
        return list(self._decls.values())

    def hint(self, schema: Any, name: str, root: Any = None) -> str:
        root = schema if root is None else root
        if schema is True or schema == {} or schema is None or not isinstance(schema, dict):
            return "Any"
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target = root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            return self.hint(target, class_name(ref.rsplit("/", 1)[-1]), root)
        if "const" in schema:
            return self._literal([schema["const"]])
        if isinstance(schema.get("enum"), list):
            return self._literal(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return _union([self.hint(s, f"{name}{i + 1}", root) for i, s in enumerate(schema[key])])
        kinds = schema.get("type")
        if isinstance(kinds, list):
            return _union([self.hint({**schema, "type": k}, name, root) for k in kinds])
        simple = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
        if kinds in simple:
            return simple[kinds]
        if kinds == "array":
            return f"list[{self.hint(schema.get('items'), name + 'Item', root)}]"
        if kinds == "object" or "properties" in schema:
            if schema.get("properties"):
                return self._typeddict(schema, class_name(schema["title"]) if isinstance(schema.get("title"), str) else name, root)
            extra = schema.get("additionalProperties", True)
            return f"dict[str, {self.hint(extra if isinstance(extra, dict) else {}, name + 'Value', root)}]"
        return "Any"

    def _typeddict(self, schema: dict, name: str, root: Any) -> str:
        canonical = json.dumps(schema, sort_keys=True)
        base, n = name, 2
        while name in self._schemas and self._schemas[name] != canonical:
            name, n = f"{base}{n}", n + 1
        if name in self._schemas:
            return name
        self._schemas[name] = canonical
        self._decls[name] = ""  # reserved now: a recursive reference finds it
        required = set(schema.get("required") or [])
        fields = []
        for key, sub in schema["properties"].items():
            hint = self.hint(sub, name + class_name(key), root)
            fields.append((key, hint if key in required else f"NotRequired[{hint}]", _note(sub)))
        doc = schema.get("description")
        if all(IDENT.match(k) and not keyword.iskeyword(k) for k, _, _ in fields):
            lines = [f"class {name}(TypedDict):"]
            if isinstance(doc, str):
                lines.append(f"    {json.dumps(doc)}")
            for key, hint, note in fields:
                lines.append(f"    {key}: {hint}" + (f"  # {note}" if note else ""))
            self._decls[name] = "\n".join(lines)
        else:  # keys Python cannot spell as names: the functional form
            body = ", ".join(f"{json.dumps(k)}: {h}" for k, h, _ in fields)
            self._decls[name] = f"{name} = TypedDict({json.dumps(name)}, {{{body}}})"
        return name

    @staticmethod
    def _literal(values: list) -> str:
        parts = []
        for v in values:
            if isinstance(v, (str, int, bool)) or v is None:
                parts.append(repr(v))
            else:  # floats, objects: Literal cannot hold them
                return "Any"
        return f"Literal[{', '.join(dict.fromkeys(parts))}]" if parts else "Any"


def _union(hints: list[str]) -> str:
    unique = list(dict.fromkeys(hints))
    return "Any" if "Any" in unique else " | ".join(unique)


def _note(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    return ", ".join(f"{k} {json.dumps(schema[k])}" for k in CONSTRAINTS if k in schema)
