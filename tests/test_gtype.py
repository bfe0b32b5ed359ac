"""GType: type hints -> schema; validation accepts exactly the values of the type; schema diffs."""

import dataclasses
import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import msgspec
import pytest
from annotated_types import Ge, Interval, MaxLen, MinLen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.http.gtype import Field, GType, GTypeError, ValidationFailed, diff

# -- generated types and their values -------------------------------------------------------------

NAMES = st.from_regex(r"[a-z]{1,5}", fullmatch=True)
SCALAR_KINDS = ["string", "integer", "number", "boolean", "null"]


@st.composite
def scalar_types(draw):
    kind = draw(st.sampled_from(SCALAR_KINDS + ["literal"]))
    if kind == "literal":
        values = draw(st.lists(st.one_of(st.integers(-5, 5), NAMES, st.booleans()), min_size=1, max_size=3, unique_by=lambda v: (type(v), v)))
        return GType("literal", values=tuple(values))
    c = {}
    if kind in ("integer", "number") and draw(st.booleans()):
        lo = draw(st.integers(-100, 100))
        c["minimum"] = lo
        if draw(st.booleans()):
            c["maximum"] = lo + draw(st.integers(0, 50))
    if kind == "string" and draw(st.booleans()):
        c["minLength"] = draw(st.integers(0, 3))
        c["maxLength"] = c["minLength"] + draw(st.integers(0, 5))
    return GType(kind, constraints=tuple(sorted(c.items())))


def _union(options):
    # at most one option per JSON kind, so a value belongs to one option (the validator's deep paths rely on it)
    seen, out = set(), []
    options = [x for o in options for x in (o.options if o.kind == "union" else (o,))]
    for o in options:
        k = {"map": "object", "number": "integer", "literal": "string"}.get(o.kind, o.kind)
        if k not in seen and o.kind != "any":
            seen.add(k)
            out.append(o)
    if len(out) <= 1:
        return out[0] if out else GType("any")
    return GType("union", options=tuple(out))


def gtypes(max_leaves=8):
    return st.recursive(
        scalar_types() | st.just(GType("any")),
        lambda inner: st.one_of(
            inner.map(lambda t: GType("array", items=t)),
            inner.map(lambda t: GType("map", items=t)),
            st.lists(st.tuples(NAMES, inner, st.booleans()), max_size=4, unique_by=lambda f: f[0]).map(
                lambda fs: GType("object", fields=tuple(Field(n, t, r) for n, t, r in fs))
            ),
            st.lists(inner, min_size=2, max_size=3).map(_union),
        ),
        max_leaves=max_leaves,
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=5,
)


def values(t: GType):
    c = dict(t.constraints)
    k = t.kind
    if k == "any":
        return JSON
    if k == "null":
        return st.none()
    if k == "boolean":
        return st.booleans()
    if k in ("integer", "number"):
        lo = c.get("minimum", -1000)
        hi = c.get("maximum", max(lo, 0) + 1000)
    if k == "integer":
        return st.integers(lo, hi)
    if k == "number":
        return st.integers(lo, hi) | st.floats(lo, hi, allow_nan=False)
    if k == "string":
        return st.text(min_size=c.get("minLength", 0), max_size=c.get("maxLength", 6))
    if k == "literal":
        return st.sampled_from(t.values)
    if k == "array":
        return st.lists(values(t.items), max_size=3)
    if k == "map":
        return st.dictionaries(NAMES, values(t.items), max_size=3)
    if k == "object":
        required = {f.name: values(f.type) for f in t.fields if f.required}
        optional = {f.name: values(f.type) for f in t.fields if not f.required}
        return st.fixed_dictionaries(required, optional=optional)
    if k == "union":
        return st.one_of([values(o) for o in t.options])
    raise AssertionError(k)


# -- validation ------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_value_of_a_type_is_accepted(data):
    t = data.draw(gtypes())
    v = data.draw(values(t))
    assert t.issues(v) == []
    assert t.check(v) == v


def _full_walk(t: GType, v):
    """check() as it was before its compiled path: the walk that collects every issue."""
    issues = []
    out = t._check(v, "$", issues, True)
    return ("invalid", [i.to_dict() for i in issues]) if issues else ("ok", _typed(out))


def _compiled(t: GType, v):
    try:
        return ("ok", _typed(t.check(v)))
    except ValidationFailed as failed:
        return ("invalid", [i.to_dict() for i in failed.issues])


