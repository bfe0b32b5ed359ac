"""Properties of Timescape phase 2, for any input (docs/versions.md):

- resolution never sends a request that names no version to a version out of service (unhealthy
  or retired) when one the order allows is in service: the newest at or below the default; a
  request naming a version out of service gets 410 (retired) or 503 (unhealthy), never another;
- a version is drained exactly when no client asked for it within the window (the default never).

Over a real project (four versions of /v, version 1 served by version 2 through a transformer,
version 4 a breaking step without one, so the default is 3), a real VersionSet and a real store.
"""

import textwrap

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.http.handler_manifest import HandlerManifest
from runtime.http.routing import load_routes
from runtime.http.versions.availability import RETIRED, UNHEALTHY, Out, VersionRetired, VersionUnavailable
from runtime.http.versions.service import Timescape
from runtime.http.versions.store import VersionStore

LABELS = ["1", "2", "3", "4"]
RUNS = {"1": "2", "2": "2", "3": "3", "4": "4"}  # version 1 runs version 2's handler
PLAIN = "async def handler(req, res, gctx, lctx):\n    return {}\n"
TYPED = "from typing import TypedDict\nclass B(TypedDict):\n    x: str\nREQUEST = B\n" + PLAIN


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    root = tmp_path_factory.mktemp("avail") / "handlers"
    root.mkdir()
    (root / "v.py").write_text(PLAIN)
    (root / "v@2.py").write_text(PLAIN)
    (root / "v@2.transform.py").write_text(textwrap.dedent("def up(body):\n    return body\ndef down(body):\n    return body\n"))
    (root / "v@3.py").write_text(PLAIN)
    (root / "v@4.py").write_text(TYPED)
    r = load_routes(root)
    vs = r.routes[0].versions
    assert (vs.default, vs.runs) == ("3", RUNS)
    return r


marks = st.dictionaries(st.sampled_from(LABELS), st.sampled_from([UNHEALTHY, RETIRED]))


def _out(marked):
    """The oracle: why each label cannot be served (its own mark, or its runner's ill health)."""
    out = {}
    for label in LABELS:
        if label in marked:
            out[label] = marked[label]
        elif marked.get(RUNS[label]) == UNHEALTHY:
            out[label] = UNHEALTHY
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marked=marks, asked=st.sampled_from([None, *LABELS]))
def test_resolution_never_picks_a_version_out_of_service(router, marked, asked):
    vs = router.routes[0].versions
    for label in LABELS:
        vs.mark(label, Out(marked[label], "because") if label in marked else None)
    out = _out(marked)
    request = make_mocked_request("GET", "/v", headers={"Gati-Version": asked} if asked else {})
    if asked is None:
        allowed = [label for label in ["3", "2", "1"] if label not in out]  # at or below the default, newest first
        if allowed:
            assert vs.pick(request).version == allowed[0]
        else:
            with pytest.raises((VersionRetired, VersionUnavailable)):
                vs.pick(request)
    elif asked not in out:
        assert vs.pick(request).version == asked
    else:
        with pytest.raises(VersionRetired if out[asked] == RETIRED else VersionUnavailable) as err:
            vs.pick(request)
        if out[asked] == UNHEALTHY:
            assert err.value.details["healthy"] == [label for label in LABELS if label not in out]
        else:
            assert err.value.details["current"] == "3"
    for label in LABELS:
        vs.mark(label, None)
    assert vs.out == {}


DAY = 86400.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ages=st.fixed_dictionaries({label: st.one_of(st.none(), st.floats(0, 60 * DAY)) for label in LABELS}),
    window=st.floats(1, 30 * DAY),
    known_for=st.floats(0, 60 * DAY),
)
def test_drained_exactly_when_nobody_asked_within_the_window(router, tmp_path_factory, ages, window, known_for):
    now = 1_800_000_000.0
    clock = [now - known_for]  # when the store first learns the versions
    store = VersionStore(tmp_path_factory.mktemp("store") / "versions.db")
    ts = Timescape(store, drain_after_s=window, clock=lambda: clock[0])
    ts.adopt(router, {id(r): HandlerManifest.of(r) for r in router.served()})
    for label, age in ages.items():  # None: never asked for
        if age is not None:
            store.set_last_served("/v", label, now - age)
    clock[0] = now
    ts.sync([])
    ts._apply()
    seen = {label: (now - age if age is not None else now - known_for) for label, age in ages.items()}
    want = {label for label in LABELS if label != "3" and now - seen[label] >= window}
    rows = store.versions()
    assert {label for label in LABELS if rows[("/v", label)].state == "drained"} == want
    vs = router.routes[0].versions
    assert {label for label, o in vs.out.items() if o.kind == RETIRED} == want
    ts.rows = {}
    ts._apply()  # leave the shared VersionSet as it was
    store.close()
