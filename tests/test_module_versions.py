"""Module versions side by side: constraints pick the highest registered version, modules call
pinned versions of each other within their grants, and health checks take versions out of service.
Real WebAssembly modules throughout (tests/versions_support.py)."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.core import versions
from runtime.core.audit_log import read_events
from runtime.core.errors import ManifestError, VersionNotFound, VersionUnhealthy
from runtime.core.manifest import parse_manifest
from runtime.modules import register_module
from tests.versions_support import caller, greet, greet_sample

WAIT_S = 30  # bounded waits for background health checks (no assertion on time)


def register_greets(state, tmp_path, *specs):
    for version, traps in specs:
        register_module(state, greet(tmp_path / f"greet-{version}", version, ping_traps=traps))


async def answer(manager, target, ctx=None):
    return (await manager.call(target, "hello", {}, ctx=ctx))["message"].removeprefix("hello from ")


async def test_a_constraint_reaches_the_highest_registered_version_that_satisfies_it(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("1.2.0", False), ("1.10.1", False), ("2.0.0", False), ("1.5.0", False))
    assert await answer(manager, "greet") == "1.5.0"  # no version: the active one, the last registered
    assert await answer(manager, "greet@1") == "1.10.1"  # 1.x.y, compared as numbers
    assert await answer(manager, "greet@1.2.0") == "1.2.0"
    assert await answer(manager, "greet@^1.2") == "1.10.1"
    assert await answer(manager, "greet@~1.2") == "1.2.0"
    assert await answer(manager, "greet@>=1.5.0 <2") == "1.10.1"
    assert await answer(manager, "greet@*") == "2.0.0"
    with pytest.raises(VersionNotFound) as err:
        await answer(manager, "greet@^3")
    assert "^3" in str(err.value) and "1.10.1" in err.value.note  # the versions: for the operator's log


async def test_a_handler_pin_rides_the_call_context(state, manager, tmp_path):
    from runtime.core.call import CallContext

    register_greets(state, tmp_path, ("1.2.0", False), ("1.4.0", False), ("2.0.0", False))
    pinned = CallContext(caller="handler:/x", pins={"greet": "^1.2"})
    assert await answer(manager, "greet", pinned) == "1.4.0"
    assert await answer(manager, "greet@2", pinned) == "2.0.0"  # a version named in the call wins
    assert await answer(manager, "greet") == "2.0.0"
    # a module called from the handler does not inherit the handler's pins
    assert pinned.nested("module:x", 1.0).pins is None


async def test_calls_to_a_pinned_version_are_counted_under_the_module_name(state, manager, tmp_path):
    # Metrics label module calls by name: "greet@1" is greet, whichever version answered.
    register_greets(state, tmp_path, ("1.2.0", False))
    seen = []
    manager.observer = lambda module, method, outcome, seconds: seen.append((module, method, outcome))
    await answer(manager, "greet@1")
    await answer(manager, "greet")
    assert seen == [("greet", "hello", "ok"), ("greet", "hello", "ok")]


async def test_a_new_registration_is_seen_by_the_next_resolution(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False))
    assert await answer(manager, "greet@^1") == "1.0.0"
    register_greets(state, tmp_path, ("1.1.0", False))
    assert await answer(manager, "greet@^1") == "1.1.0"


async def test_the_greet_sample_at_two_versions_serves_each_pin(state, manager, tmp_path):
    register_module(state, greet_sample(tmp_path / "g1", "1.0.0"))
    register_module(state, greet_sample(tmp_path / "g2", "2.0.0"))
    assert await manager.call("greet@1", "count") == {"visits": 1}
    assert await manager.call("greet@2.0.0", "count") == {"visits": 2}  # one kv store, two versions
    writes = [e["version"] for e in read_events(state.path / "audit.log") if e["capability"] == "kv.write"]
    assert writes == ["1.0.0", "2.0.0"]


async def test_a_module_calls_the_version_its_grant_pins_and_is_refused_others(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("1.3.0", False), ("2.0.0", False))
    register_module(
        state,
        caller(tmp_path / "caller", "greet@^1", {"bare": "greet", "exact": "greet@1.0.0", "other": "greet@2.0.0", "wider": "greet@*"}),
    )
    assert await manager.call("caller", "bare") == {"message": "hello from 1.3.0"}
    assert await manager.call("caller", "exact") == {"message": "hello from 1.0.0"}
    for method, target, reached in (("other", "greet@2.0.0", "2.0.0"), ("wider", "greet@*", "2.0.0")):
        denial = await manager.call("caller", method)
        assert denial["code"] == "capability_denied"
        assert denial["grant"] == f'[capabilities] modules = ["{target}"]'
        assert f"version {reached} is not covered by the grant greet@^1" in denial["reason"]
    events = [e for e in read_events(state.path / "audit.log") if e["capability"] == "module.call"]
    assert [(e["target"], e["decision"]) for e in events] == [
        ("greet", "allow"), ("greet@1.0.0", "allow"), ("greet@2.0.0", "deny"), ("greet@*", "deny"),
    ]
    assert events[0]["rule"] == "modules: greet@^1"
    assert events[2]["grant"] == '[capabilities] modules = ["greet@2.0.0"]'


async def test_a_bare_grant_lets_a_module_call_any_version(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("2.0.0", False))
    register_module(state, caller(tmp_path / "caller", "greet", {"bare": "greet", "one": "greet@1"}))
    assert await manager.call("caller", "bare") == {"message": "hello from 2.0.0"}
    assert await manager.call("caller", "one") == {"message": "hello from 1.0.0"}


async def wait_out_of_service(manager, key):
    async with asyncio.timeout(WAIT_S):
        while key not in manager.out_of_service():
            await asyncio.sleep(0.05)


async def test_a_version_failing_its_health_checks_is_passed_over(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("1.1.0", True), ("2.0.0", False))
    assert await answer(manager, "greet@^1") == "1.1.0"  # started: now checked, and its ping traps
    await wait_out_of_service(manager, "greet@1.1.0")
    assert "unreachable" in manager.out_of_service()["greet@1.1.0"]
    assert await answer(manager, "greet@^1") == "1.0.0"  # the next highest in service
    with pytest.raises(VersionUnhealthy) as err:
        await answer(manager, "greet@1.1.0")  # an exact pin is not moved elsewhere
    assert err.value.http_status == 503 and "greet@1.1.0 is out of service" in str(err.value)
    assert manager.health()["greet"] != "down"  # the active version (2.0.0) is not the one down


async def test_a_version_back_in_service_is_picked_again(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("1.1.0", True))
    await answer(manager, "greet@1.1.0")
    await wait_out_of_service(manager, "greet@1.1.0")
    assert await answer(manager, "greet@^1") == "1.0.0"
    manager.versions.mark(state.registry.get("greet", "1.1.0"), True)  # what health.py does after healthy_after passes
    assert await answer(manager, "greet@^1") == "1.1.0"


async def test_a_version_registered_again_is_back_in_service_until_its_own_checks_fail(state, manager, tmp_path):
    register_greets(state, tmp_path, ("1.0.0", False), ("1.1.0", True))
    await answer(manager, "greet@1.1.0")
    await wait_out_of_service(manager, "greet@1.1.0")
    register_module(state, greet(tmp_path / "fixed", "1.1.0"))  # the fix, at the same version
    assert await answer(manager, "greet@1.1.0") == "1.1.0"
    assert await answer(manager, "greet@^1") == "1.1.0"
    assert manager.out_of_service() == {}


def test_health_and_grants_are_checked_at_parse():
    base = 'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n[methods.run]\n'
    assert parse_manifest(base + '[health]\nmethod = "run"\ninterval_ms = 500\n').health.interval_ms == 500
    for extra, key in (
        ('[health]\nmethod = "nope"\n', "health.method"),
        ("[health]\ninterval_ms = 5\n", "health.interval_ms"),
        ('[health]\nevery = "1s"\n', "health.every"),
        ('[capabilities]\nmodules = ["greet@^^1"]\n', "capabilities.modules[0]"),
        ('[capabilities]\nmodules = ["greet@^1", "greet@2"]\n', "capabilities.modules[1]"),
    ):
        with pytest.raises(ManifestError) as err:
            parse_manifest(base + extra)
        assert err.value.details["key"] == key, extra


# --- constraint resolution, for any set of versions (an independent model of npm's rules) ------------

triples = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))


def model_satisfies(v: tuple, op: str, c: tuple) -> bool:
    major, minor, patch = c
    if op == "*":
        return True
    if op == "=":
        return v == c
    if op == ">=":
        return v >= c
    if op == "~":
        return c <= v < (major, minor + 1, 0)
    # ^: up to the next change of the left-most non-zero part
    upper = (major + 1, 0, 0) if major else (0, minor + 1, 0) if minor else (0, 0, patch + 1)
    return c <= v < upper


@settings(max_examples=400, deadline=None)
@given(st.sets(triples, max_size=12), st.sampled_from(["^", "~", ">=", "=", "*"]), triples)
def test_the_picked_version_is_the_highest_that_satisfies_the_constraint(registered, op, c):
    spec = "*" if op == "*" else f"{'' if op == '=' else op}{c[0]}.{c[1]}.{c[2]}"
    names = [f"{a}.{b}.{p}" for a, b, p in registered]
    satisfying = [v for v in registered if model_satisfies(v, op, c)]
    expected = "{}.{}.{}".format(*max(satisfying)) if satisfying else None
    assert versions.pick(names, spec) == expected
    assert all(versions.satisfies(n, spec) == model_satisfies(v, op, c) for n, v in zip(names, registered))


async def test_a_pinned_version_no_call_reaches_is_closed_and_comes_back_when_called(state, tmp_path):
    from runtime.modules.manager import ModuleManager

    register_greets(state, tmp_path, ("1.0.0", False), ("2.0.0", False))
    manager = ModuleManager(state, pinned_idle_s=0.2)
    try:
        assert await answer(manager, "greet@1") == "1.0.0" and await answer(manager, "greet") == "2.0.0"
        first = manager._pinned["greet@1.0.0"].sandbox
        async with asyncio.timeout(WAIT_S):  # bounded: the reaper looks every pinned_idle_s / 2
            while "greet@1.0.0" in manager._pinned:
                await asyncio.sleep(0.05)
        assert "greet" in manager._running  # the active version stays up
        assert await answer(manager, "greet@1") == "1.0.0"  # started again by the next call
        assert manager._pinned["greet@1.0.0"].sandbox is not first
    finally:
        await manager.close()