def _typed(x):
    """x with every value's type and every dict's key order, so 2 and 2.0, or {a, b} and {b, a}, differ."""
    if isinstance(x, dict):
        return ("dict", [(k, _typed(v)) for k, v in x.items()])
    if isinstance(x, list):
        return ("list", [_typed(v) for v in x])
    if dataclasses.is_dataclass(x):
        return (type(x).__name__, [(f.name, _typed(getattr(x, f.name))) for f in dataclasses.fields(x)])
    return (type(x).__name__, x)


def _near_misses(t: GType):
    """Values of t, values of other types, and values of t with one part swapped for another kind."""
    return st.one_of(values(t), JSON, st.sampled_from(POISONS), values(t).map(_extra_key), values(t).map(_ints_as_floats))


def _extra_key(v):
    return {**v, "zzzzzz": 1} if isinstance(v, dict) else v


def _ints_as_floats(v):
    """2 -> 2.0 everywhere: an integer field takes it and gives the handler 2."""
    if isinstance(v, dict):
        return {k: _ints_as_floats(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints_as_floats(x) for x in v]
    return float(v) if type(v) is int else v


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_compiled_check_answers_as_the_full_walk(data):
    """check() runs a function compiled from the type and walks the value only when it fails: for any type
    and value it returns what the walk returns (types and key order included) or fails with the same issues."""
    t = data.draw(gtypes())
    v = data.draw(_near_misses(t))
    assert _compiled(t, v) == _full_walk(t, v)


class _Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class _Item:
    sku: Annotated[str, MinLen(1)]
    colour: _Colour
    qty: Annotated[int, Ge(1)] = 1


class _Order(TypedDict):
    items: Annotated[list[_Item], MinLen(1)]
    note: NotRequired[Optional[str]]


@pytest.mark.parametrize(
    "value",
    [
        {"items": [{"sku": "a", "colour": "red"}, {"sku": "b", "colour": "blue", "qty": 2.0}], "note": None},
        {"items": [{"sku": "a", "colour": "green"}]},
        {"items": [{"sku": "", "colour": "red", "qty": 0}], "note": 3},
        {"items": []},
        {"items": [{"sku": "a", "colour": "red"}], "extra": 1},
    ],
)
def test_the_compiled_check_builds_dataclasses_and_enums_as_the_full_walk(value):
    t = GType.of(_Order)
    assert _compiled(t, value) == _full_walk(t, value)


POISONS = ["\u2603poison", True, None, 1.5, [["poison"]]]


def _accepts_kind(t: GType, v) -> bool:
    return t.kind == "any" or t.accepts(v)


def _locations(t: GType, v, path="$"):
    """(path, type there, parent container, key) for every place in v."""
    yield path, t, None, None
    if t.kind == "union":
        for o in t.options:
            if o.accepts(v):
                yield from list(_locations(o, v, path))[1:]
                return
    elif t.kind == "array":
        for i, x in enumerate(v):
            for loc in _locations(t.items, x, f"{path}[{i}]"):
                yield loc if loc[2] is not None else (loc[0], loc[1], v, i)
    elif t.kind in ("map", "object"):
        types = {f.name: f.type for f in t.fields} if t.kind == "object" else None
        for key, x in v.items():
            sub = types[key] if types is not None else t.items
            for loc in _locations(sub, x, f"{path}.{key}"):
                yield loc if loc[2] is not None else (loc[0], loc[1], v, key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_wrong_value_anywhere_is_rejected_with_its_path(data):
    t = data.draw(gtypes())
    v = data.draw(values(t))
    places = [p for p in _locations(t, v) if p[2] is not None and p[1].kind != "any"]
    if not places:
        return
    path, there, parent, key = data.draw(st.sampled_from(places))
    poison = next((p for p in POISONS if not _accepts_kind(there, p)), None)
    if poison is None:
        return
    parent[key] = poison
    issues = t.issues(v)
    assert issues, f"{poison!r} at {path} was accepted"
    assert path in [i.path for i in issues], (path, issues)
    with pytest.raises(ValidationFailed) as caught:
        t.check(v)
    assert any(e["path"] == path and e["actual"] == (poison if not isinstance(poison, list) else "an array of 1") for e in caught.value.details["errors"])


def test_bool_is_not_an_integer_and_extra_keys_are_reported():
    t = GType.of(dict[str, int])
    assert not t.accepts({"a": True})

    class Point(TypedDict):
        x: int

    issues = GType.of(Point).issues({"x": 1, "y": 2})
    assert [(i.path, i.actual) for i in issues] == [("$.y", 2)]
    assert "no such field" in issues[0].expected
    assert GType.of(Point).accepts({"x": 1, "y": 2}, ignore_extra_keys=True)


# -- type hints ----------------------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(TypedDict):
    city: Annotated[str, MinLen(1)]


class NewUser(TypedDict):
    name: Annotated[str, MinLen(1), MaxLen(20)]
    age: NotRequired[Annotated[int, Interval(ge=0, lt=150)]]
    tags: list[str]
    address: Optional[Address]
    color: Color
    level: Literal[1, 2, 3]
    meta: dict[str, Any]


@dataclass
class Item:
    sku: str
    qty: Annotated[int, msgspec.Meta(ge=1)] = 1
    notes: list[str] = dataclasses.field(default_factory=list)


def test_type_hints_become_gtypes_and_json_schema():
    t = GType.of(NewUser)
    good = {"name": "ann", "tags": [], "address": None, "color": "red", "level": 2, "meta": {"x": [1]}}
    out = t.check(good)
    assert out["color"] is Color.RED  # enums come back as members
    schema = t.json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["title"] == "NewUser" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "tags", "address", "color", "level", "meta"}
    assert schema["properties"]["age"] == {"type": "integer", "minimum": 0, "exclusiveMaximum": 150}
    assert schema["properties"]["address"]["anyOf"][1] == {"type": "null"}
    assert schema["properties"]["color"] == {"enum": ["red", "blue"], "title": "Color"}

    bad = dict(good, name="", age=150, address={"city": ""}, level=4)
    with pytest.raises(ValidationFailed) as caught:
        t.check(bad)
    errors = {e["path"]: e for e in caught.value.to_dict()["errors"]}
    assert set(errors) == {"$.name", "$.age", "$.address.city", "$.level"}
    assert errors["$.age"] == {"path": "$.age", "expected": "integer, >= 0, < 150", "actual": 150}

    item = GType.of(Item).check({"sku": "a-1"})
    assert item == Item("a-1")  # dataclasses come back as instances, defaults filled in
    assert GType.of(Item).issues({"qty": 0}) and {i.path for i in GType.of(Item).issues({"qty": 0})} == {"$.sku", "$.qty"}


@pytest.mark.parametrize("hint", [set[int], dict[int, str], tuple[int, str], complex, Annotated[str, Ge(1)], Annotated[int, MinLen(1)]])
def test_unsupported_hints_say_what_to_use(hint):
    with pytest.raises(GTypeError) as caught:
        GType.of(hint)
    assert caught.value.fix


@dataclass
class Node:
    children: list["Node"]


def test_recursive_types_are_refused():
    with pytest.raises(GTypeError, match="refers to itself"):
        GType.of(Node)


# -- schema diff ------------------------------------------------------------------------------------------------------


def _widen(t: GType, data) -> GType:
    """A change that keeps every old value valid (request: non-breaking)."""
    choices = []
    if t.kind == "object":
        choices.append("add_optional")
        if any(f.required for f in t.fields):
            choices.append("relax_field")
    if t.constraints:
        choices.append("drop_constraint")
    if t.kind == "integer":
        choices.append("to_number")
    if t.kind == "literal":
        choices.append("add_literal")
    choices.append("make_optional_value")
    how = data.draw(st.sampled_from(choices))
    if how == "add_optional":
        names = {f.name for f in t.fields}
        name = data.draw(NAMES.filter(lambda n: n not in names))
        return dataclasses.replace(t, fields=t.fields + (Field(name, data.draw(scalar_types()), False),))
    if how == "relax_field":
        i = data.draw(st.sampled_from([i for i, f in enumerate(t.fields) if f.required]))
        fields = list(t.fields)
        fields[i] = dataclasses.replace(fields[i], required=False)
        return dataclasses.replace(t, fields=tuple(fields))
    if how == "drop_constraint":
        return dataclasses.replace(t, constraints=t.constraints[1:])
    if how == "to_number":
        return dataclasses.replace(t, kind="number")
    if how == "add_literal":
        return dataclasses.replace(t, values=t.values + ("zz-new",))
    return _union([t, GType("null")]) if t.kind not in ("null", "union", "any") else t


def _narrow(t: GType, data) -> GType | None:
    """A change that refuses some old value (request: breaking), or None when t has no room to narrow."""
    choices = []
    if t.kind == "object":
        choices.append("add_required")
        if any(not f.required for f in t.fields):
            choices.append("require_field")
    if t.kind in ("integer", "number") and "minimum" not in dict(t.constraints):
        choices.append("add_minimum")
    if t.kind == "number":
        choices.append("to_integer")
    if t.kind == "literal" and len(t.values) > 1:
        choices.append("drop_literal")
    if t.kind == "union":
        choices.append("drop_option")
    if not choices:
        return None
    how = data.draw(st.sampled_from(choices))
    if how == "add_required":
        names = {f.name for f in t.fields}
        name = data.draw(NAMES.filter(lambda n: n not in names))
        return dataclasses.replace(t, fields=t.fields + (Field(name, GType("string"), True),))
    if how == "require_field":
        i = data.draw(st.sampled_from([i for i, f in enumerate(t.fields) if not f.required]))
        fields = list(t.fields)
        fields[i] = dataclasses.replace(fields[i], required=True)
        return dataclasses.replace(t, fields=tuple(fields))
    if how == "add_minimum":
        return dataclasses.replace(t, constraints=tuple(sorted(dict(t.constraints, minimum=2000).items())))
    if how == "to_integer":
        return dataclasses.replace(t, kind="integer")
    if how == "drop_literal":
        return dataclasses.replace(t, values=t.values[1:])
    options = t.options[1:]
    return options[0] if len(options) == 1 else dataclasses.replace(t, options=options)


def _at_random_place(t: GType, data, change):
    """Apply change to t or to one type nested in it."""
    if t.kind == "object" and t.fields and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(t.fields) - 1))
        inner = _at_random_place(t.fields[i].type, data, change)
        if inner is None:
            return None
        fields = list(t.fields)
        fields[i] = dataclasses.replace(fields[i], type=inner)
        return dataclasses.replace(t, fields=tuple(fields))
    if t.kind in ("array", "map") and data.draw(st.booleans()):
        inner = _at_random_place(t.items, data, change)
        return None if inner is None else dataclasses.replace(t, items=inner)
    return change(t, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_diff_classifies_widening_and_narrowing_changes(data):
    old = data.draw(gtypes(6))
    widened = _at_random_place(old, data, _widen)
    if widened != old:
        d = diff(old, widened)
        assert d.changes and not d.breaking, d.to_dict()
    narrowed = _at_random_place(old, data, _narrow)
    if narrowed is not None and narrowed != old:
        assert diff(old, narrowed).breaking, (old, narrowed)
        # a server that answers with less than before breaks no client that reads its answers
        assert not diff(old, narrowed, role="response").breaking


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_non_breaking_verdict_is_never_wrong(data):
    """On any pair of types: non-breaking for requests means every old value still passes; for responses,
    every new value still reads with the old type (ignoring unknown keys)."""
    old = data.draw(gtypes(6))
    new = data.draw(st.one_of(gtypes(6), st.just(old).map(lambda t: _at_random_place(t, data, _widen)),
                              st.just(old).map(lambda t: _at_random_place(t, data, _narrow) or t)))
    if not diff(old, new, role="request").breaking:
        for _ in range(5):
            v = data.draw(values(old))
            assert new.accepts(v), (v, diff(old, new).to_dict())
    if not diff(old, new, role="response").breaking:
        for _ in range(5):
            v = data.draw(values(new))
            assert old.accepts(v, ignore_extra_keys=True), (v, diff(old, new, role="response").to_dict())


def test_diff_reads_like_api_review():
    class V1(TypedDict):
        name: str
        age: int

    class V2(TypedDict):
        name: str
        age: float
        email: NotRequired[str]

    class V3(TypedDict):
        name: str
        email: str

    request = diff(GType.of(V1), GType.of(V2))
    assert not request.breaking
    assert [(c["path"], c["what"]) for c in request.to_dict()["changes"]] == [("$.age", "integer became number"), ("$.email", "optional field added")]
    assert diff(GType.of(V2), GType.of(V3)).breaking  # email now required, age removed
    response = diff(GType.of(V1), GType.of(V2), role="response")
    assert response.breaking  # a v1 client reading age as an integer may now get 1.5


@pytest.mark.parametrize("value", [{"a": str}, [int], {str}])
def test_a_value_where_a_type_belongs_is_a_clear_error(value):
    # REQUEST = {"a": str} crashed with "unhashable type" (an internal error) before.
    with pytest.raises(GTypeError, match="is a value, not a type"):
        GType.of(value)
