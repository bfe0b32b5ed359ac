"""GType: a request or response type declared with Python type hints, as a schema the runtime checks.

    class NewUser(TypedDict):
        name: Annotated[str, MinLen(1), MaxLen(80)]
        age: NotRequired[Annotated[int, Ge(0)]]

    t = GType.of(NewUser)
    t.check({"name": "ann"})         # -> the value (dataclasses come back as instances)
    t.check({"name": 3})             # ValidationFailed: $.name: expected string, got 3
    t.json_schema()                  # JSON Schema (draft 2020-12)
    diff(old, new).breaking          # would a client of `old` break against `new`?

Supported: str, int, float, bool, None, Any, list[T], tuple[T, ...], dict[str, T], Literal,
Enum, unions (X | Y, Optional), TypedDict (Required/NotRequired), dataclasses, and Annotated
constraints from annotated_types (Ge, Gt, Le, Lt, MinLen, MaxLen, Len, Interval, MultipleOf)
or msgspec.Meta (ge, gt, le, lt, min_length, max_length, multiple_of, pattern).

Objects are strict: a key the type does not name is an error, so a typo in a field name is
reported instead of silently ignored. Values are the JSON kinds: bool is never an integer, and
a number with no fraction (2.0) is an integer, as in JSON Schema. What `check` accepts is exactly
what `json_schema()` accepts (tests/test_gtype_schema.py holds it for any type and value), except
that a float `multipleOf` is checked with a tolerance (0.3 is a multiple of 0.1).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Union, get_args, get_origin

from runtime.core.errors import GatiError
from runtime.core.issues import Issue
from runtime.core.issues import actual as _actual
from runtime.core.issues import key_path as _key
from runtime.core.issues import show as _show

SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
# Constraint names are JSON Schema's; the attribute names are what annotated_types and msgspec.Meta use.
LOWER = {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"}
UPPER = {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"}
_ATTRS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum", "multiple_of": "multipleOf", "pattern": "pattern"}
_LENGTH = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"), "map": ("minProperties", "maxProperties")}
MISSING = object()


class GTypeError(GatiError):
    """A type hint that cannot be a request or response type."""

    code = "gtype_invalid"


class ValidationFailed(GatiError):
    code = "invalid_request"
    http_status = 400

    def __init__(self, issues: list[Issue], what: str = "request body"):
        first = issues[0]
        super().__init__(
            f"the {what} does not match its type: {first.path}: expected {first.expected}, got {_show(first.actual)}",
            fix="send a body of the declared type; `errors` lists every mismatch",
            errors=[i.to_dict() for i in issues],
        )
        self.issues = issues


@dataclass(frozen=True)
class Field:
    name: str
    type: GType
    required: bool
    suffix: str = field(default="", init=False, compare=False, repr=False)  # ".name" or "['odd key']", for paths

    def __post_init__(self):
        object.__setattr__(self, "suffix", _key("", self.name))


@dataclass(frozen=True)
class GType:
    kind: str  # any null boolean integer number string array map object union literal
    name: str = ""  # of a TypedDict, dataclass or Enum
    items: GType | None = None  # array elements, map values
    fields: tuple[Field, ...] = ()  # object
    options: tuple[GType, ...] = ()  # union
    values: tuple = ()  # literal
    constraints: tuple[tuple[str, Any], ...] = ()  # sorted (JSON Schema keyword, value)
    factory: Callable | None = field(default=None, compare=False, repr=False)  # dataclass or Enum to build

    @classmethod
    def of(cls, tp: Any) -> GType:
        return _from_hint(tp, ())

    # -- checking ------------------------------------------------------------------------

    def check(self, value: Any, what: str = "request body") -> Any:
        """The value, converted (dataclasses, Enums); ValidationFailed listing every mismatch otherwise."""
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = _compile(self)
            object.__setattr__(self, "_fast", fast)  # made once per type; not a field: equality and hash ignore it
        try:
            return fast(value)
        except _Slow:
            pass  # something is wrong: the full walk finds every mismatch and its path
        issues: list[Issue] = []
        out = self._check(value, "$", issues, True)
        if issues:
            raise ValidationFailed(issues, what)
        return out

    def issues(self, value: Any, *, ignore_extra_keys: bool = False) -> list[Issue]:
        """Every mismatch; ignore_extra_keys reads like a tolerant client (unknown object keys pass)."""
        found: list[Issue] = []
        self._check(value, "$", found, not ignore_extra_keys)
        return found

    def accepts(self, value: Any, *, ignore_extra_keys: bool = False) -> bool:
        return not self.issues(value, ignore_extra_keys=ignore_extra_keys)

    def _check(self, v: Any, path: str, issues: list[Issue], strict: bool) -> Any:
        kind = self.kind
        if kind == "object":
            if type(v) is not dict:
                issues.append(Issue(path, self.describe(), _actual(v)))
                return v
            out = {}
            for f in self.fields:
                item = v.get(f.name, MISSING)
                if item is MISSING:
                    if f.required:
                        issues.append(Issue(path + f.suffix, f.type.describe() + " (required)", "(missing)"))
                    continue
                out[f.name] = f.type._check(item, path + f.suffix, issues, strict)
            if strict and len(v) > len(out):
                known = {f.name for f in self.fields}
                for k in v:
                    if k not in known:
                        issues.append(Issue(_key(path, k), f"no such field (known: {', '.join(sorted(known)) or 'none'})", _actual(v[k])))
            if self.factory is not None and not issues:
                return self.factory(**out)
            return out
        if kind == "array":
            if type(v) is not list:
                issues.append(Issue(path, self.describe(), _actual(v)))
                return v
            self._constrain(len(v), v, path, issues)
            return [self.items._check(x, f"{path}[{i}]", issues, strict) for i, x in enumerate(v)]
        if kind == "map":
            if type(v) is not dict:
                issues.append(Issue(path, self.describe(), _actual(v)))
                return v
            self._constrain(len(v), v, path, issues)
            return {k: self.items._check(x, _key(path, k), issues, strict) for k, x in v.items()}
        if kind == "union":
            for option in self.options:
                trial: list[Issue] = []
                out = option._check(v, path, trial, strict)
                if not trial:
                    return out
            # Of the options of the value's own JSON kind, report the one that came closest, deep inside.
            same = [o for o in self.options if _kind_fits(o, v)]
            if len(same) == 1:
                return same[0]._check(v, path, issues, strict)
            issues.append(Issue(path, self.describe(), _actual(v)))
            return v
        if kind == "literal":
            for lit in self.values:
                # 1.0 is the number 1 in JSON (and in JSON Schema's enum), never the boolean true
                if v == lit and (type(v) is type(lit) or (type(v) is float and type(lit) is int)):
                    return self.factory(lit) if self.factory is not None else lit
            issues.append(Issue(path, self.describe(), _actual(v)))
            return v
        if kind == "any":
            return v
        t = type(v)
        if kind == "integer" and t is float and v.is_integer():
            # JSON has one number type: 2.0 is the integer 2 (JSON Schema says so too), so a client's
            # encoder writing "2.0" is not refused; the handler gets an int.
            v, t = int(v), int
        ok = (
            (kind == "string" and t is str)
            or (kind == "integer" and t is int)
            or (kind == "number" and (t is int or t is float))
            or (kind == "boolean" and t is bool)
            or (kind == "null" and v is None)
        )
        if not ok:
            issues.append(Issue(path, self.describe(), _actual(v)))
        elif self.constraints:
            self._constrain(len(v) if kind == "string" else v, v, path, issues)
        return v

    def _constrain(self, measure: Any, v: Any, path: str, issues: list[Issue]) -> None:
        for name, bound in self.constraints:
            ok = True
            if name in ("minimum", "minLength", "minItems", "minProperties"):
                ok = measure >= bound
            elif name in ("maximum", "maxLength", "maxItems", "maxProperties"):
                ok = measure <= bound
            elif name == "exclusiveMinimum":
                ok = measure > bound
            elif name == "exclusiveMaximum":
                ok = measure < bound
            elif name == "multipleOf":
                if type(measure) is int and type(bound) is int:
                    ok = measure % bound == 0  # exact, however large
                else:  # a float divisor: 0.3 is a multiple of 0.1 for people, if not in binary
                    ok = math.isclose(measure / bound, round(measure / bound))
            elif name == "pattern":
                ok = _regex(bound).search(v) is not None
            if not ok:
                issues.append(Issue(path, self.describe(), _actual(v)))
                return

    # -- describing ----------------------------------------------------------------------

    def describe(self) -> str:
        """What a value must be, for people: 'integer >= 0', 'object NewUser', "one of 'a', 'b'"."""
        if self.kind == "union":
            return " | ".join(o.describe() for o in self.options)
        if self.kind == "literal":
            return "one of " + ", ".join(repr(v) for v in self.values)
        base = {"map": "object", "any": "any value"}.get(self.kind, self.kind)
        if self.kind == "object" and self.name:
            base = f"object {self.name}"
        if self.kind in ("array", "map") and self.items.kind != "any":
            base += f" of {self.items.describe()}"
        words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<", "multipleOf": "multiple of",
                 "minLength": "length >=", "maxLength": "length <=", "minItems": "length >=", "maxItems": "length <=",
                 "minProperties": "size >=", "maxProperties": "size <=", "pattern": "matching"}
        shown = sorted(self.constraints, key=lambda c: list(words).index(c[0]))
        return ", ".join([base] + [f"{words[n]} {b!r}" if n == "pattern" else f"{words[n]} {b}" for n, b in shown])

    def json_schema(self) -> dict[str, Any]:
        """This type as JSON Schema (draft 2020-12), e.g. for an OpenAPI document or a client's validator."""
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **self._schema()}

    def _schema(self) -> dict[str, Any]:
        k = self.kind
        if k == "any":
            s: dict[str, Any] = {}
        elif k == "union":
            s = {"anyOf": [o._schema() for o in self.options]}
        elif k == "literal":
            s = {"enum": list(self.values)}
        elif k == "array":
            s = {"type": "array", "items": self.items._schema()}
        elif k == "map":
            s = {"type": "object", "additionalProperties": self.items._schema()}
        elif k == "object":
            s = {
                "type": "object",
                "properties": {f.name: f.type._schema() for f in self.fields},
                "required": [f.name for f in self.fields if f.required],
                "additionalProperties": False,
            }
        else:
            s = {"type": k}
        if self.name:
            s["title"] = self.name
        s.update(self.constraints)
        return s


