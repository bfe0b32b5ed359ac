"""What is wasm-only about WASM modules in real wasmtime: fuel, traps and bad output as typed
errors, the artifact's digest, the compiled-module cache, a module call through the ABI.

Driven by the audit's probe module runtime/reports/probes/wasm (see probe.wat for its
conventions). The scenarios every backend shares (limits, egress, files, env, host calls)
are the conformance suite's (tests/conformance), which runs them on wasm too.
"""

import json
import shutil
from pathlib import Path

import pytest

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.errors import (
    BadPayload,
    CapabilityDenied,
    IntegrityError,
    ModuleCrashed,
    ModuleError,
    ModuleTimeout,
)
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"
GREET = ROOT / "sample_modules" / "greet-wat"
CTX = CallContext(request_id="req-1", trace_id="trace-1", caller="test")


def install(tmp_path: Path, source: Path, edit=None) -> Path:
    target = tmp_path / "modules" / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.c", "build.sh"))
    if edit:
        manifest = target / "module.toml"
        manifest.write_text(edit(manifest.read_text()))
    return target


@pytest.fixture
def state(state):
    assert (GREET / "build" / "greet.wasm").exists(), "build the sample modules first: make modules"
    return state


def register(state, tmp_path, source=PROBE, edit=None):
    return register_module(state, install(tmp_path, source, edit))


async def probe(manager, method, payload=None):
    return await manager.call("probe", method, payload, ctx=CTX)


async def test_a_module_call_relays_the_payload_and_the_answer(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace("modules = []", 'modules = ["greet"]'))
    register(state, tmp_path, GREET)
    called = await probe(manager, "call", {"name": "probe"})
    assert called == {"status": 0, "result": {"message": "hello, probe"}}, json.dumps(called)


async def test_fuel_limit_stops_the_loop(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace("memory_mb = 16", "memory_mb = 16\nfuel = 100000"))
    with pytest.raises(ModuleTimeout, match="fuel"):
        await probe(manager, "spin")
    assert await probe(manager, "echo", 2) == 2
    [stop] = [e for e in read_events(state.audit_path) if e["capability"] == "limit.fuel"]
    assert (stop["decision"], stop["target"], stop["grant"]) == ("deny", "spin: 100000 instructions", "raise [limits] fuel in module.toml")


async def test_traps_errors_and_bad_output_are_typed(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises(ModuleCrashed, match="crashed"):
        await probe(manager, "trap")
    with pytest.raises(ModuleError, match="probe failed on purpose"):
        await probe(manager, "fail")
    with pytest.raises(ModuleError, match="returned 7"):
        await probe(manager, "silent_fail")
    with pytest.raises(BadPayload, match="not JSON"):
        await probe(manager, "bad_output")
    with pytest.raises(BadPayload):
        await probe(manager, "echo", {1, 2})
    assert await probe(manager, "echo", 4) == 4


async def test_changed_artifact_is_refused(state, tmp_path):
    registration = register(state, tmp_path)
    artifact = registration.loaded.artifact_path()
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    manager = ModuleManager(state)
    with pytest.raises(IntegrityError, match="changed since registration"):
        await probe(manager, "echo", 1)
    await manager.close()


async def test_compiled_module_is_cached_across_restarts(state, tmp_path):
    register(state, tmp_path)
    first = ModuleManager(state)
    await probe(first, "echo", 1)
    await first.close()
    cached = list((state.cache_dir / "wasm").glob("*.cwasm"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = ModuleManager(state)
    await probe(second, "echo", 1)
    await second.close()
    assert cached[0].stat().st_mtime_ns == mtime  # loaded, not compiled again


async def test_denied_capability_raises_for_handlers(state, manager, tmp_path):
    register(state, tmp_path)
    # A host-side denial surfaces to Python callers as CapabilityDenied (the Host's gate).
    running = await manager._running_for(state.registry.get("probe"))
    with pytest.raises(CapabilityDenied) as err:
        running.sandbox.host.env_get(CTX, "SECRET_ENV")
    assert err.value.details["grant"] == '[capabilities] env = ["SECRET_ENV"]'
    assert "add to probe's module.toml" in err.value.fix
