"""CallContext.of_request (the HTTP path's quick constructor) makes what CallContext(...) makes."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.core.call import CallContext

text = st.text(max_size=40)


@given(text, text, text, st.floats(allow_nan=False), st.none() | st.dictionaries(text, text, max_size=3), st.none() | text)
def test_of_request_equals_the_dataclass_constructor(request_id, trace_id, caller, deadline, pins, trace):
    quick = CallContext.of_request(request_id, trace_id, caller, deadline, pins, trace)
    made = CallContext(request_id=request_id, trace_id=trace_id, caller=caller, deadline=deadline, pins=pins, trace=trace)
    assert quick == made and repr(quick) == repr(made)
    assert dataclasses.replace(quick, depth=1) == dataclasses.replace(made, depth=1)
    assert quick.nested("module:x", 1.0).depth == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.depth = 2
