"""GType.json_schema() accepts exactly the values GType.check accepts, for any type and any value.

Hypothesis builds type hints (TypedDicts with required and optional keys, lists, maps, Literals,
unions, Annotated bounds, lengths, integer multipleOf and patterns) and JSON values, some drawn to
fit the type and some arbitrary; two JSON Schema validators (jsonschema-rs, what module payloads
are checked with, and python-jsonschema, the reference implementation) must agree with the runtime.
"""

import itertools
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import jsonschema
import jsonschema_rs
import msgspec
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen, MultipleOf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.http.gtype import GType

_names = itertools.count()
PATTERNS = ["^[a-z]+$", "ab", "^x", "[0-9]$"]
KEYS = st.sampled_from(["a", "b", "name", "qty", "odd key", "é"])


def json_values(max_leaves: int = 12) -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-5, 5).map(float),  # integral floats: 2.0 is the integer 2
        st.text(max_size=6),
        st.sampled_from(["abc", "x1", "ab", "9"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(KEYS, st.text(max_size=3)), inner, max_size=4)),
        max_leaves=max_leaves,
    )


def _bounds(kind: str) -> st.SearchStrategy:
    number = st.integers(-20, 20) if kind == "integer" else st.one_of(st.integers(-20, 20), st.floats(-20, 20, allow_nan=False))
    return st.lists(
        st.one_of(number.map(Ge), number.map(Gt), number.map(Le), number.map(Lt))
        | (st.integers(1, 6).map(MultipleOf) if kind == "integer" else st.nothing()),
        min_size=1,
        max_size=2,
    )


@st.composite
def hints(draw, depth: int = 0) -> Any:
    leaf = st.sampled_from(["str", "int", "float", "bool", "none", "any", "literal", "bounded_int", "bounded_float", "lenstr", "pattern"])
    choices = [leaf] if depth >= 3 else [leaf, st.sampled_from(["list", "map", "object", "union", "optional"])]
    what = draw(st.one_of(*choices))
    if what == "str":
        return str
    if what == "int":
        return int
    if what == "float":
        return float
    if what == "bool":
        return bool
    if what == "none":
        return type(None)
    if what == "any":
        return Any
    if what == "literal":
        values = draw(st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "ab"]), st.booleans(), st.none()), min_size=1, max_size=3, unique_by=lambda v: (type(v), v)))
        return Literal[tuple(values)]
    if what == "bounded_int":
        return Annotated[(int, *draw(_bounds("integer")))]
    if what == "bounded_float":
        return Annotated[(float, *draw(_bounds("number")))]
    if what == "lenstr":
        lo = draw(st.integers(0, 3))
        return Annotated[str, MinLen(lo), MaxLen(lo + draw(st.integers(0, 3)))]
    if what == "pattern":
        return Annotated[str, msgspec.Meta(pattern=draw(st.sampled_from(PATTERNS)))]
    if what == "list":
        inner = draw(hints(depth + 1))
        if draw(st.booleans()):
            return Annotated[list[inner], MaxLen(draw(st.integers(0, 3)))]
        return list[inner]
    if what == "map":
        return dict[str, draw(hints(depth + 1))]
    if what == "optional":
        return Optional[draw(hints(depth + 1))]
    if what == "union":
        a, b = draw(hints(depth + 1)), draw(hints(depth + 1))
        return a | b if isinstance(a, type) and isinstance(b, type) else Optional[a] if b is type(None) else __import__("typing").Union[a, b]
    keys = draw(st.lists(KEYS, min_size=0, max_size=3, unique=True))
    fields = {}
    for k in keys:
        inner = draw(hints(depth + 1))
        fields[k] = NotRequired[inner] if draw(st.booleans()) else inner
    # names that TypeScript or the generated SDKs hold dear come up too (the TS corpus test draws from here)
    name = draw(st.sampled_from([f"T{next(_names)}", "Error", "ErrorBody", "string", "Array", "default", "Promise", "Issue"]))
    return TypedDict(name, fields)


@st.composite
def fitting(draw, t: GType) -> Any:
    """A value built to fit t most of the time (constraints may still refuse it): the accepting side gets tested too."""
    k = t.kind
    if k == "any":
        return draw(json_values(4))
    if k == "null":
        return None
    if k == "boolean":
        return draw(st.booleans())
    if k == "integer":
        return draw(st.integers(-25, 25))
    if k == "number":
        return draw(st.one_of(st.integers(-25, 25), st.floats(-25, 25, allow_nan=False)))
    if k == "string":
        return draw(st.one_of(st.text(max_size=5), st.from_regex(dict(t.constraints)["pattern"], fullmatch=False) if dict(t.constraints).get("pattern") else st.nothing()))
    if k == "literal":
        return draw(st.sampled_from(t.values))
    if k == "array":
        return draw(st.lists(fitting(t.items), max_size=4))
    if k == "map":
        return draw(st.dictionaries(KEYS, fitting(t.items), max_size=3))
    if k == "union":
        return draw(fitting(draw(st.sampled_from(t.options))))
    out = {}
    for f in t.fields:
        if f.required or draw(st.booleans()):
            out[f.name] = draw(fitting(f.type))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_the_json_schema_accepts_exactly_what_check_accepts(data):
    t = GType.of(data.draw(hints()))
    schema = t.json_schema()
    rs = jsonschema_rs.validator_for(schema)
    reference = jsonschema.Draft202012Validator(schema)
    for _ in range(4):
        value = data.draw(st.one_of(fitting(t), json_values()))
        runtime_says = t.accepts(value)
        assert rs.is_valid(value) == runtime_says, (schema, value, t.issues(value))
        if "pattern" not in str(schema):  # python-jsonschema reads patterns as Python regexes ("$" before "\n")
            assert reference.is_valid(value) == runtime_says, (schema, value, t.issues(value))


def test_an_integral_float_is_an_integer_and_comes_back_as_int():
    class Order(TypedDict):
        qty: Annotated[int, Ge(1)]
        kind: Literal[1, "a"]

    t = GType.of(Order)
    assert t.check({"qty": 2.0, "kind": 1.0}) == {"qty": 2, "kind": 1}
    assert type(t.check({"qty": 2.0, "kind": 1})["qty"]) is int
    assert not t.accepts({"qty": 2.5, "kind": 1})
    assert not t.accepts({"qty": True, "kind": 1})  # bool is never a number


def test_a_pattern_dollar_ends_the_text_as_in_json_schema():
    t = GType.of(Annotated[str, msgspec.Meta(pattern="^[a-z]+$")])
    assert t.accepts("abc") and not t.accepts("abc\n")
    assert GType.of(Annotated[str, msgspec.Meta(pattern="^[$]x\\$$")]).accepts("$x$")


def test_integer_multiple_of_is_exact_however_large():
    t = GType.of(Annotated[int, MultipleOf(7)])
    assert t.accepts(7 * 2**70)
    assert not t.accepts(7 * 2**70 + 1)  # a float quotient would call it close enough
