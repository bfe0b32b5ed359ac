"""The project's own tests: `gati test` runs them with gati's testing kit (runtime.testing)."""


async def test_index_greets_by_name(gati_client):
    resp = await gati_client.get("/", params={"name": "ada"})
    assert resp.status == 200
    assert await resp.json() == {"message": "hello, ada"}
