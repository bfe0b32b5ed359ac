"""End to end over HTTP (docs/versions.md, phase 2): health checks take a version out of routing and
put it back; drained and retired versions answer 410; restore serves them again; Deprecation,
Sunset and Link headers; the manifest store and /_gati/versions. Waits are bounded loops on what
the server answers, never on time."""

import asyncio
import time

from typer.testing import CliRunner

from runtime.cli.main import app as cli
from runtime.http.appstate import RUNTIME
from runtime.http.versions.store import VersionStore

WAIT_S = 20


async def until(check, what):
    """Poll check() (async) until it is truthy; fail naming what did not happen within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


HEALTHY_V2 = {
    "v.py": """
        async def handler(req, res, gctx, lctx):
            return {"v": 1}
    """,
    "v@2.py": """
        import os

        HEALTH = {"interval_s": 0.02, "timeout_ms": 500, "failures": 2, "passes": 1}

        async def health(gctx):
            if os.path.exists(gctx.config["down_flag"]):
                raise RuntimeError("the flag file says down")

        async def handler(req, res, gctx, lctx):
            return {"v": 2}
    """,
}


async def test_failing_version_leaves_routing_and_comes_back(make_project, serve, tmp_path):
    flag = tmp_path / "down"
    root = make_project(HEALTHY_V2, toml=f'[config]\ndown_flag = "{flag}"\n')
    client = await serve(root)

    async def unpinned():
        r = await client.get("/v")
        return r.headers["Gati-Version"], await r.json()

    assert await unpinned() == ("2", {"v": 2})

    flag.write_text("")  # version 2's checks now fail: after 2 in a row it is out of routing

    async def fell_back():
        return await unpinned() == ("1", {"v": 1})

    await until(fell_back, "requests asking for nothing go to version 1")
    r = await client.get("/v", headers={"Gati-Version": "2"})
    body = await r.json()
    assert r.status == 503, body
    assert body["error"]["code"] == "version_unavailable"
    assert body["error"]["version"] == "2" and body["error"]["healthy"] == ["1"]
    assert "flag file says down" in body["error"]["message"]
    assert "Gati-Version: one of 1" in body["error"]["fix"]
    ready = await (await client.get("/readyz")).json()
    assert ready["versions"]["/v@2"]["status"] == "down"
    assert "flag file says down" in ready["versions"]["/v@2"]["reason"]

    flag.unlink()  # one passing check puts it back

    async def back():
        return await unpinned() == ("2", {"v": 2})

    await until(back, "version 2 back in routing")
    assert "/v@2" not in (await (await client.get("/readyz")).json())["versions"]


async def test_every_version_unhealthy_is_503(make_project, serve, tmp_path):
    flag = tmp_path / "down"
    flag.write_text("")
    root = make_project(
        {"v.py": HEALTHY_V2["v@2.py"].replace('{"v": 2}', '{"v": 1}').replace('HEALTH', 'VERSION = "1"\n        HEALTH'), "v@2.py": HEALTHY_V2["v@2.py"]},
        toml=f'[config]\ndown_flag = "{flag}"\n',
    )
    client = await serve(root)

    async def down():
        r = await client.get("/v")
        return r.status == 503 and (await r.json())["error"]["healthy"] == []

    await until(down, "503 when no version is in service")


DEPRECATED_V1 = {
    "v.py": """
        DEPRECATED = "2026-12-01"
        SUNSET = "2027-03-01"

        async def handler(req, res, gctx, lctx):
            return {"v": 1}
    """,
    "v@2.py": """
        async def handler(req, res, gctx, lctx):
            return {"v": 2}
    """,
}


async def test_deprecation_headers(make_project, serve):
    client = await serve(make_project(DEPRECATED_V1))
    r = await client.get("/v", headers={"Gati-Version": "1"})
    assert r.status == 200
    assert r.headers["Deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z, RFC 9745
    assert r.headers["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"  # RFC 8594, an HTTP-date
    assert r.headers["Link"] == '<?version=2>; rel="successor-version"'
    r = await client.get("/v")  # version 2 declares neither
    assert r.headers["Gati-Version"] == "2" and "Deprecation" not in r.headers and "Sunset" not in r.headers


async def test_drained_version_retired_then_restored(make_project, serve, gati_home):
    root = make_project(DEPRECATED_V1, toml='[versions]\ndrain_after = "1d"\ncheck_interval_s = 0.02\n')
    client = await serve(root)
    assert (await client.get("/v", headers={"Gati-Version": "1"})).status == 200
    store = VersionStore.in_state_dir(gati_home)
    try:
        async def recorded():
            row = store.versions().get(("/v", "1"))
            return row is not None and row.last_served is not None

        await until(recorded, "the store records that version 1 was served")
        # The store is what the server decides from: version 1 last asked for two days ago.
        store.set_last_served("/v", "1", time.time() - 2 * 86400)

        # watched through the store first: asking for version 1 before it is drained would count as a client asking for it
        await until(lambda: _state(store, "drained"), "version 1 drained")

        async def refused():
            # the server applies the store's state on its own event loop, just after the store holds it
            r = await client.get("/v", headers={"Gati-Version": "1"})
            return r if r.status != 200 else None

        r = await until(refused, "version 1 drained: no longer served")
        body = await r.json()
        assert r.status == 410, body
        assert body["error"]["code"] == "version_retired" and body["error"]["current"] == "2"
        assert "drained: no client asked for it since" in body["error"]["message"]
        assert "send Gati-Version: 2" in body["error"]["fix"]
        # the default is never drained, and requests asking for nothing still get it
        r = await client.get("/v")
        assert (r.status, r.headers["Gati-Version"]) == (200, "2")

        # restored by hand: served again (its drain clock starts again)
        result = CliRunner().invoke(cli, ["versions", "restore", "/v@1", "--project", str(root)])
        assert result.exit_code == 0, result.output

        async def served_again():
            return (await client.get("/v", headers={"Gati-Version": "1"})).status == 200

        await until(served_again, "version 1 restored")

        # retired by hand
        result = CliRunner().invoke(cli, ["versions", "retire", "/v@1", "--reason", "moved to v2", "--project", str(root)])
        assert result.exit_code == 0, result.output
        async def gone():
            r = await client.get("/v", headers={"Gati-Version": "1"})
            return r if r.status == 410 else None

        r = await until(gone, "version 1 retired by hand: 410")
        assert store.versions()[("/v", "1")].state == "retired"
        assert "moved to v2" in (await r.json())["error"]["message"]
    finally:
        store.close()


async def _state(store, state):
    return store.versions()[("/v", "1")].state == state


async def test_store_holds_manifests_graphs_and_view(make_project, serve, gati_home):
    root = make_project(DEPRECATED_V1)
    client = await serve(root)
    rt = client.app[RUNTIME]
    store = VersionStore.in_state_dir(gati_home)
    try:
        graph = store.graph("/v")
        assert graph["default"] == "2" and [v["version"] for v in graph["versions"]] == ["1", "2"]
        assert graph["steps"] == [{"version": "2", "breaking": False, "reasons": [], "transformed": False, "transformer": None}]
        fp = graph["versions"][0]["fingerprint"]
        assert fp == rt.plans[id(rt.router.routes[0].versions.serve["1"])].fingerprint
        manifest = store.manifest(fp)
        assert manifest["file"] == "v.py" and manifest["version"] == "1"
    finally:
        store.close()
    view = await (await client.get("/_gati/versions")).json()
    (route,) = view["routes"]
    assert route["route"] == "/v" and [(v["version"], v["state"], v["deprecated"]) for v in route["versions"]] == [("1", "live", "2026-12-01"), ("2", "live", None)]


async def test_reload_writes_the_store(make_project, serve, gati_home):
    from runtime.http.app import reload_handlers

    root = make_project(DEPRECATED_V1)
    client = await serve(root)
    (root / "handlers" / "v@3.py").write_text("async def handler(req, res, gctx, lctx):\n    return {'v': 3}\n")
    reload_handlers(client.app)  # what `gati dev` does when a handler file changes
    store = VersionStore.in_state_dir(gati_home)
    try:
        assert [v["version"] for v in store.graph("/v")["versions"]] == ["1", "2", "3"]
        assert ("/v", "3") in store.versions()
    finally:
        store.close()
    r = await client.get("/v")
    assert (r.headers["Gati-Version"], await r.json()) == ("3", {"v": 3})


async def test_single_file_route_health_is_reported(make_project, serve, tmp_path):
    flag = tmp_path / "down"
    flag.write_text("")
    root = make_project({"s.py": HEALTHY_V2["v@2.py"]}, toml=f'[config]\ndown_flag = "{flag}"\n')
    client = await serve(root)

    async def reported():
        return "/s@1" in (await (await client.get("/readyz")).json())["versions"]

    await until(reported, "/readyz lists /s@1 as down")
    assert (await client.get("/s")).status == 200  # no other version to send it to