# -- building a GType from a type hint -------------------------------------------------------


def _from_hint(tp: Any, stack: tuple) -> GType:
    if isinstance(tp, (dict, list, set)):  # a value where a type belongs, e.g. REQUEST = {"a": str}
        raise GTypeError(f"{tp!r} is a value, not a type", fix="declare a type: a msgspec.Struct, TypedDict or dataclass, or e.g. dict[str, int]")
    if tp is Any or tp is object:
        return GType("any")
    if tp is None or tp is type(None):
        return GType("null")
    if tp in SCALARS:
        return GType(SCALARS[tp])
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return _constrained(_from_hint(args[0], stack), args[1:])
    if origin in (typing.Required, typing.NotRequired):
        return _from_hint(args[0], stack)
    if origin is Literal:
        for v in args:
            if not isinstance(v, (str, int, bool)) and v is not None:
                raise GTypeError(f"Literal[{v!r}] is not a JSON value", fix="use strings, integers, booleans or None in Literal")
        return GType("literal", values=tuple(dict.fromkeys(args)))
    if origin in (Union, types.UnionType):
        options: list[GType] = []
        for a in args:
            g = _from_hint(a, stack)
            for o in g.options if g.kind == "union" else (g,):
                if o not in options:
                    options.append(o)
        return options[0] if len(options) == 1 else GType("union", options=tuple(options))
    if tp is list or origin is list or tp is tuple or origin is tuple:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise GTypeError(f"{tp} is a fixed-length tuple", fix="use tuple[T, ...] or list[T]")
        return GType("array", items=_from_hint(args[0], stack) if args else GType("any"))
    if tp is dict or origin is dict:
        if args and args[0] is not str:
            raise GTypeError(f"{tp} has non-string keys, which JSON objects cannot have", fix="use dict[str, T]")
        return GType("map", items=_from_hint(args[1], stack) if args else GType("any"))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return GType("literal", name=tp.__name__, values=tuple(m.value for m in tp), factory=tp)
    if typing.is_typeddict(tp) or dataclasses.is_dataclass(tp):
        if tp in stack:
            raise GTypeError(f"{tp.__name__} refers to itself", fix="recursive types are not supported: flatten the type, or use Any for the nested part")
        return _object(tp, stack + (tp,))
    raise GTypeError(
        f"{tp!r} cannot be a request or response type",
        fix="use a TypedDict, a dataclass, list[T], dict[str, T], Literal, an Enum, str, int, float, bool, None, or unions of these",
    )


