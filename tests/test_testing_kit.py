"""runtime.testing: simulated modules, faults, the in-process client, fake contexts, and the
pytest plugin as `gati test` runs it."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runtime.core.call import CallContext
from runtime.core.errors import BadPayload, CapabilityDenied, GatiError, MethodNotFound, ModuleBusy, ModuleCrashed, ModuleError, ModuleTimeout
from runtime.http.project import scaffold
from runtime.http.response import Response
from runtime.testing import app_client, fake_gctx, fake_lctx, fake_request, faults, load_handler, project_modules, simulate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, gati_home):
    return scaffold(tmp_path / "app")


@pytest.fixture
def hello(project):
    return project / "modules" / "hello"


# simulated modules ---------------------------------------------------------------------------------


async def test_simulated_module_answers_canned_values_and_functions_and_records_calls(hello):
    sim = simulate(hello, hello={"greeting": "hi"})
    assert await sim.call("hello", {"name": "ada"}) == {"greeting": "hi"}
    sim.answer("hello", lambda payload: {"len": len(payload["name"])})
    assert await sim.call("hello", {"name": "ada"}) == {"len": 3}

    async def with_call(payload, call):
        return {"method": call.method, "request": call.request_id}

    sim.answer("hello", with_call)
    assert await sim.call("hello", None, CallContext(request_id="r1")) == {"method": "hello", "request": "r1"}
    assert [c.payload for c in sim.calls] == [{"name": "ada"}, {"name": "ada"}, None]
    assert sim.calls_to("hello")[2].request_id == "r1"


async def test_simulated_module_keeps_the_manifest_contract(hello):
    with pytest.raises(GatiError, match="declares no method 'bye'"):
        simulate(hello, bye={})
    sim = simulate(hello)
    with pytest.raises(MethodNotFound, match="call one of: hello"):
        await sim.call("bye", {})
    with pytest.raises(ModuleError, match="no answer for hello"):
        await sim.call("hello", {})
    with pytest.raises(BadPayload, match="not JSON-compatible"):
        await sim.call("hello", {"when": object()})
    sim.answer("hello", lambda p: {1, 2})
    with pytest.raises(BadPayload, match="not JSON"):
        await sim.call("hello", {})
    sim.answer("hello", lambda p: {1: "keys become strings, as over the wire"})
    assert await sim.call("hello", {}) == {"1": "keys become strings, as over the wire"}


async def test_simulated_module_applies_the_method_timeout(hello):
    # modules/hello declares timeout_ms = 1000 for hello; a deadline closer than that wins.
    async def never(payload):
        await asyncio.Event().wait()

    sim = simulate(hello, hello=never)
    ctx = CallContext(deadline=time.monotonic() + 0.05)
    with pytest.raises(ModuleTimeout):
        await sim.call("hello", {}, ctx)


# faults ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (faults.timeout("hello"), ModuleTimeout),
        (faults.crash("hello"), ModuleCrashed),
        (faults.busy("hello"), ModuleBusy),
        (faults.denied("hello", "egress", "https://api.example.com:443"), CapabilityDenied),
    ],
    ids=["timeout", "crash", "busy", "denied"],
)
async def test_each_fault_raises_the_runtimes_own_error(hello, fault, error):
    gctx = fake_gctx(modules=[simulate(hello, hello={"ok": True})], faults=[fault])
    with pytest.raises(error) as raised:
        await gctx.modules.hello.hello({})
    if error is CapabilityDenied:
        assert raised.value.details["grant"] == 'egress = ["https://api.example.com:443"]'


async def test_slow_fault_delays_within_the_deadline_and_times_out_past_it(hello):
    gctx = fake_gctx(modules=[simulate(hello, hello={"ok": True})], faults=[faults.slow("hello", 0.05)])
    assert await gctx.modules.hello.hello({}) == {"ok": True}
    gctx = fake_gctx(modules=[simulate(hello, hello={"ok": True})], faults=[faults.slow("hello", 30)])
    ctx = CallContext(deadline=time.monotonic() + 0.05)
    with pytest.raises(ModuleTimeout, match="slow by 30"):
        await gctx.modules.call("hello", "hello", {}, ctx=ctx)


async def test_faults_can_be_limited_to_a_method_and_a_number_of_calls(hello):
    gctx = fake_gctx(modules=[simulate(hello, hello={"ok": True})], faults=[faults.crash("hello", method="hello", times=1), faults.crash("other")])
    with pytest.raises(ModuleCrashed):
        await gctx.modules.hello.hello({})
    assert await gctx.modules.hello.hello({}) == {"ok": True}  # spent after one call


# the in-process client over the real app -----------------------------------------------------------------


async def test_client_runs_the_real_app_with_a_real_module(project):
    async with app_client(project) as client:
        resp = await client.get("/", params={"name": "ada"})
        assert resp.status == 200
        assert (await resp.json())["module"] == {"greeting": "hello from WebAssembly", "you_sent": {"name": "ada"}}
        assert [(c.module, c.method, c.payload) for c in client.modules.calls] == [("hello", "hello", {"name": "ada"})]
        assert client.modules.calls[0].request_id == resp.headers["X-Request-Id"]


async def test_client_injects_faults_into_a_real_module_while_the_app_runs(project):
    async with app_client(project) as client:
        assert (await client.get("/")).status == 200
        client.modules.inject(faults.crash("hello", times=1))
        failed = await client.get("/")
        assert failed.status == 502 and (await failed.json())["error"]["code"] == "module_crashed"
        assert (await client.get("/")).status == 200


async def test_a_simulated_module_needs_no_built_artifact(project):
    (project / "modules" / "hello" / "hello.wat").unlink()  # would fail registration if it were registered
    sim = simulate(project / "modules" / "hello", hello=lambda p: {"echo": p})
    async with app_client(project, modules=[sim]) as client:
        resp = await client.post("/hello/ada", json={"x": 1})
        assert resp.status == 200 and await resp.json() == {"echo": {"name": "ada", "body": {"x": 1}}}
        assert resp.headers["X-Handled-By"] == "hello/[name].py"
    assert sim.calls[0].caller == "handler:/hello/{name}"


async def test_real_modules_for_a_modules_own_test(project):
    async with project_modules(project) as modules:
        hello = await modules.module("hello")
        assert await hello.hello({"n": 1}) == {"greeting": "hello from WebAssembly", "you_sent": {"n": 1}}
        modules.doubles.inject(faults.timeout("hello"))
        with pytest.raises(ModuleTimeout):
            await hello.hello({})
        with pytest.raises(GatiError, match="no module named 'nope'"):
            await modules.module("nope")


# fake contexts --------------------------------------------------------------------------------------


async def test_a_handler_unit_tested_with_fake_contexts(project):
    handler = load_handler(project / "handlers" / "hello" / "[name].py")
    sim = simulate(project / "modules" / "hello", hello=lambda p: {"got": p})
    res = Response()
    await handler(fake_request("POST", "/hello/ada", params={"name": "ada"}, json={"a": 1}), res, fake_gctx(modules=[sim]), fake_lctx())
    assert sim.calls[0].payload == {"name": "ada", "body": {"a": 1}}
    assert json.loads(res.to_aiohttp().body) == {"got": {"name": "ada", "body": {"a": 1}}}


def test_fake_contexts_are_the_real_ones():
    gctx = fake_gctx(config={"a": {"b": 1}}, secrets={"key": "v"})
    with pytest.raises(TypeError, match="read-only"):
        gctx.config["a"]["b"] = 2
    assert gctx.secrets.get("key") == "v"
    lctx = fake_lctx("req-9", route="/x", user="ada")
    assert (lctx.request_id, lctx.route, lctx.get("user")) == ("req-9", "/x", "ada")
    req = fake_request(query={"q": "1"}, headers={"X-A": "b"})
    assert req.query["q"] == "1" and req.headers["x-a"] == "b"


async def test_fake_gctx_names_a_module_it_does_not_have(hello):
    gctx = fake_gctx(modules=[simulate(hello, hello={})])
    with pytest.raises(GatiError, match="no module named 'thumbs' in this fake gctx"):
        await gctx.modules.thumbs.resize({})
    assert "hello" in gctx.modules and list(gctx.modules) == ["hello"]


# the plugin, as gati test runs it ---------------------------------------------------------------------------


def gati(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk" / "python")])}
    return subprocess.run([sys.executable, "-m", "runtime.cli.main", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_gati_test_runs_the_projects_tests_with_every_fixture_and_reports_failures(project):
    (project / "tests" / "test_more.py").write_text(textwrap.dedent('''
        from runtime.testing import faults

        async def test_fixtures(gati_project, gati_client, gati_app, gati_simulate, gati_module, gati_modules):
            assert (gati_project / "gati.toml").is_file()
            assert (await gati_client.get("/")).status == 200
            hello = await gati_module("hello")
            assert (await hello.hello({}))["you_sent"] == {}
            sim = gati_simulate("hello", hello={"fake": True})
            client = await gati_app(modules=[sim], faults=[faults.slow("hello", 0.01)])
            assert (await (await client.get("/")).json())["module"] == {"fake": True}

        def test_that_fails():
            assert 1 == 2
    '''))
    proc = gati("test", "--project", project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_fixtures PASSED" in proc.stdout or "1 failed, 5 passed" in proc.stdout, proc.stdout
    assert "test_that_fails" in proc.stdout and "1 failed" in proc.stdout
    assert "Traceback" not in proc.stderr
    none = gati("test", "--project", project, "tests/nothing_here.py")
    assert none.returncode != 0


def test_the_sample_app_passes_its_own_tests():
    proc = gati("test", "--no-build", "--project", ROOT / "examples" / "app")  # make modules built them
    assert proc.returncode == 0 and " passed" in proc.stdout, proc.stdout + proc.stderr


async def test_simulated_module_checks_the_declared_payload_schemas(tmp_path):
    folder = tmp_path / "typed"
    folder.mkdir()
    (folder / "module.toml").write_text(textwrap.dedent('''\
        name = "typed"
        version = "0.1.0"
        kind = "wasm"
        [artifact]
        path = "typed.wat"
        [methods.hello]
        input = { type = "object", required = ["name"], properties = { name = { type = "string" } } }
        output = { type = "object", required = ["message"], properties = { message = { type = "string" } } }
    '''))
    sim = simulate(folder, hello=lambda p: {"message": f"hi {p['name']}"})
    assert await sim.call("hello", {"name": "ada"}) == {"message": "hi ada"}
    with pytest.raises(BadPayload) as bad_input:
        await sim.call("hello", {"name": 7})
    assert bad_input.value.details["direction"] == "input" and bad_input.value.details["errors"][0]["path"] == "$.name"
    sim.answer("hello", {"msg": "wrong shape"})
    with pytest.raises(BadPayload) as bad_output:
        await sim.call("hello", {"name": "ada"})
    assert bad_output.value.details["direction"] == "output"


async def test_a_simulated_module_answers_for_every_version_and_pin_of_it(project):
    (project / "handlers" / "pinned.py").write_text(
        'MODULES = {"hello": "^1"}\n\n'
        "async def handler(req, res, gctx, lctx):\n"
        '    return {"pinned": await gctx.modules.hello.hello({}), "named": await gctx.modules["hello@1.0.0"].hello({})}\n'
    )
    sim = simulate(project / "modules" / "hello", hello={"hi": 1})
    async with app_client(project, modules=[sim]) as client:
        resp = await client.get("/pinned")
        assert resp.status == 200 and await resp.json() == {"pinned": {"hi": 1}, "named": {"hi": 1}}
    assert len(sim.calls) == 2
