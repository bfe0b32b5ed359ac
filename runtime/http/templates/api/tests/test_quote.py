"""The project's own tests: `gati test` runs them with gati's testing kit (runtime.testing)."""


async def test_a_quote_adds_up_the_lines(gati_client):
    resp = await gati_client.post("/quote", json={"items": [{"sku": "tea", "qty": 2}, {"sku": "coffee", "qty": 1}]})
    assert resp.status == 200
    assert resp.headers["X-Api-Version"] == "1"
    body = await resp.json()
    assert (body["total"], body["currency"]) == (800, "EUR")


async def test_a_body_that_does_not_match_is_a_400_before_the_handler(gati_client):
    resp = await gati_client.post("/quote", json={"items": [{"sku": "tea", "qty": 0}]})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_an_unknown_sku_names_the_known_ones(gati_client):
    resp = await gati_client.post("/quote", json={"items": [{"sku": "milk", "qty": 1}]})
    assert resp.status == 400
    assert "coffee, tea" in (await resp.json())["error"]["fix"]