def _object(tp: type, stack: tuple) -> GType:
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:
        raise GTypeError(f"the type hints of {tp.__name__} cannot be resolved: {exc}", fix="import every type its fields name") from None
    if dataclasses.is_dataclass(tp):
        fields = tuple(
            Field(f.name, _from_hint(hints[f.name], stack), f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(tp)
            if f.init
        )
        return GType("object", name=tp.__name__, fields=fields, factory=tp)
    required = tp.__required_keys__
    return GType("object", name=tp.__name__, fields=tuple(Field(n, _from_hint(h, stack), n in required) for n, h in hints.items()))


def _constrained(base: GType, metadata: Iterable[Any]) -> GType:
    found = dict(base.constraints)
    for meta in _flatten(metadata):
        for attr, name in _ATTRS.items():
            value = getattr(meta, attr, None)
            if value is not None:
                found[name] = value
        for attr, i in (("min_length", 0), ("max_length", 1)):
            value = getattr(meta, attr, None)
            if value is not None:
                if base.kind not in _LENGTH:
                    raise GTypeError(f"a length limit on {base.describe()}", fix="put MinLen/MaxLen on str, list or dict")
                found[_LENGTH[base.kind][i]] = value
    numeric = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    if numeric & found.keys() and base.kind not in ("integer", "number"):
        raise GTypeError(f"a numeric bound on {base.describe()}", fix="put Ge/Gt/Le/Lt/MultipleOf on int or float")
    if "pattern" in found and base.kind != "string":
        raise GTypeError(f"a pattern on {base.describe()}", fix="put pattern on str")
    return dataclasses.replace(base, constraints=tuple(sorted(found.items())))


def _flatten(metadata: Iterable[Any]) -> Iterable[Any]:
    for meta in metadata:
        # annotated_types' Interval and Len are GroupedMetadata: iterable over their parts
        if hasattr(meta, "__iter__") and type(meta).__module__.startswith("annotated_types") and not isinstance(meta, str):
            yield from meta
        else:
            yield meta


# -- the compiled check -----------------------------------------------------------------------
# check() first runs a function made once per type from its kinds, fields and constraints: what _check
# does for a value that passes, without its kind tests, paths and issue list (1.35 -> 0.6 µs for a
# two-field TypedDict, docs/performance.md). At the first mismatch it gives up (_Slow) and _check walks
# the value again to report every mismatch with its path; a property test holds the two to the same
# answer for any type and value (tests/test_gtype.py).


class _Slow(Exception):
    """The value does not pass: the full walk (GType._check) says why."""


def _compile(t: GType) -> Callable[[Any], Any]:
    kind = t.kind
    bounds = _compile_constraints(t.constraints)
    if kind == "object":
        fields = tuple((f.name, _compile(f.type), f.required) for f in t.fields)
        factory = t.factory

        def check_object(v: Any) -> Any:
            if type(v) is not dict:
                raise _Slow
            out = {}
            for name, check, required in fields:
                item = v.get(name, MISSING)
                if item is MISSING:
                    if required:
                        raise _Slow
                    continue
                out[name] = check(item)
            if len(v) > len(out):  # a key the type does not name (out holds every named one v has)
                raise _Slow
            return factory(**out) if factory is not None else out

        return check_object
    if kind in ("array", "map"):
        items = _compile(t.items)
        container = list if kind == "array" else dict

        def check_container(v: Any) -> Any:
            if type(v) is not container:
                raise _Slow
            for bound in bounds:
                bound(len(v), v)
            if container is list:
                return [items(x) for x in v]
            return {k: items(x) for k, x in v.items()}

        return check_container
    if kind == "union":
        options = tuple(_compile(o) for o in t.options)

        def check_union(v: Any) -> Any:
            for option in options:
                try:
                    return option(v)
                except _Slow:
                    continue
            raise _Slow

        return check_union
    if kind == "literal":
        values, factory = t.values, t.factory

        def check_literal(v: Any) -> Any:
            for lit in values:
                if v == lit and (type(v) is type(lit) or (type(v) is float and type(lit) is int)):
                    return factory(lit) if factory is not None else lit
            raise _Slow

        return check_literal
    if kind == "any":
        return _same
    types_ok = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),)}[kind]
    measure_len = kind == "string"

    def check_scalar(v: Any) -> Any:
        t_ = type(v)
        if t_ is float and kind == "integer" and v.is_integer():
            v, t_ = int(v), int
        if t_ not in types_ok:
            raise _Slow
        for bound in bounds:
            bound(len(v) if measure_len else v, v)
        return v

    return check_scalar


