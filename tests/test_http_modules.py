"""Handlers calling real WebAssembly modules through gctx.modules, over real HTTP."""

import textwrap

import pytest
from aiohttp.test_utils import TestServer

from runtime.core.audit_log import read_events
from runtime.core.errors import ManifestError
from runtime.http.app import build_app
from runtime.http.project import scaffold

# Reads kv store "secret-store", which it never declared, and answers with what the host said.
PROBE_WAT = """
(module
  (import "gati" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "secret-store")
  (data (i32.const 16) "k")
  (func (export "sneak") (result i32)
    (drop (call $kv_get (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 1)))
    (call $result_read (i32.const 1024))
    (call $output (i32.const 1024) (call $result_len))
    (i32.const 0)))
"""

PROBE_TOML = """
name = "probe"
version = "1.0.0"
kind = "wasm"
[artifact]
path = "probe.wat"
[methods.sneak]
"""


@pytest.fixture
def scaffolded(tmp_path, gati_home):
    return scaffold(tmp_path / "app")


async def test_scaffold_handler_calls_its_wasm_module(scaffolded, serve):
    client = await serve(scaffolded)

    r = await client.get("/?name=you")
    assert r.status == 200
    body = await r.json()
    assert body["greeting"] == "hello"
    assert body["module"] == {"greeting": "hello from WebAssembly", "you_sent": {"name": "you"}}
    assert body["request_id"] == r.headers["X-Request-Id"]

    r = await client.post("/hello/bob", json={"x": [1, 2]})
    assert r.status == 200
    assert await r.json() == {"greeting": "hello from WebAssembly", "you_sent": {"name": "bob", "body": {"x": [1, 2]}}}


async def test_module_failures_are_typed_and_structured(scaffolded, serve):
    (scaffolded / "handlers" / "broken.py").write_text(
        textwrap.dedent(
            """
            from runtime.core.errors import ModuleNotFound

            async def handler(req, res, gctx, lctx):
                which = req.query["which"]
                if which == "method":
                    return await gctx.modules.hello.nope({})
                if which == "module":
                    return await gctx.modules["ghost"].call("x", {})
                try:
                    await gctx.modules.ghost.x({})
                except ModuleNotFound as exc:
                    return {"caught": exc.code}
            """
        )
    )
    client = await serve(scaffolded)

    r = await client.get("/broken?which=method")
    error = (await r.json())["error"]
    assert (r.status, error["code"], error["method"]) == (500, "method_not_found", "nope")
    assert "hello" in error["fix"]

    r = await client.get("/broken?which=module")
    assert (await r.json())["error"]["code"] == "module_not_found"

    r = await client.get("/broken?which=caught")
    assert (r.status, await r.json()) == (200, {"caught": "module_not_found"})

    r = await client.get("/")  # the server is unharmed
    assert r.status == 200


async def test_denials_are_audited_under_the_request(scaffolded, serve, gati_home, tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "probe.wat").write_text(PROBE_WAT)
    (probe / "module.toml").write_text(PROBE_TOML)
    (scaffolded / "gati.toml").write_text(f'[modules]\npaths = ["{probe}"]\n')
    (scaffolded / "handlers" / "sneak.py").write_text(
        "async def handler(req, res, gctx, lctx):\n    return await gctx.modules.probe.sneak({})\n"
    )
    client = await serve(scaffolded)

    r = await client.get("/sneak")
    assert r.status == 200
    denial = await r.json()
    assert denial["code"] == "capability_denied"
    assert "secret-store" in denial["grant"]

    events = [e for e in read_events(gati_home / "audit.log") if e["module"] == "probe"]
    assert len(events) == 1
    event = events[0]
    assert event["decision"] == "deny"
    assert event["request_id"] == r.headers["X-Request-Id"]
    assert event["trace_id"] == r.headers["traceparent"].split("-")[1]
    assert event["caller"] == "handler:/sneak"


async def test_a_broken_manifest_stops_start_up(scaffolded):
    manifest = scaffolded / "modules" / "hello" / "module.toml"
    manifest.write_text(manifest.read_text() + "\n[capabilities.extra]\n")
    server = TestServer(build_app(scaffolded), host="127.0.0.1")
    with pytest.raises(ManifestError) as exc:
        await server.start_server()
    await server.close()
    assert str(manifest) in exc.value.message
    assert exc.value.fix


def test_module_paths_from_gati_toml_must_exist(scaffolded):
    from runtime.http.project import ProjectError, load_project

    (scaffolded / "gati.toml").write_text('[modules]\npaths = ["../nowhere"]\n')
    with pytest.raises(ProjectError) as exc:
        load_project(scaffolded).module_dirs()
    assert "modules.paths[0]" in exc.value.message


async def test_serve_registers_the_project_modules(scaffolded, serve):
    from runtime.core.state import StateDir

    await serve(scaffolded)
    state = StateDir.open(scaffolded)
    try:
        assert state.registry.names() == ["hello"]
    finally:
        state.close()


async def test_audit_report_over_http_is_off_unless_enabled_and_behind_a_token(scaffolded, serve, monkeypatch):
    from runtime.http.project import ProjectError

    client = await serve(scaffolded)
    assert (await client.get("/_gati/audit")).status == 404  # off by default

    toml = scaffolded / "gati.toml"
    toml.write_text(toml.read_text() + '\n[audit]\nendpoint = "/_gati/audit"\n')
    monkeypatch.delenv("GATI_SECRET_AUDIT_TOKEN", raising=False)
    with pytest.raises(ProjectError, match="audit_token"):
        build_app(scaffolded)  # enabled without a token: refused at start-up, never served open

    token = "a" * 32
    monkeypatch.setenv("GATI_SECRET_AUDIT_TOKEN", token)
    client = await serve(scaffolded)
    assert (await client.get("/")).status == 200  # the scaffold's handler calls its module
    assert (await client.get("/_gati/audit")).status == 401
    report = await client.get("/_gati/audit", headers={"Authorization": f"Bearer {token}"})
    assert report.status == 200
    assert "hello" in [m["name"] for m in (await report.json())["modules"]]
