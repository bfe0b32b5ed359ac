"""lctx (request id, trace id, state, cleanup, phase) and gctx (read-only config, instance, modules)."""

import re

import pytest

from runtime.http.context import GlobalContext, LocalContext
from runtime.http.frozen import freeze

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_request_ids_are_unique_and_returned(make_project, serve):
    root = make_project({"index.py": "async def handler(req, res, gctx, lctx):\n    return {'id': lctx.request_id, 'client': lctx.meta['client_request_id']}\n"})
    client = await serve(root)

    ids = []
    for _ in range(20):
        r = await client.get("/")
        body = await r.json()
        assert r.headers["X-Request-Id"] == body["id"]
        assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
        ids.append(body["id"])
    assert len(set(ids)) == 20

    # by default a caller's id is not adopted (two callers could send the same one) but kept for correlation
    r = await client.get("/", headers={"X-Request-Id": "edge-7f3a:42"})
    body = await r.json()
    assert body["id"] == r.headers["X-Request-Id"] != "edge-7f3a:42"
    assert body["client"] == "edge-7f3a:42"

    r = await client.get("/missing")  # errors carry the id too
    assert r.headers["X-Request-Id"] == (await r.json())["error"]["request_id"]


async def test_request_id_from_a_trusted_proxy_is_honoured(make_project, serve):
    root = make_project(
        {"index.py": "async def handler(req, res, gctx, lctx):\n    return {'id': lctx.request_id}\n"},
        toml="[ingress]\ntrust_request_id = true\n",
    )
    client = await serve(root)
    r = await client.get("/", headers={"X-Request-Id": "edge-7f3a:42"})
    assert (await r.json())["id"] == r.headers["X-Request-Id"] == "edge-7f3a:42"

    # an id that could smuggle text into logs or headers is replaced, not echoed
    for bad in ("has space", "x" * 200, "semi;colon"):
        r = await client.get("/", headers={"X-Request-Id": bad})
        assert r.headers["X-Request-Id"] != bad
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])


async def test_traceparent_is_honoured_and_returned(make_project, serve):
    root = make_project({"index.py": "async def handler(req, res, gctx, lctx):\n    return {'trace': lctx.trace_id}\n"})
    client = await serve(root)

    r = await client.get("/", headers={"traceparent": TRACEPARENT})
    assert (await r.json())["trace"] == TRACE_ID
    version, trace, span, flags = r.headers["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE_ID, "01")
    assert span != "00f067aa0ba902b7" and re.fullmatch(r"[0-9a-f]{16}", span)  # our own span, child of theirs

    r = await client.get("/")
    fresh = (await r.json())["trace"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    assert r.headers["traceparent"].split("-")[1] == fresh


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # forbidden version
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # upper-case hex
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has exactly four fields
    ],
)
def test_invalid_traceparent_starts_a_new_trace(header):
    assert LocalContext(None, header).trace_id != TRACE_ID


def test_future_traceparent_versions_are_accepted():
    assert LocalContext(None, f"01-{TRACE_ID}-00f067aa0ba902b7-00-more").trace_id == TRACE_ID


async def test_lctx_state_cleanup_order_and_phases(make_project, serve, tmp_path):
    log = tmp_path / "log"
    root = make_project(
        {
            "index.py": f"""
                import asyncio

                LOG = {str(log)!r}

                def note(text):
                    with open(LOG, "a") as f:
                        f.write(text + "\\n")

                async def handler(req, res, gctx, lctx):
                    note("phase " + lctx.phase)
                    lctx.set("user", "ann")
                    lctx.set("gone", 1)
                    lctx.delete("gone")
                    lctx.on_cleanup(lambda: note("first registered"))

                    def broken():
                        raise RuntimeError("cleanup failure is logged, not raised")
                    lctx.on_cleanup(broken)

                    @lctx.on_cleanup
                    async def last():
                        await asyncio.sleep(0)
                        note("last registered, phase " + lctx.phase)

                    if req.query.get("fail"):
                        raise ValueError("handler failed")
                    return {{"user": lctx.get("user"), "gone": lctx.get("gone", "default")}}
            """
        }
    )
    client = await serve(root)

    r = await client.get("/")
    assert (r.status, await r.json()) == (200, {"user": "ann", "gone": "default"})
    assert log.read_text().splitlines() == ["phase handler", "last registered, phase cleanup", "first registered"]

    log.unlink()
    r = await client.get("/?fail=1")
    assert r.status == 500
    assert log.read_text().splitlines() == ["phase handler", "last registered, phase cleanup", "first registered"]


async def test_gctx_config_is_read_only_and_instance_is_set(make_project, serve):
    root = make_project(
        {
            "index.py": """
                import os

                def attempt(fn):
                    try:
                        fn()
                    except TypeError as exc:
                        return str(exc)
                    return "allowed!"

                async def handler(req, res, gctx, lctx):
                    cfg = gctx.config
                    return {
                        "config": cfg,
                        "set": attempt(lambda: cfg.__setitem__("greeting", "x")),
                        "nested": attempt(lambda: cfg["db"].__setitem__("pool", 99)),
                        "list": attempt(lambda: cfg["db"]["hosts"].append("c")),
                        "update": attempt(lambda: cfg.update(x=1)),
                        "gctx": attempt(lambda: setattr(gctx, "config", {})),
                        "pid": gctx.instance.pid == os.getpid(),
                        "instance": len(gctx.instance.id),
                    }
            """
        },
        toml="""
            [config]
            greeting = "hi"
            [config.db]
            pool = 4
            hosts = ["a", "b"]
        """,
    )
    client = await serve(root)
    body = await (await client.get("/")).json()
    assert body["config"] == {"greeting": "hi", "db": {"pool": 4, "hosts": ["a", "b"]}}
    for key in ("set", "nested", "list", "update"):
        assert "gctx.config is read-only" in body[key], key
    assert "gctx is read-only" in body["gctx"]
    assert body["pid"] is True and body["instance"] == 32


def test_freeze_leaves_the_source_alone():
    source = {"a": {"b": [1, {"c": 2}]}}
    frozen = freeze(source)
    assert frozen == {"a": {"b": (1, {"c": 2})}}
    with pytest.raises(TypeError):
        frozen["a"]["b"][1]["c"] = 3
    with pytest.raises(TypeError):
        del frozen["a"]
    source["a"]["b"].append(3)  # the copy does not follow later changes of the source
    assert len(frozen["a"]["b"]) == 2
    gctx = GlobalContext(source, modules=None)
    with pytest.raises(TypeError):
        gctx.modules = "other"


def test_ids_from_the_random_pool_are_fresh_across_refills_and_forks():
    """Ids come from random bits read 128 requests at a time: every id differs, past a refill too, and a
    forked child never hands out the ids its parent has in store (it starts with an empty store)."""
    import os

    from runtime.http import context

    many = [LocalContext() for _ in range(3 * context._IDS_AT_ONCE + 5)]
    ids = [x for lctx in many for x in (lctx.request_id, lctx.trace_id, lctx.span_id)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", lctx.request_id) and re.fullmatch(r"[0-9a-f]{16}", lctx.span_id) for lctx in many)

    LocalContext()  # the store now holds the next ids
    assert context._IDS
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first request id, to the parent
        try:
            os.write(write, LocalContext().request_id.encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child != LocalContext().request_id
