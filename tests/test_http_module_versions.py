"""Handlers pin module versions (MODULES, gctx.modules["greet@1"]) over real HTTP; a pin nothing
satisfies stops start-up; a version out of service is answered 503 when pinned exactly and listed
by /readyz."""

import asyncio
import textwrap

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runtime.http.app import build_app, reload_handlers

from runtime.http.module_pins import PinError
from runtime.http.routing import RouteError
from tests.versions_support import greet

WAIT_S = 30

HANDLERS = {
    "pinned.py": """
        MODULES = {"greet": "^1.2"}

        async def handler(req, res, gctx, lctx):
            return await gctx.modules.greet.hello({})
    """,
    "listed.py": """
        MODULES = ["greet@~1.2", "other"]

        async def handler(req, res, gctx, lctx):
            return await gctx.modules["greet"].hello({})
    """,
    "free.py": """
        async def handler(req, res, gctx, lctx):
            return await gctx.modules.greet.hello({})
    """,
    "exact.py": """
        async def handler(req, res, gctx, lctx):
            return await gctx.modules["greet@" + req.query["v"]].hello({})
    """,
}


def project(make_project, handlers=HANDLERS, specs=(("1.0.0", False), ("1.2.0", False), ("1.3.0", False), ("2.0.0", False))):
    root = make_project(handlers)
    for version, traps in specs:
        greet(root / "modules" / f"greet-{version}", version, ping_traps=traps)
    return root


async def start(root):
    """Build and start the app, closing what was opened when start-up fails (it should)."""
    client = TestClient(TestServer(build_app(root), host="127.0.0.1"))
    try:
        await client.start_server()
    finally:
        await client.close()


async def message(client, path):
    r = await client.get(path)
    body = await r.json()
    return r.status, body.get("message", body).removeprefix("hello from ") if r.status == 200 else body


async def test_a_handler_reaches_the_version_its_modules_declaration_pins(make_project, serve):
    client = await serve(project(make_project))
    assert await message(client, "/pinned") == (200, "1.3.0")
    assert await message(client, "/listed") == (200, "1.2.0")
    assert await message(client, "/free") == (200, "2.0.0")  # the last registered
    assert await message(client, "/exact?v=1.0.0") == (200, "1.0.0")
    assert await message(client, "/exact?v=1") == (200, "1.3.0")
    status, body = await message(client, "/exact?v=^7")
    assert status == 500 and body["error"]["code"] == "version_not_found"
    assert "1.3.0" not in body["error"]["message"]  # which versions exist is the operator's to know


async def test_a_pin_nothing_satisfies_stops_start_up_naming_the_versions(make_project, serve):
    root = project(make_project, {"p.py": 'MODULES = {"greet": "^3"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n'})
    with pytest.raises(PinError) as err:
        await start(root)
    assert "MODULES pins greet to '^3'" in str(err.value) and "1.0.0, 1.2.0, 1.3.0, 2.0.0" in str(err.value)
    assert 'e.g. "^2"' in err.value.fix


async def test_a_pin_that_is_not_a_constraint_is_refused_with_the_file(make_project, serve):
    root = project(make_project, {"p.py": 'MODULES = {"greet": "one"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n'})
    with pytest.raises(RouteError) as err:
        await start(root)
    assert "p.py" in str(err.value) and "'one' is not a version constraint" in str(err.value)


async def test_a_version_out_of_service_is_passed_over_refused_when_pinned_and_on_readyz(make_project, serve):
    client = await serve(project(make_project, specs=(("1.2.0", False), ("1.3.0", True), ("2.0.0", False))))
    assert await message(client, "/pinned") == (200, "1.3.0")  # started, so checked: its ping traps
    async with asyncio.timeout(WAIT_S):
        while not (await (await client.get("/readyz")).json())["versions"]:
            await asyncio.sleep(0.05)
    r = await client.get("/readyz")
    body = await r.json()
    assert set(body["versions"]) == {"greet@1.3.0"} and body["versions"]["greet@1.3.0"]["status"] == "down"
    assert r.status == 200  # the active version, 2.0.0, serves
    assert await message(client, "/pinned") == (200, "1.2.0")
    status, body = await message(client, "/exact?v=1.3.0")
    assert status == 503 and body["error"]["code"] == "version_unhealthy"
    assert "greet@1.3.0 is out of service" in body["error"]["message"]


async def test_the_active_version_out_of_service_makes_readyz_503(make_project, serve):
    client = await serve(project(make_project, {"free.py": HANDLERS["free.py"]}, specs=(("1.0.0", False), ("2.0.0", True))))
    assert await message(client, "/free") == (200, "2.0.0")
    async with asyncio.timeout(WAIT_S):
        while (r := await client.get("/readyz")).status != 503:
            await asyncio.sleep(0.05)
    body = await r.json()
    assert body["modules"]["greet"] == "down" and "greet@2.0.0" in body["versions"]


async def test_a_reload_with_a_pin_nothing_satisfies_keeps_the_old_routes(make_project, serve):
    root = project(make_project, {"pinned.py": HANDLERS["pinned.py"]})
    client = await serve(root)
    (root / "handlers" / "pinned.py").write_text(textwrap.dedent(HANDLERS["pinned.py"]).replace("^1.2", "^5"))
    with pytest.raises(PinError, match=r"MODULES pins greet to '\^5'"):
        reload_handlers(client.server.app)
    assert await message(client, "/pinned") == (200, "1.3.0")  # still served as before
