"""The native sample modules end to end: Go (shortlink) and a Python script (linkcheck),
through ModuleManager and through a handler served over real HTTP."""

import pytest
from native_support import (  # noqa: F401
    CTX,
    LINKCHECK,
    SHORTLINK,
    events,
    install,
    manager,
    needs_bwrap,
    origin,
)

from runtime.core.errors import CapabilityDenied, GatiError
from runtime.modules import register_module

pytestmark = needs_bwrap
needs_go_build = pytest.mark.skipif(
    not (SHORTLINK / "build" / "shortlink").exists(), reason="build the Go sample first: make modules (needs golang-go)"
)


@needs_go_build
async def test_shortlink_go_stores_and_resolves_through_the_host(state, manager, tmp_path):
    register_module(state, install(tmp_path, SHORTLINK))
    url = "https://www.debian.org/releases/bookworm/"
    made = await manager.call("shortlink", "shorten", {"url": url}, ctx=CTX)
    assert len(made["code"]) == 7 and made["url"] == url
    assert (await manager.call("shortlink", "shorten", {"url": url}, ctx=CTX))["code"] == made["code"]  # stable
    assert await manager.call("shortlink", "resolve", {"code": made["code"]}, ctx=CTX) == made
    assert await state.kv.get("links", made["code"]) == url.encode()
    with pytest.raises(GatiError) as exc:
        await manager.call("shortlink", "resolve", {"code": "AAAAAAA"}, ctx=CTX)
    assert (exc.value.code, exc.value.details["reason"]) == ("module_error", "not_found")
    with pytest.raises(GatiError) as exc:
        await manager.call("shortlink", "shorten", {"url": "javascript:alert(1)"}, ctx=CTX)
    assert exc.value.code == "bad_payload"
    kv = [(e["capability"], e["decision"], e["request_id"]) for e in events(state)]
    assert kv == [("kv.write", "allow", "req-n1")] * 2 + [("kv.read", "allow", "req-n1")] * 2


@needs_go_build
async def test_shortlink_without_its_kv_grant_is_refused_naming_the_grant(state, manager, tmp_path):
    register_module(state, install(tmp_path, SHORTLINK, edit=lambda t: t.replace('kv = ["links"]', "kv = []")))
    with pytest.raises(CapabilityDenied) as exc:
        await manager.call("shortlink", "shorten", {"url": "https://example.com/"}, ctx=CTX)
    assert exc.value.details["grant"] == '[capabilities] kv = ["links"]'
    assert [(e["capability"], e["decision"]) for e in events(state)] == [("kv.write", "deny")]


async def test_linkcheck_py_checks_links_through_the_egress_proxy(state, manager, tmp_path, origin):
    port, hits = origin
    granted = f'egress = ["http://127.0.0.1:{port}"]'
    register_module(state, install(tmp_path, LINKCHECK, edit=lambda t: t.replace(t.split("\n[capabilities]\n")[1].split("\n")[0], granted)))
    base = f"http://127.0.0.1:{port}"
    report = await manager.call("linkcheck", "check", {"urls": [f"{base}/a", f"{base}/missing", "http://elsewhere.test/"]}, ctx=CTX)
    assert [(r["url"], r["ok"], r["status"]) for r in report] == [
        (f"{base}/a", True, 200),
        (f"{base}/missing", False, 404),
        ("http://elsewhere.test/", False, None),
    ]
    assert (report[2]["error"], report[2]["grant"]) == ("egress not granted", '[capabilities] egress = ["http://elsewhere.test:80"]')
    assert await manager.call("linkcheck", "title", {"url": f"{base}/page"}, ctx=CTX) == {"url": f"{base}/page", "status": 200, "title": "Origin page"}
    assert sorted(hits) == ["/a", "/missing", "/page"]
    assert ("deny", "http://elsewhere.test:80") in [(e["decision"], e["target"]) for e in events(state, "egress")]


@needs_go_build
async def test_a_handler_calls_the_go_module_over_http(make_project, serve, tmp_path):
    module = install(tmp_path, SHORTLINK)
    project = make_project(
        {
            "links/index.py": """
                METHODS = ["POST"]

                async def handler(req, res, gctx, lctx):
                    body = await req.json()
                    return await gctx.modules.shortlink.shorten({"url": body["url"]})
            """,
            "links/[code].py": """
                async def handler(req, res, gctx, lctx):
                    return await gctx.modules.shortlink.resolve({"code": req.params["code"]})
            """,
        },
        toml=f'[modules]\npaths = ["{module}"]\n',
    )
    client = await serve(project)
    r = await client.post("/links", json={"url": "https://example.org/a"})
    assert r.status == 200, await r.text()
    code = (await r.json())["code"]
    r = await client.get(f"/links/{code}")
    assert (r.status, await r.json()) == (200, {"code": code, "url": "https://example.org/a"})
    r = await client.get("/links/AAAAAAA")
    assert r.status >= 400 and (await r.json())["error"]["reason"] == "not_found"
