"""The playground's API over a real server: access, the lists, timelines, replay and diff, debug gates."""

import asyncio
import socket
import urllib.request

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runtime.http.app import build_app
from runtime.http.project import ProjectError
from playground_support import write_project

P = "/_gati/playground"
CHANGE = {"X-Gati-Playground": "1"}


@pytest.fixture
def root(tmp_path, gati_home):
    return write_project(tmp_path / "app", "[playground]\nenabled = true\n")


@pytest.fixture
async def client(root):
    client = TestClient(TestServer(build_app(root), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def api(client, method, path, **kw):
    r = await client.request(method, P + "/api" + path, headers={**CHANGE, **kw.pop("headers", {})}, **kw)
    body = await r.json()
    assert r.status < 300, body
    return body


async def test_the_page_and_its_files_are_served_from_the_package(client):
    r = await client.get(P + "/")
    assert r.status == 200 and f'src="{P}/static/playground.js"' in await r.text()
    for name in ("playground.js", "playground.css"):
        assert (await client.get(f"{P}/static/{name}")).status == 200
    assert (await client.get(f"{P}/static/../gates.py")).status == 404


async def test_routes_and_modules(client):
    routes = await api(client, "GET", "/routes")
    visit = next(r for r in routes if r["route"] == "/visit")
    assert visit["versions"] == ["1"] and visit["hooks"] == ["load_user", "handler", "audit_trail"]
    assert [c["method"] for c in visit["manifests"]["1"]["modules"]] == ["count", "hello"]
    await client.get("/visit")  # the module does something the audit sees
    (greet,) = await api(client, "GET", "/modules")
    assert greet["name"] == "greet" and greet["kind"] == "wasm" and greet["limits"]["memory_mb"] == 16
    assert any("visits" in line for line in greet["may"])
    assert sorted((d["capability"], d["target"]) for d in greet["did"]) == [("kv.read", "visits"), ("kv.write", "visits")]


async def test_a_request_appears_live_with_its_timeline(client):
    events = await client.get(P + "/api/events")
    assert await events.content.readline() == b": connected\n"
    assert await events.content.readline() == b"\n"
    r = await client.post("/visit?user=ada", json={"name": "bob"})
    rid = r.headers["X-Request-Id"]
    lines = []
    while not lines or lines[-1] != b"\n":
        lines.append(await asyncio.wait_for(events.content.readline(), 30))
    assert lines[0] == b"event: request\n" and rid.encode() in lines[1]
    events.close()
    assert (await api(client, "GET", "/requests"))[0]["id"] == rid
    one = await api(client, "GET", f"/requests/{rid}")
    labels = [(row["kind"], row["label"]) for row in one["timeline"]]
    assert ("hook", "hook before:load_user") in labels and ("handler", "handler") in labels
    assert ("module", "module greet.count") in labels and ("hook", "hook after:audit_trail") in labels
    assert ("capability", "capability greet kv.read visits") in labels  # from the audit log, by request id
    modules = [row for row in one["timeline"] if row["kind"] == "module"]
    assert modules[1]["detail"]["payload"] == {"name": "bob"} and modules[1]["detail"]["answer"] == {"message": "hello, bob"}


async def test_replay_real_and_recorded_and_their_diffs(client):
    original = (await client.post("/visit?user=ada", json={"name": "bob"})).headers["X-Request-Id"]

    real = await api(client, "POST", "/replay", json={"id": original, "mode": "real"})
    assert real["status"] == 200 and real["id"] != original
    d = await api(client, "GET", f"/diff?a={original}&b={real['id']}")
    assert not d["answer"]["same"]  # the module ran again: one visit more
    assert '-  "visits": 1' in d["answer"]["lines"] and '+  "visits": 2' in d["answer"]["lines"]
    assert d["b"]["replay_of"] == original and d["b"]["replay_mode"] == "real"
    # count answered differently (side by side on one row); hello alike
    assert [(r["same"], r["a"]["answer"], r["b"]["answer"]) for r in d["calls"]] == [
        (False, {"visits": 1}, {"visits": 2}), (True, {"message": "hello, bob"}, {"message": "hello, bob"})
    ]

    recorded = await api(client, "POST", "/replay", json={"id": original, "mode": "recorded"})
    d = await api(client, "GET", f"/diff?a={original}&b={recorded['id']}")
    assert d["answer"]["same"] and d["answer"]["lines"] == []
    replayed = (await api(client, "GET", f"/requests/{recorded['id']}"))["snapshot"]
    assert [c["answered"] for c in replayed["calls"]] == ["recorded", "recorded"]
    # the module did not run: the next real visit is the third
    assert (await (await client.get("/visit")).json())["visits"] == 3


async def test_replay_against_another_version_and_its_diff(tmp_path, gati_home):
    root = write_project(tmp_path / "app", "[playground]\nenabled = true\n", versions=True)
    async with TestClient(TestServer(build_app(root), host="127.0.0.1")) as client:
        routes = await api(client, "GET", "/routes")
        visit = next(r for r in routes if r["route"] == "/visit")
        assert (visit["versions"], visit["default"], sorted(visit["manifests"])) == (["1", "2"], "1", ["1", "2"])
        r = await client.post("/visit?user=ada", json={"name": "bob"})
        assert r.headers["Gati-Version"] == "1"
        original = r.headers["X-Request-Id"]

        # the same request against version 2, its module calls answered from version 1's recording
        replayed = await api(client, "POST", "/replay", json={"id": original, "version": "2", "mode": "recorded"})
        assert replayed["status"] == 200 and replayed["version"] == "2"
        d = await api(client, "GET", f"/diff?a={original}&b={replayed['id']}")
        assert (d["a"]["version"], d["b"]["version"]) == ("1", "2") and not d["answer"]["same"]
        assert '-  "message": "hello, bob",' in d["answer"]["lines"] and '+  "message": "HELLO, BOB",' in d["answer"]["lines"]
        assert '+  "version": 2,' in d["answer"]["lines"] and '"visits": 1' in d["b"]["body"]  # the recorded count
        assert all(row["same"] for row in d["calls"])  # the same calls, answered alike
        # only in the original: the module's kv decisions (a recorded answer runs no module) and v1's AFTER hook
        assert [(row["a"]["label"], row["b"]) for row in d["timeline"] if not row["same"]] == [
            ("capability greet kv.read visits", None), ("capability greet kv.write visits", None), ("hook after:audit_trail", None)
        ]

        # with no version asked for, a replay goes to the version the original ran
        again = await api(client, "POST", "/replay", json={"id": original, "mode": "recorded"})
        assert again["version"] == "1"
        assert (await api(client, "GET", f"/diff?a={original}&b={again['id']}"))["answer"]["same"]


async def test_a_recorded_replay_refuses_a_call_the_original_did_not_make(client, root):
    original = (await client.get("/visit")).headers["X-Request-Id"]
    rt = client.server.app
    from runtime.http.appstate import RUNTIME

    snapshot = rt[RUNTIME].recorder.store.get(original)
    snapshot["calls"] = snapshot["calls"][:1]  # as if the original called only count
    flag = rt[RUNTIME].recorder.replay(snapshot, "recorded")
    r = await client.get("/visit", headers={"X-Gati-Flags": flag})
    assert r.status == 502 and (await r.json())["error"]["code"] == "no_recorded_answer"
    # a token serves one request: sent again, the flag is just a flag and the modules run
    r = await client.get("/visit", headers={"X-Gati-Flags": flag})
    assert r.status == 200 and rt[RUNTIME].recorder.store.get(r.headers["X-Request-Id"])["replay_of"] is None


async def test_replay_refuses_unknown_versions_and_cut_bodies(tmp_path, gati_home):
    root = write_project(tmp_path / "app", "[playground]\nenabled = true\n[audit]\nsnapshot_body_bytes = 4\n")
    async with TestClient(TestServer(build_app(root), host="127.0.0.1")) as client:
        rid = (await client.post("/visit", json={"name": "bob"})).headers["X-Request-Id"]
        r = await client.post(P + "/api/replay", json={"id": rid, "version": "9"}, headers=CHANGE)
        assert r.status == 404 and "no live version" in (await r.json())["error"]["message"]
        r = await client.post(P + "/api/replay", json={"id": rid}, headers=CHANGE)
        assert r.status == 400 and (await r.json())["error"]["code"] == "replay_refused"


async def test_a_gate_pauses_a_request_whose_state_is_edited_then_resumed(client):
    await api(client, "POST", "/gates", json={"route": "/visit", "when": "after", "hook": "load_user"})
    waiting = asyncio.ensure_future(client.get("/visit?user=ada"))
    paused = await until(client, lambda g: g["paused"])
    (p,) = paused
    assert (p["when"], p["hook"], p["state"]) == ("after", "load_user", {"user": "ada"})
    assert not waiting.done()
    await api(client, "PUT", f"/paused/{p['id']}/state", json={"user": "grace", "flag": "set in the playground"})
    await api(client, "POST", f"/paused/{p['id']}/resume")
    body = await (await waiting).json()
    assert (body["user"], body["flag"]) == ("grace", "set in the playground")
    one = await api(client, "GET", f"/requests/{p['id']}")
    assert [r["label"] for r in one["timeline"] if r["kind"] == "gate"] == ["gate:paused", "gate:state", "gate:resumed"]


async def test_an_edit_keeps_what_it_did_not_change_even_when_it_is_not_json(tmp_path, gati_home):
    root = write_project(tmp_path / "app", "[playground]\nenabled = true\n")
    (root / "handlers" / "obj.py").write_text(
        "import threading\n"
        "def keep(req, res, gctx, lctx):\n    lctx.set('lock', threading.Lock())\n    lctx.set('n', 1)\n"
        "BEFORE = [keep]\n"
        "async def handler(req, res, gctx, lctx):\n"
        "    return {'lock': type(lctx.get('lock')).__name__, 'n': lctx.get('n'), 'keys': sorted(lctx.keys())}\n"
    )
    async with TestClient(TestServer(build_app(root), host="127.0.0.1")) as client:
        await api(client, "POST", "/gates", json={"route": "/obj", "when": "after", "hook": "keep"})
        waiting = asyncio.ensure_future(client.get("/obj"))
        (p,) = await until(client, lambda g: g["paused"])
        assert p["state"]["lock"].startswith("<unlocked _thread.lock")  # shown as its repr
        edited = {k: v for k, v in p["state"].items() if k != "user"}
        await api(client, "PUT", f"/paused/{p['id']}/state", json={**edited, "n": 2})
        await api(client, "POST", f"/paused/{p['id']}/resume")
        r = await waiting
        assert await r.json() == {"lock": "lock", "n": 2, "keys": ["lock", "n"]}
        stored = (await api(client, "GET", f"/requests/{r.headers['X-Request-Id']}"))["snapshot"]
        assert stored["lctx"]["state"]["lock"].startswith("<unlocked _thread.lock")  # stored as its repr, the request unharmed


async def test_a_paused_request_is_not_timed_out_for_the_pause(tmp_path, gati_home):
    root = write_project(tmp_path / "app", "[playground]\nenabled = true\n")
    (root / "handlers" / "quick.py").write_text("TIMEOUT_MS = 200\nasync def handler(req, res, gctx, lctx):\n    return {'ok': True}\n")
    async with TestClient(TestServer(build_app(root), host="127.0.0.1")) as client:
        await api(client, "POST", "/gates", json={"route": "/quick", "when": "before", "hook": "handler"})
        waiting = asyncio.ensure_future(client.get("/quick"))
        (p,) = await until(client, lambda g: g["paused"])
        await asyncio.sleep(0.6)  # three times the route's timeout, held at the gate
        await api(client, "POST", f"/paused/{p['id']}/resume")
        r = await waiting
        assert r.status == 200 and await r.json() == {"ok": True}


async def test_a_gated_request_can_be_failed_and_a_removed_gate_lets_requests_go(client):
    gate = await api(client, "POST", "/gates", json={"route": "/visit", "when": "before", "hook": "handler"})
    waiting = asyncio.ensure_future(client.get("/visit"))
    (p,) = await until(client, lambda g: g["paused"])
    await api(client, "POST", f"/paused/{p['id']}/fail", json={"status": 503, "message": "stopped by hand"})
    r = await waiting
    assert r.status == 503 and (await r.json())["error"]["code"] == "failed_at_gate"

    waiting = asyncio.ensure_future(client.get("/visit"))
    await until(client, lambda g: g["paused"])
    await api(client, "DELETE", f"/gates/{gate['id']}")
    assert (await waiting).status == 200
    assert (await api(client, "GET", "/gates")) == {"gates": [], "paused": []}


async def test_a_gate_names_a_hook_the_route_runs(client):
    r = await client.post(P + "/api/gates", json={"route": "/visit", "when": "before", "hook": "nope"}, headers=CHANGE)
    assert r.status == 400 and "load_user, handler, audit_trail" in (await r.json())["error"]["fix"]


async def test_changes_need_the_playground_header_and_a_loopback_host(client):
    r = await client.post(P + "/api/gates", json={"route": "/visit", "hook": "handler"})
    assert r.status == 403 and "X-Gati-Playground" in (await r.json())["error"]["message"]
    r = await client.get(P + "/api/requests", headers={"Host": "evil.example:8080"})  # DNS rebinding
    assert r.status == 403


def test_beyond_loopback_the_playground_needs_its_token(root, monkeypatch):
    with pytest.raises(ProjectError) as caught:
        build_app(root, host="0.0.0.0")
    assert "playground_token" in str(caught.value) and "GATI_SECRET_PLAYGROUND_TOKEN" in caught.value.fix


async def test_the_token_opens_the_playground(root, monkeypatch):
    token = "t" * 24
    monkeypatch.setenv("GATI_SECRET_PLAYGROUND_TOKEN", token)
    async with TestClient(TestServer(build_app(root, host="0.0.0.0"), host="127.0.0.1")) as client:
        assert (await client.get(P + "/api/routes")).status == 401
        assert (await client.get(P + "/api/routes", headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(P + "/api/routes", headers={"Authorization": f"Bearer {token}"})).status == 200
        r = await client.get(f"{P}/?token={token}", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == f"{P}/" and "HttpOnly" in r.headers["Set-Cookie"]
        assert (await client.get(P + "/api/routes")).status == 200  # the cookie now


async def test_without_the_playground_there_is_no_gate_and_no_route(tmp_path, gati_home, serve):
    client = await serve(write_project(tmp_path / "app"))
    assert (await client.get(P + "/")).status == 404
    from runtime.http.appstate import RUNTIME

    rt = client.server.app[RUNTIME]
    assert rt.gates is None and all(p.lifecycle.gates is None for p in rt.plans.values())


async def until(client, pick):
    """Poll the gates until pick(gates) is truthy (bounded)."""
    for _ in range(600):
        found = pick(await api(client, "GET", "/gates"))
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("nothing waited at the gate")


def test_gati_serve_serves_the_playground_when_enabled(root):
    from serving_support import Server

    port = free_port()
    server = Server("serve", root, "--port", port, cwd=root)
    try:
        server.wait_for(f"the playground is on http://127.0.0.1:{port}/_gati/playground/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{P}/", timeout=60) as resp:
            assert resp.status == 200 and b"gati playground" in resp.read()
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_an_open_playground_without_a_token_and_more_than_one_worker(root, monkeypatch):
    from typer.testing import CliRunner

    from runtime.cli.main import app

    monkeypatch.delenv("GATI_SECRET_PLAYGROUND_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(root), "--host", "0.0.0.0", "--port", "18099", "--workers", "1"])
    assert result.exit_code == 1 and "needs the secret 'playground_token'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["serve", str(root), "--port", "18099", "--workers", "2"])
    assert result.exit_code == 1 and "needs one serving process" in result.output
