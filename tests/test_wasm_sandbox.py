"""WASM modules in real wasmtime: every host call checked and audited, limits that really stop work.

Driven by the audit's probe module runtime/reports/probes/wasm (see probe.wat for its
conventions), registered from a copy whose manifest each test may change.
"""

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from runtime.core.audit_log import read_events, verify
from runtime.core.call import CallContext
from runtime.core.errors import (
    BadPayload,
    CapabilityDenied,
    IntegrityError,
    ModuleBusy,
    ModuleCrashed,
    ModuleError,
    ModuleTimeout,
)
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"
GREET = ROOT / "sample_modules" / "greet-wat"


def for_tests(manifest: str) -> str:
    """The probe's manifest as these tests start from: no egress, may call greet, 2 s calls."""
    manifest = re.sub(r"^egress = .*$", "egress = []", manifest, flags=re.M)
    return manifest.replace("modules = []", 'modules = ["greet"]').replace("timeout_ms = 1000", "timeout_ms = 2000")


def install(tmp_path: Path, source: Path, edit=None) -> Path:
    target = tmp_path / "modules" / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.c", "build.sh"))
    manifest = target / "module.toml"
    text = for_tests(manifest.read_text()) if source == PROBE else manifest.read_text()
    manifest.write_text(edit(text) if edit else text)
    return target


@pytest.fixture
def state(state):
    assert (GREET / "build" / "greet.wasm").exists(), "build the sample modules first: make modules"
    return state


@pytest.fixture
async def manager(state):
    manager = ModuleManager(state, egress_hosts={"metadata.test": "169.254.169.254"})
    yield manager
    await manager.close()


def register(state, tmp_path, source=PROBE, edit=None):
    return register_module(state, install(tmp_path, source, edit))


def events(state, capability=None):
    return [e for e in read_events(state.audit_path) if capability is None or e["capability"] == capability]


CTX = CallContext(request_id="req-1", trace_id="trace-1", caller="test")


async def probe(manager, method, payload=None):
    return await manager.call("probe", method, payload, ctx=CTX)


async def test_echo_round_trip(state, manager, tmp_path):
    register(state, tmp_path)
    assert await probe(manager, "echo", {"a": [1, "b", None]}) == {"a": [1, "b", None]}


async def test_undeclared_env_is_denied_audited_and_named(state, manager, tmp_path, monkeypatch):
    register(state, tmp_path)
    manager.environ.update(PROBE_ALLOWED="yes", HOME="/root")
    assert await probe(manager, "env", "PROBE_ALLOWED") == {"status": 0, "result": "yes"}
    denied = await probe(manager, "env", "HOME")
    assert denied["status"] == 1
    assert denied["result"]["capability"] == "env" and denied["result"]["grant"] == '[capabilities] env = ["HOME"]'
    decisions = [(e["target"], e["decision"]) for e in events(state, "env")]
    assert decisions == [("PROBE_ALLOWED", "allow"), ("HOME", "deny")]
    assert all(e["request_id"] == "req-1" and e["module"] == "probe" for e in events(state))
    assert verify(state.audit_path).ok


async def test_files_inside_grant_readable_outside_denied(state, manager, tmp_path):
    register(state, tmp_path)
    ok = await probe(manager, "file_read", "/data/hello.txt")
    assert ok["status"] == 0 and ok["result"] == (PROBE / "data" / "hello.txt").read_text()
    for path in ("/etc/passwd", "/data/../module.toml"):
        denied = await probe(manager, "file_read", path)
        assert denied["status"] == 1 and denied["result"]["capability"] == "file.read"
    write = await probe(manager, "file_write", "/data/new.txt")
    assert write["status"] == 1 and '"data" = "rw"' in write["result"]["grant"]
    assert [e["decision"] for e in events(state)] == ["allow", "deny", "deny", "deny"]


async def test_rw_grant_allows_writes(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace('"data" = "ro"', '"data" = "rw"'))
    assert (await probe(manager, "file_write", "/data/new.txt"))["status"] == 0
    assert (tmp_path / "modules" / "wasm" / "data" / "new.txt").read_text() == "written by probe\n"


async def test_secret_and_kv(state, manager, tmp_path, monkeypatch):
    register(state, tmp_path)
    monkeypatch.setenv("GATI_SECRET_PROBE_TOKEN", "s3cret")
    assert await probe(manager, "secret", "probe_token") == {"status": 0, "result": "s3cret"}
    assert (await probe(manager, "secret", "other"))["status"] == 1
    assert (await probe(manager, "kv_get", "probe/k"))["status"] == 2
    assert (await probe(manager, "kv_put", "probe/k=v1"))["status"] == 0
    assert await probe(manager, "kv_get", "probe/k") == {"status": 0, "result": "v1"}
    assert (await probe(manager, "kv_put", "elsewhere/k=v"))["status"] == 1
    assert [(e["capability"], e["decision"]) for e in events(state) if e["capability"].startswith("kv")] == [
        ("kv.read", "allow"), ("kv.write", "allow"), ("kv.read", "allow"), ("kv.write", "deny"),
    ]


