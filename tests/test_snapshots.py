"""Replayable snapshots ([audit] snapshots): what a request stores, what it never stores, how much is kept."""

import asyncio
import sqlite3
import string

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runtime.http.app import build_app
from runtime.http.appstate import RUNTIME
from runtime.http.redact import REDACTED
from runtime.http.snapshot_store import SnapshotStore
from playground_support import write_project

SNAPSHOTS = """
[audit]
snapshots = true
snapshot_body_bytes = {body}
snapshot_keep = {keep}
redact_headers = ["X-Session"]
"""


def project(tmp_path, body=65536, keep=1000):
    return write_project(tmp_path / "app", SNAPSHOTS.format(body=body, keep=keep))


async def test_a_snapshot_holds_what_a_replay_needs(tmp_path, gati_home, serve):
    client = await serve(project(tmp_path))
    r = await client.post("/visit?user=ada&x=1", json={"name": "bob"}, headers={"Authorization": "Bearer t0ps3cr3t", "X-Trace-Me": "yes"})
    assert r.status == 401  # a bearer token the app does not know: refused, still recorded (the route was reached)
    r = await client.post("/visit?user=ada&x=1", json={"name": "bob"}, headers={"X-Session": "s3ss10n", "X-Trace-Me": "yes"})
    assert r.status == 200, await r.text()
    rid = r.headers["X-Request-Id"]

    snap = client.server.app[RUNTIME].recorder.store.get(rid)
    assert (snap["method"], snap["path"], snap["query"]) == ("POST", "/visit", "user=ada&x=1")
    headers = {k.lower(): v for k, v in snap["headers"]}
    assert headers["x-session"] == REDACTED and headers["x-trace-me"] == "yes"
    assert snap["body"] == '{"name": "bob"}' and snap["body_size"] == 15 and not snap["body_truncated"]
    assert (snap["route"], snap["version"], snap["status"]) == ("/visit", "1", 200)
    assert snap["lctx"]["state"] == {"user": "ada", "after": True}
    kinds = [e["type"] for e in snap["lctx"]["events"]]
    assert kinds[:2] == ["hook:start", "hook:end"] and "handler:end" in kinds
    calls = [(c["module"], c["method"], c["payload"], c["answered"]) for c in snap["calls"]]
    assert calls == [("greet", "count", None, "module"), ("greet", "hello", {"name": "bob"}, "module")]
    assert snap["calls"][1]["answer"] == {"message": "hello, bob"} and snap["calls"][0]["duration_ms"] > 0
    assert '"visits":1' in snap["answer"]["body"] and snap["answer"]["status"] == 200
    refused = client.server.app[RUNTIME].recorder.store.recent()[1]
    assert refused["status"] == 401
    assert "t0ps3cr3t" not in (gati_home / "snapshots.db").read_bytes().decode("latin-1")


async def test_a_body_past_the_bound_is_cut_and_says_so(tmp_path, gati_home, serve):
    client = await serve(project(tmp_path, body=8))
    r = await client.post("/visit", json={"name": "a-long-name"})
    snap = client.server.app[RUNTIME].recorder.store.get(r.headers["X-Request-Id"])
    assert snap["body"] == '{"name":' and snap["body_truncated"] and snap["body_size"] == 23


async def test_retention_keeps_the_newest(tmp_path, gati_home, serve):
    client = await serve(project(tmp_path, keep=3))
    ids = []
    for _ in range(5):
        r = await client.get("/visit")
        ids.append(r.headers["X-Request-Id"])
    store = client.server.app[RUNTIME].recorder.store
    assert [s["id"] for s in store.recent()] == ids[:1:-1]
    assert store.get(ids[0]) is None


def test_retention_by_bytes(tmp_path):
    store = SnapshotStore(tmp_path / "s.db", keep=1000, max_bytes=5000)
    for i in range(20):
        store.add({"id": str(i), "time": i, "method": "GET", "path": "/", "route": "/", "version": "", "status": 200,
                   "duration_ms": 1.0, "replay_of": None, "pad": "x" * 900})
    count, size = store.stats()
    # 1029 bytes each: the newest four fit in 5000
    assert (count, size) == (4, 4116) and store.get("16") is not None and store.get("15") is None
    store.close()


async def test_snapshots_off_store_nothing(tmp_path, gati_home, serve):
    client = await serve(write_project(tmp_path / "app"))
    assert (await client.get("/visit")).status == 200
    assert client.server.app[RUNTIME].recorder is None
    assert not (gati_home / "snapshots.db").exists()


# The property: whatever the case and however often repeated, a redacted header's value is never stored.

REDACTED_NAMES = ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Session"]
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "-._~+/=!#$%&*", min_size=10, max_size=40).map(lambda s: "Zq" + s)


def any_case(name: str):
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(lambda up: "".join(c.upper() if u else c.lower() for c, u in zip(name, up)))


HEADERS = st.lists(st.tuples(st.sampled_from(REDACTED_NAMES).flatmap(any_case), SECRET), min_size=1, max_size=6)
OTHERS = st.lists(st.tuples(st.sampled_from(["X-Other", "Accept-Language", "X-Forwarded-For"]), st.text(string.ascii_letters, min_size=1, max_size=12)), max_size=3)


async def send(port: int, headers: list[tuple[str, str]]) -> tuple[int, str]:
    """The request as written, byte for byte (an HTTP client would merge or re-case headers): status and request id."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["GET /visit HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{n}: {v}" for n, v in headers), "Connection: close", "", ""]
    writer.write("\r\n".join(lines).encode())
    answer = await reader.read()
    writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    found = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), found.get("X-Request-Id", "")


def test_a_redacted_header_value_never_reaches_the_store(tmp_path, gati_home):
    root = project(tmp_path)

    async def start():
        client = TestClient(TestServer(build_app(root), host="127.0.0.1"))
        await client.start_server()
        return client

    with asyncio.Runner() as runner:
        client = runner.run(start())
        store = client.server.app[RUNTIME].recorder.store

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(secrets=HEADERS, others=OTHERS)
        def check(secrets, others):
            for _, value in others:
                assume(not any(value in s or s in value for _, s in secrets))
            status, rid = runner.run(send(client.port, list(secrets) + list(others)))
            stored = store.get(rid)
            if stored is None:
                assert status == 400  # two Authorization headers: refused at ingress, before any route, never stored
                return
            with sqlite3.connect(store.path) as db:
                (blob,) = db.execute("SELECT data FROM snapshots WHERE id = ?", (rid,)).fetchone()
            text = bytes(blob).decode()
            for _, secret in secrets:
                assert secret not in text
            kept = [v for n, v in stored["headers"] if n.lower() in {x.lower() for x in REDACTED_NAMES}]
            assert kept == [REDACTED] * len(secrets)  # every occurrence, in any case, is there and redacted

        try:
            check()
        finally:
            runner.run(client.close())