def _same(v: Any) -> Any:
    return v


def _compile_constraints(constraints: tuple[tuple[str, Any], ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """One test per constraint, as GType._constrain applies it; each raises _Slow when not met."""
    tests = []
    for name, bound in constraints:
        if name in ("minimum", "minLength", "minItems", "minProperties"):
            def test(m, v, b=bound):
                if not m >= b:
                    raise _Slow
        elif name in ("maximum", "maxLength", "maxItems", "maxProperties"):
            def test(m, v, b=bound):
                if not m <= b:
                    raise _Slow
        elif name == "exclusiveMinimum":
            def test(m, v, b=bound):
                if not m > b:
                    raise _Slow
        elif name == "exclusiveMaximum":
            def test(m, v, b=bound):
                if not m < b:
                    raise _Slow
        elif name == "multipleOf":
            def test(m, v, b=bound):
                if type(m) is int and type(b) is int:
                    ok = m % b == 0
                else:
                    ok = math.isclose(m / b, round(m / b))
                if not ok:
                    raise _Slow
        elif name == "pattern":
            def test(m, v, b=bound):
                if _regex(b).search(v) is None:
                    raise _Slow
        else:
            continue  # _constrain passes what it does not know
        tests.append(test)
    return tuple(tests)


# -- helpers ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    """A JSON Schema pattern (ECMA-262) as a Python regex: `$` ends the text, as in JavaScript and in
    the JSON Schema published for clients; Python's `$` would also match before a final newline."""
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "$" and not in_class:
            ch = r"\Z"
        out.append(ch)
    return re.compile("".join(out))


def _kind_fits(t: GType, v: Any) -> bool:
    """Could t be the option the value meant (same JSON kind), so its deeper issues help?"""
    want = {"object": dict, "map": dict, "array": list}.get(t.kind)
    return want is not None and type(v) is want


# -- schema diff -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str
    what: str
    narrows: bool  # some value the old type accepted, the new one rejects
    widens: bool  # the new type may hold a value a reader of the old one rejects (extra object keys aside)


@dataclass(frozen=True)
class Diff:
    changes: tuple[Change, ...]
    role: str  # "request": the server reads it; "response": clients read it

    @property
    def breaking(self) -> bool:
        """request: an old client's body is now refused; response: an old client cannot read a new answer."""
        return any(self.is_breaking(c) for c in self.changes)

    def is_breaking(self, c: Change) -> bool:
        return c.narrows if self.role == "request" else c.widens

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "breaking": self.breaking,
            "changes": [{"path": c.path, "what": c.what, "breaking": self.is_breaking(c)} for c in self.changes],
        }


def diff(old: GType, new: GType, *, role: Literal["request", "response"] = "request") -> Diff:
    """The changes from old to new and whether they break clients.

    A request type breaks when it now refuses a body it accepted; a response type breaks when
    it may now answer with something a client written against the old type cannot read (a
    client that ignores unknown keys, as tolerant readers do: adding a response field is fine).
    Where the rules cannot tell (a changed pattern), the change counts as breaking both ways.
    """
    if role not in ("request", "response"):
        raise ValueError(f"role must be 'request' or 'response', not {role!r}")
    out: list[Change] = []
    _compare(old, new, "$", out)
    return Diff(tuple(out), role)


def _compare(old: GType, new: GType, path: str, out: list[Change]) -> None:
    if old == new:
        return
    if new.kind == "any":
        out.append(Change(path, f"{old.describe()} became any value", False, True))
        return
    if old.kind == "any":
        out.append(Change(path, f"any value became {new.describe()}", True, False))
        return
    if old.kind == "union" or new.kind == "union":
        _compare_options(old, new, path, out)
        return
    if old.kind != new.kind:
        if (old.kind, new.kind) == ("integer", "number"):
            out.append(Change(path, "integer became number", False, True))
            _compare_constraints(old, new, path, out)
        elif (old.kind, new.kind) == ("number", "integer"):
            out.append(Change(path, "number became integer", True, False))
            _compare_constraints(old, new, path, out)
        else:
            out.append(Change(path, f"{old.describe()} became {new.describe()}", True, True))
        return
    if old.kind == "literal":
        gone = [v for v in old.values if not _has(new.values, v)]
        added = [v for v in new.values if not _has(old.values, v)]
        if gone:
            out.append(Change(path, f"values removed: {', '.join(map(repr, gone))}", True, False))
        if added:
            out.append(Change(path, f"values added: {', '.join(map(repr, added))}", False, True))
        return
    if old.kind in ("array", "map"):
        _compare(old.items, new.items, path + ("[]" if old.kind == "array" else "{}"), out)
    if old.kind == "object":
        olds, news = {f.name: f for f in old.fields}, {f.name: f for f in new.fields}
        for name, f in olds.items():
            at = _key(path, name)
            if name not in news:
                # strict objects: the key is now refused; a required key no reader of old can do without
                out.append(Change(at, "field removed", True, f.required))
                continue
            g = news[name]
            if f.required and not g.required:
                out.append(Change(at, "field became optional", False, True))
            elif g.required and not f.required:
                out.append(Change(at, "field became required", True, False))
            _compare(f.type, g.type, at, out)
        for name, g in news.items():
            if name not in olds:
                out.append(Change(_key(path, name), "required field added" if g.required else "optional field added", g.required, False))
    _compare_constraints(old, new, path, out)


def _compare_constraints(old: GType, new: GType, path: str, out: list[Change]) -> None:
    a, b = dict(old.constraints), dict(new.constraints)
    for name in sorted(a.keys() | b.keys()):
        x, y = a.get(name), b.get(name)
        if x == y:
            continue
        if name in LOWER or name in UPPER:
            if x is None:
                tighter = True
            elif y is None:
                tighter = False
            else:
                tighter = y > x if name in LOWER else y < x
            out.append(Change(path, f"{name} {x} -> {y}", tighter, not tighter))
        else:  # pattern, multipleOf: whether one admits more than the other is not decidable here
            out.append(Change(path, f"{name} {x!r} -> {y!r}", y is not None, x is not None))


def _compare_options(old: GType, new: GType, path: str, out: list[Change]) -> None:
    olds, news = _flat_options(old), _flat_options(new)
    # Pair options by kind (literals pooled into one), so `int | str` -> `int | str | None` reads as "null added".
    lits_old = [v for o in olds if o.kind == "literal" for v in o.values]
    lits_new = [v for o in news if o.kind == "literal" for v in o.values]
    if lits_old or lits_new:
        if lits_old and lits_new:
            _compare(GType("literal", values=tuple(lits_old)), GType("literal", values=tuple(lits_new)), path, out)
        elif lits_old:
            out.append(Change(path, "literal option removed", True, False))
        else:
            out.append(Change(path, "literal option added", False, True))
    olds = [o for o in olds if o.kind != "literal"]
    news = [o for o in news if o.kind != "literal"]
    unmatched = list(news)
    for o in olds:
        match = next((n for n in unmatched if n.kind == o.kind), None)
        if match is None and o.kind == "integer":
            match = next((n for n in unmatched if n.kind == "number"), None)
        if match is None:
            wider = next((n for n in unmatched if n.kind == "any"), None)
            out.append(Change(path, f"option {o.describe()} removed", wider is None, False))
            continue
        unmatched.remove(match)
        _compare(o, match, path, out)
    for n in unmatched:
        out.append(Change(path, f"option {n.describe()} added", False, True))


def _flat_options(t: GType) -> list[GType]:
    # GType.of flattens unions; a GType built by hand may still nest them
    return [o for option in t.options for o in _flat_options(option)] if t.kind == "union" else [t]


def _has(values: tuple, v: Any) -> bool:
    return any(v == w and type(v) is type(w) for w in values)
