"""The sample app's own tests: `gati test --project examples/app` (after `make modules`)."""

from runtime.testing import faults


async def test_index_greets_through_the_wat_module(gati_client):
    resp = await gati_client.get("/", params={"name": "ada"})
    assert resp.status == 200
    assert (await resp.json())["greet"] == {"message": "hello, ada"}


async def test_visits_count_in_the_modules_kv_store(gati_client):
    first = await (await gati_client.post("/visits")).json()
    second = await (await gati_client.post("/visits")).json()
    assert second["visits"] == first["visits"] + 1


async def test_resize_through_the_c_module(gati_client):
    resp = await gati_client.get("/thumbs/resize", params={"width": "1920", "height": "1080", "max": "256"})
    assert resp.status == 200
    body = await resp.json()
    assert (body["width"], body["height"]) == (256, 144)


async def test_resize_refuses_a_bad_query_before_any_module_call(gati_client):
    resp = await gati_client.get("/thumbs/resize", params={"width": "wide"})
    assert resp.status == 400
    assert gati_client.modules.calls_to("thumbs") == []


async def test_resize_sends_the_configured_default_max(gati_app, gati_simulate):
    thumbs = gati_simulate("thumbs", resize=lambda p: {"width": 1, "height": 1, "scale": 0.5})
    client = await gati_app(modules=[thumbs])
    assert (await client.get("/thumbs/resize", params={"width": "10", "height": "20"})).status == 200
    assert thumbs.calls[0].payload == {"width": 10, "height": 20, "max": 256}


async def test_a_module_timeout_is_a_504_naming_the_request(gati_app):
    client = await gati_app(faults=[faults.timeout("thumbs", method="describe")])
    resp = await client.get("/thumbs/formats")
    assert resp.status == 504
    error = (await resp.json())["error"]
    assert error["code"] == "module_timeout" and error["request_id"] == resp.headers["X-Request-Id"]
