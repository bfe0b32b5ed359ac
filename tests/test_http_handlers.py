"""The handler API over real HTTP: req and res, return values, sync handlers, errors and timeouts."""

import asyncio


async def test_request_and_response_api(make_project, serve):
    root = make_project(
        {
            "echo/[name].py": """
                METHODS = ["POST"]

                async def handler(req, res, gctx, lctx):
                    body = await req.json()
                    res.status(201).header("X-Name", req.params["name"]).json({
                        "method": req.method,
                        "path": req.path,
                        "params": req.params,
                        "query": req.query.getall("tag"),
                        "header": req.headers["X-Custom"],
                        "body": body,
                        "text": await req.text(),
                    })
            """,
            "text.py": """
                async def handler(req, res, gctx, lctx):
                    res.text("plain words").header("Cache-Control", "no-store")
            """,
            "returned.py": """
                async def handler(req, res, gctx, lctx):
                    res.status(202)
                    return {"returned": [1, 2, 3]}
            """,
            "ignored.py": """
                async def handler(req, res, gctx, lctx):
                    res.text("body wins")
                    return {"not": "used"}
            """,
            "empty.py": """
                async def handler(req, res, gctx, lctx):
                    res.status(204)
            """,
        }
    )
    client = await serve(root)

    r = await client.post("/echo/ann?tag=a&tag=b", json={"x": 1}, headers={"X-Custom": "yes"})
    assert r.status == 201
    assert r.headers["X-Name"] == "ann"
    assert r.headers["Content-Type"] == "application/json"
    assert await r.json() == {
        "method": "POST",
        "path": "/echo/ann",
        "params": {"name": "ann"},
        "query": ["a", "b"],
        "header": "yes",
        "body": {"x": 1},
        "text": '{"x": 1}',
    }

    r = await client.get("/text")
    assert (r.status, await r.text(), r.headers["Cache-Control"]) == (200, "plain words", "no-store")
    assert r.headers["Content-Type"].startswith("text/plain")

    r = await client.get("/returned")
    assert (r.status, await r.json()) == (202, {"returned": [1, 2, 3]})

    r = await client.get("/ignored")
    assert await r.text() == "body wins"

    r = await client.get("/empty")
    assert (r.status, await r.read()) == (204, b"")


async def test_bad_json_body_is_a_400(make_project, serve):
    root = make_project({"index.py": 'METHODS = ["POST"]\nasync def handler(req, res, gctx, lctx):\n    return await req.json()\n'})
    client = await serve(root)
    for body in (b"", b"{not json"):
        r = await client.post("/", data=body)
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "bad_request"


async def test_sync_handler_runs_in_a_thread(make_project, serve):
    root = make_project(
        {
            "index.py": """
                import threading, time

                def handler(req, res, gctx, lctx):
                    time.sleep(0.05)  # blocking is allowed: this runs in a worker thread
                    return {"thread": threading.current_thread().name, "id": lctx.request_id}
            """
        }
    )
    client = await serve(root)
    r = await client.get("/")
    body = await r.json()
    assert r.status == 200
    assert body["thread"] != "MainThread"
    assert body["id"] == r.headers["X-Request-Id"]


async def test_uncaught_errors_become_structured_json(make_project, serve, caplog):
    root = make_project(
        {
            "denied.py": """
                from runtime.core.errors import CapabilityDenied

                async def handler(req, res, gctx, lctx):
                    raise CapabilityDenied("thumbs", "egress", "https://evil.example:443", 'egress = ["https://evil.example:443"]')
            """,
            "boom.py": """
                async def handler(req, res, gctx, lctx):
                    raise RuntimeError("secret internals")
            """,
            "unencodable.py": """
                async def handler(req, res, gctx, lctx):
                    return {"x": object()}
            """,
        }
    )
    client = await serve(root)

    r = await client.get("/denied")
    assert r.status == 403
    error = (await r.json())["error"]
    assert error["code"] == "capability_denied"
    assert error["capability"] == "egress"
    assert error["target"] == "https://evil.example:443"
    assert "thumbs's module.toml" in error["fix"]
    assert error["request_id"] == r.headers["X-Request-Id"]

    r = await client.get("/boom")
    assert r.status == 500
    error = (await r.json())["error"]
    assert error["code"] == "internal"
    assert error["request_id"] in error["message"]
    assert "secret internals" not in error["message"]  # details go to the log, not the client
    assert "secret internals" in caplog.text

    r = await client.get("/unencodable")
    assert r.status == 500
    assert (await r.json())["error"]["code"] == "internal"


async def test_handler_timeout_is_504_and_cleanup_still_runs(make_project, serve, tmp_path):
    marker = tmp_path / "cleaned"
    root = make_project(
        {
            "slow.py": f"""
                import asyncio, pathlib
                TIMEOUT_MS = 100

                async def handler(req, res, gctx, lctx):
                    lctx.on_cleanup(lambda: pathlib.Path({str(marker)!r}).write_text(lctx.phase))
                    await asyncio.sleep(30)
            """,
            "default.py": """
                import asyncio

                async def handler(req, res, gctx, lctx):
                    await asyncio.sleep(30)
            """,
        },
        toml="[server]\nhandler_timeout_ms = 150\n",
    )
    client = await serve(root)

    r = await client.get("/slow")
    assert r.status == 504
    error = (await r.json())["error"]
    assert error["code"] == "handler_timeout"
    assert error["timeout_ms"] == 100
    assert "TIMEOUT_MS" in error["fix"]
    assert marker.read_text() == "cleanup"

    r = await client.get("/default")  # gati.toml's handler_timeout_ms when the file sets none
    assert r.status == 504
    assert (await r.json())["error"]["timeout_ms"] == 150


async def test_one_failing_request_never_disturbs_another(make_project, serve):
    root = make_project(
        {
            "work/[n].py": """
                import asyncio

                async def handler(req, res, gctx, lctx):
                    n = int(req.params["n"])
                    lctx.set("n", n)
                    await asyncio.sleep(0.01 * (n % 5))
                    if n % 3 == 0:
                        raise ValueError(f"request {n} fails")
                    if n % 3 == 1:
                        await asyncio.sleep(10)  # times out
                    return {"n": lctx.get("n"), "id": lctx.request_id}
            """
        },
        toml="[server]\nhandler_timeout_ms = 300\n",
    )
    client = await serve(root)

    async def one(n):
        r = await client.get(f"/work/{n}")
        return n, r.status, await r.json(), r.headers["X-Request-Id"]

    results = await asyncio.gather(*(one(n) for n in range(30)))
    ids = set()
    for n, status, body, request_id in results:
        ids.add(request_id)
        if n % 3 == 0:
            assert (status, body["error"]["code"]) == (500, "internal")
        elif n % 3 == 1:
            assert (status, body["error"]["code"]) == (504, "handler_timeout")
        else:
            assert (status, body) == (200, {"n": n, "id": request_id})
    assert len(ids) == 30
    # and the server is still fine afterwards
    r = await client.get("/work/2")
    assert r.status == 200