async def test_module_calls_only_declared_modules(state, manager, tmp_path):
    register(state, tmp_path)
    register(state, tmp_path, GREET)
    called = await probe(manager, "call", {"name": "probe"})
    assert called["status"] == 0 and "probe" in json.dumps(called["result"])
    denied = await probe(manager, "call_to", "other/run")
    assert denied["status"] == 1 and denied["result"]["grant"] == '[capabilities] modules = ["other"]'
    nested = [e for e in events(state) if e["module"] == "greet"]
    assert all(e["caller"] == "module:probe" and e["request_id"] == "req-1" for e in nested)




def egress(rules):
    return lambda t: t.replace("egress = []", f"egress = {json.dumps(rules)}")


async def test_egress_allowed_to_a_named_address(state, manager, tmp_path, origin):
    register(state, tmp_path, edit=egress([f"http://127.0.0.1:{origin}"]))
    reply = await probe(manager, "http", {"method": "GET", "url": f"http://127.0.0.1:{origin}/x"})
    assert reply["status"] == 0 and reply["result"]["status"] == 200
    assert json.loads(reply["result"]["body"]) == {"path": "/x"}


async def test_egress_denials(state, manager, tmp_path, origin):
    port = origin
    register(state, tmp_path, edit=egress([f"http://localhost:{port}", "http://metadata.test:80", "https://*.example.com:443"]))
    cases = {
        "http://not-granted.example.net/": "no egress rule matches",
        f"http://localhost:{port}/": "resolves to 127.0.0.1",  # allowed name, loopback address
        "http://metadata.test/latest/meta-data": "resolves to 169.254.169.254",
        "https://a.b.example.com/": "no egress rule matches",
        f"http://127.0.0.1:{port}/": "no egress rule matches",
    }
    for url, reason in cases.items():
        reply = await probe(manager, "http", {"method": "GET", "url": url})
        assert reply["status"] == 1, url
        assert reason in reply["result"]["reason"], (url, reply)
    denials = [e for e in events(state, "egress") if e["decision"] == "deny"]
    assert len(denials) == len(cases)
    metadata = next(e for e in denials if "169.254.169.254" in e["target"])
    assert metadata["grant"] == '[capabilities] egress = ["http://169.254.169.254:80"]'
    assert await probe(manager, "echo", 1) == 1  # still serving


async def test_allow_all_still_refuses_private_addresses(state, manager, tmp_path, origin):
    register(state, tmp_path, edit=egress(["insecure:allow-all"]))
    reply = await probe(manager, "http", {"method": "GET", "url": f"http://localhost:{origin}/"})
    assert reply["status"] == 1 and "resolves to 127.0.0.1" in reply["result"]["reason"]


async def test_runaway_loop_is_stopped_at_the_deadline(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace('[methods.spin]', '[methods.spin]\ntimeout_ms = 200'))
    ticks = 0

    async def ticker():  # the event loop keeps running while wasm spins
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(ModuleTimeout, match="200 ms deadline"):
        await probe(manager, "spin")
    task.cancel()
    assert ticks >= 5
    assert await probe(manager, "echo", "after") == "after"
    # Audited as the container and native backends audit theirs (LimitHit.deadline).
    [stop] = events(state, "limit.timeout")
    assert (stop["decision"], stop["target"], stop["request_id"]) == ("deny", "spin: 200 ms", "req-1")
    assert stop["grant"] == "raise [methods.spin] timeout_ms in module.toml"


async def test_fuel_limit_stops_the_loop(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace("memory_mb = 16", "memory_mb = 16\nfuel = 100000"))
    with pytest.raises(ModuleTimeout, match="fuel"):
        await probe(manager, "spin")
    assert await probe(manager, "echo", 2) == 2
    [stop] = events(state, "limit.fuel")
    assert (stop["decision"], stop["target"], stop["grant"]) == ("deny", "spin: 100000 instructions", "raise [limits] fuel in module.toml")


async def test_memory_bomb_fails_cleanly(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises((ModuleError, ModuleCrashed)) as err:
        await probe(manager, "membomb")
    pages = int(err.value.message.split("after ")[1].split()[0]) if "after" in err.value.message else None
    assert pages is None or pages * 64 <= 16 * 1024
    assert await probe(manager, "echo", 3) == 3
    [stop] = events(state, "limit.memory")
    assert (stop["decision"], stop["target"], stop["request_id"]) == ("deny", "16 MB", "req-1")


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


async def test_concurrency_is_bounded_with_backpressure(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace("timeout_ms = 2000", "timeout_ms = 500\nconcurrency = 1\nqueue = 1"))
    results = await asyncio.gather(*(probe(manager, "spin") for _ in range(3)), return_exceptions=True)
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["ModuleBusy", "ModuleTimeout", "ModuleTimeout"]
    assert any(isinstance(r, ModuleBusy) and "concurrency" in r.fix for r in results)


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


async def test_payload_too_large_is_refused_before_the_module_runs(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises(BadPayload, match="over the 4194304-byte limit") as err:
        await probe(manager, "echo", "x" * (5 << 20))
    assert "send less per call" in err.value.fix
    assert await probe(manager, "echo", "x" * 1000) == "x" * 1000
