"""A module call's payload encoder (runtime.modules.payload_json) answers as json.dumps with the
manager's options does, for every value: the same text, or the same kind of error."""

import datetime
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.modules.payload_json import encode


def dumps(value):
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def outcome(fn, value):
    try:
        return "ok", fn(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.sampled_from([{1}, b"x", datetime.date(2026, 1, 1), object()])
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False) | st.just((1,))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner) | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(values)
def test_every_value_encodes_as_json_dumps_encodes_it(value):
    expected = outcome(dumps, value)
    got = outcome(encode, value)
    if expected[0] == "TypeError" and "object at 0x" in expected[1]:  # reprs with addresses: the kind and the type are enough
        assert got[0] == "TypeError"
    else:
        assert got == expected


def test_a_cycle_is_a_value_error_and_nesting_too_deep_a_recursion_error_as_with_json_dumps():
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        encode(cycle)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        dumps(deep)
    with pytest.raises(RecursionError):
        encode(deep)
    assert encode({"n": [1, 2.5, math.pi]}) == dumps({"n": [1, 2.5, math.pi]})
