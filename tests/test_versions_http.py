"""End to end over HTTP (docs/versions.md's worked example, examples/versions): three versions of
/users/{id} live at once; version-1 clients transformed through version 2, newer clients direct."""

from pathlib import Path

from runtime.http.appstate import RUNTIME
from runtime.http.executions import read_records

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "versions"
V1 = {"first": "Ada", "last": "Lovelace"}
V2 = {"name": {"first": "Ada", "last": "Lovelace"}}
V3 = {**V2, "email": "ada@example.org"}


async def put(client, body, **kw):
    r = await client.put("/users/7", json=body, **kw)
    return r.status, r.headers.get("Gati-Version"), await r.json(), r.headers["X-Request-Id"]


async def test_versions_live_side_by_side(serve, gati_home):
    client = await serve(EXAMPLE)

    # No version asked: the default. 1 -> 2 breaks but has a transformer, 2 -> 3 breaks without one: 2.
    status, version, body, _ = await put(client, V2)
    assert (status, version, body) == (200, "2", {"id": "7", **V2})

    # A version-1 client: its body goes up to version 2, the answer comes back down.
    status, version, body, v1_id = await put(client, V1, headers={"Gati-Version": "1"})
    assert (status, version, body) == (200, "1", {"id": "7", **V1})

    # Version 3 by name, by Accept-Version, by the query parameter
    assert (await put(client, V3, headers={"Gati-Version": "3"}))[:3] == (200, "3", {"id": "7", **V3})
    assert (await put(client, V3, headers={"Accept-Version": "3"}))[:2] == (200, "3")
    r = await client.put("/users/7?version=1", json=V1)
    assert (r.status, r.headers["Gati-Version"], await r.json()) == (200, "1", {"id": "7", **V1})
    # the header wins over the query
    assert (await put(client, V3, headers={"Gati-Version": "3"}, params={"version": "1"}))[:2] == (200, "3")

    # Date pins: the newest version live that day
    for day, want, send in [("2026-06-30", "1", V1), ("2026-11-01", "2", V2), ("2027-12-31", "3", V3)]:
        status, version, body, _ = await put(client, send, headers={"Gati-Version": day})
        assert (status, version) == (200, want), body

    # Version 1's own type is checked before the body goes up
    status, _, body, _ = await put(client, V2, headers={"Gati-Version": "1"})
    assert status == 400 and body["error"]["code"] == "invalid_request"

    # No such version, or a date before any: 400 naming what exists
    for asked in ("9", "2025-01-01", "latest"):
        status, _, body, _ = await put(client, V2, headers={"Gati-Version": asked})
        assert status == 400, body
        assert body["error"]["code"] == "unknown_version"
        assert body["error"]["versions"] == ["1", "2", "3"]
        assert "1 (since 2026-01-01), 2 (since 2026-11-01), 3 (since 2027-03-01)" in body["error"]["fix"]

    # The execution record names the version asked, the one that ran and the manifest's fingerprint.
    client.app[RUNTIME].executions.flush()  # records are written in batches
    records = {r["request_id"]: r for r in read_records(gati_home / "executions.jsonl")}
    rec = records[v1_id]
    assert (rec["version"], rec["served_by"], rec["handler"]) == ("1", "2", "users/[id]@2.py")
    assert len(rec["fingerprint"]) == 64


async def test_version_in_lctx_and_span(make_project, serve, gati_home):
    root = make_project(
        {
            "v.py": """
                async def handler(req, res, gctx, lctx):
                    return {"version": lctx.version, "meta": lctx.meta["version"]}
            """,
            "v@2.py": """
                async def handler(req, res, gctx, lctx):
                    return {"version": lctx.version, "meta": lctx.meta["version"], "two": True}
            """,
        }
    )
    client = await serve(root)
    # no types: 1 -> 2 is not breaking, so 2 is the default
    r = await client.get("/v")
    assert (r.headers["Gati-Version"], await r.json()) == ("2", {"version": "2", "meta": "2", "two": True})
    r = await client.get("/v", headers={"Gati-Version": "1"})
    assert (r.headers["Gati-Version"], await r.json()) == ("1", {"version": "1", "meta": "1"})
    client.app[RUNTIME].executions.flush()
    [rec] = [x for x in read_records(gati_home / "executions.jsonl") if x["request_id"] == r.headers["X-Request-Id"]]
    assert rec["version"] == "1" and "served_by" not in rec and rec["handler"] == "v.py"


async def test_a_method_dropped_is_breaking(make_project, serve):
    root = make_project(
        {
            "w.py": 'METHODS = ["GET", "POST"]\nasync def handler(req, res, gctx, lctx):\n    return {"v": 1}\n',
            "w@2.py": 'async def handler(req, res, gctx, lctx):\n    return {"v": 2}\n',
        }
    )
    client = await serve(root)
    # version 2 serves no POST: breaking, so version 1 stays the default
    r = await client.post("/w")
    assert (r.status, await r.json()) == (200, {"v": 1})
    r = await client.get("/w", headers={"Gati-Version": "2"})
    assert (r.status, await r.json()) == (200, {"v": 2})
    r = await client.post("/w", headers={"Gati-Version": "2"})
    assert r.status == 405 and r.headers["Allow"] == "GET"
    assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_a_rollout_serves_a_share_of_clients_sticky(make_project, serve):
    root = make_project(
        {
            "r.py": 'async def handler(req, res, gctx, lctx):\n    return {"v": 1}\n',
            "r@2.py": 'ROLLOUT = 50\nasync def handler(req, res, gctx, lctx):\n    return {"v": 2}\n',
        }
    )
    client = await serve(root)

    async def version(key, **headers):
        r = await client.get("/r", headers={"X-Forwarded-For": f"10.0.0.{key}", **headers})
        assert r.status == 200
        return r.headers["Gati-Version"], (await r.json())["v"]

    first = {key: await version(key) for key in map(str, range(40))}
    assert {v for v, _ in first.values()} == {"1", "2"}  # some clients get the new default, some the old
    for key, seen in first.items():
        assert await version(key) == seen  # sticky
        assert await version(key, **{"Gati-Version": "1"}) == ("1", 1)  # asking by name wins
