"""The project's own tests: `gati test` runs them with gati's testing kit (runtime.testing)."""

from runtime.http.response import Response
from runtime.testing import fake_gctx, fake_lctx, fake_request, faults, load_handler, simulate


async def test_index_calls_the_hello_module(gati_client):
    # The real app, in-process: routing, lifecycle, and the WAT module in its sandbox.
    resp = await gati_client.get("/", params={"name": "ada"})
    assert resp.status == 200
    body = await resp.json()
    assert body["module"] == {"greeting": "hello from WebAssembly", "you_sent": {"name": "ada"}}


async def test_hello_passes_the_name_and_body_to_the_module(gati_app, gati_simulate):
    # A simulated module: declared from modules/hello/module.toml, answering from a function.
    hello = gati_simulate("hello", hello=lambda payload: {"echo": payload})
    client = await gati_app(modules=[hello])
    resp = await client.post("/hello/ada", json={"mood": "fine"})
    assert resp.status == 200
    assert await resp.json() == {"echo": {"name": "ada", "body": {"mood": "fine"}}}
    assert [c.payload for c in hello.calls] == [{"name": "ada", "body": {"mood": "fine"}}]


async def test_a_crashed_module_gives_a_502(gati_app):
    client = await gati_app(faults=[faults.crash("hello")])
    resp = await client.get("/")
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "module_crashed"


async def test_the_index_handler_alone(gati_project):
    # A unit test of the handler function: fake contexts, a simulated module, no server.
    handler = load_handler(gati_project / "handlers" / "index.py")
    hello = simulate(gati_project / "modules" / "hello", hello={"greeting": "hi"})
    gctx = fake_gctx(config={"greeting": "hey"}, modules=[hello])
    lctx = fake_lctx("req-1")
    reply = await handler(fake_request(query={"name": "ada"}), Response(), gctx, lctx)
    assert reply == {"greeting": "hey", "module": {"greeting": "hi"}, "request_id": "req-1"}
