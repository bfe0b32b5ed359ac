"""The lifecycle over real HTTP: hooks.py + route + local hooks, validation, timeouts, execution records,
request ids under concurrency, config immutability, health, metrics and spans."""

import asyncio
import hashlib
import json
import re
import textwrap

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime.http.app import TRACER, build_app
from runtime.http.appstate import RUNTIME
from runtime.http.context import GlobalContext
from runtime.http.executions import read_records
from runtime.http.metrics import Metrics

HOOKS_PY = """
def stamp(req, res, gctx, lctx):
    lctx.set("order", lctx.get("order", []) + ["global before"])
    lctx.before(lambda req, res, gctx, lctx: lctx.set("order", lctx.get("order") + ["local before"]))
    lctx.after(lambda req, res, gctx, lctx: res.header("X-Order", ",".join(lctx.get("order") + ["local after"])))

def tag(req, res, gctx, lctx):
    res.header("X-Global-After", "yes")

def shape(err, req, res, gctx, lctx):
    if isinstance(err, LookupError):
        res.status(404)
        return {"error": {"code": "gone", "message": str(err)}}

BEFORE = [stamp]
AFTER = [tag]
CATCH = [shape]
STARTUP = [lambda gctx: None]
"""


async def test_global_route_and_local_hooks_over_http(make_project, serve):
    root = make_project(
        {
            "orders/[id].py": """
                from typing import TypedDict
                from runtime.http.lifecycle import hook

                class Order(TypedDict):
                    id: str
                    order: list[str]

                async def route_before(req, res, gctx, lctx):
                    lctx.set("order", lctx.get("order") + ["route before"])

                VERSION = "3"
                BEFORE = [hook(route_before, timeout_ms=500)]
                RESPONSE = Order

                async def handler(req, res, gctx, lctx):
                    if req.params["id"] == "missing":
                        raise LookupError("no such order")
                    return {"id": req.params["id"], "order": lctx.get("order") + ["handler"]}
            """
        }
    )
    (root / "hooks.py").write_text(HOOKS_PY)
    client = await serve(root)

    r = await client.get("/orders/7")
    assert r.status == 200
    assert (await r.json())["order"] == ["global before", "route before", "local before", "handler"]
    assert r.headers["X-Order"] == "global before,route before,local before,local after"
    assert r.headers["X-Global-After"] == "yes"

    r = await client.get("/orders/missing")  # the global catch hook answers
    assert (r.status, (await r.json())["error"]["code"]) == (404, "gone")


async def test_request_and_response_validation(make_project, serve, caplog):
    root = make_project(
        {
            "users/index.py": """
                from typing import Annotated, NotRequired, TypedDict
                from annotated_types import Ge, MinLen
                from runtime.http.request import Request

                class NewUser(TypedDict):
                    name: Annotated[str, MinLen(1)]
                    age: NotRequired[Annotated[int, Ge(0)]]

                class User(TypedDict):
                    id: int
                    name: str

                METHODS = ["POST"]

                async def handler(req: Request[NewUser], res, gctx, lctx) -> User:
                    if req.data["name"] == "bug":
                        return {"id": "not a number", "name": "bug"}
                    res.status(201)
                    return {"id": 1, "name": req.data["name"]}
            """
        }
    )
    client = await serve(root)

    r = await client.post("/users", json={"name": "ann", "age": 3})
    assert (r.status, await r.json()) == (201, {"id": 1, "name": "ann"})

    r = await client.post("/users", json={"name": "", "age": -1, "extra": True})
    assert r.status == 400
    error = (await r.json())["error"]
    assert error["code"] == "invalid_request"
    assert error["errors"] == [
        {"path": "$.name", "expected": "string, length >= 1", "actual": ""},
        {"path": "$.age", "expected": "integer, >= 0", "actual": -1},
        {"path": "$.extra", "expected": "no such field (known: age, name)", "actual": True},
    ]

    r = await client.post("/users", data=b"[1, 2]")
    assert (r.status, (await r.json())["error"]["errors"][0]["path"]) == (400, "$")

    r = await client.post("/users", json={"name": "bug"})  # the handler broke its promise: 500, logged
    assert r.status == 500
    assert (await r.json())["error"]["code"] == "invalid_response"
    assert "$.id" in caplog.text


async def test_timeout_is_504_runs_cleanup_and_compensations_and_spares_others(make_project, serve, gati_home, tmp_path):
    log = tmp_path / "log"
    root = make_project(
        {
            "slow.py": f"""
                import asyncio
                TIMEOUT_MS = 150

                def note(text):
                    with open({str(log)!r}, "a") as f:
                        f.write(text + "\\n")

                async def handler(req, res, gctx, lctx):
                    lctx.compensate(lambda: note("compensated " + lctx.request_id), name="undo")
                    lctx.on_cleanup(lambda: note("cleaned " + lctx.request_id))
                    await asyncio.sleep(30)
            """,
            "fast/[n].py": """
                import asyncio
                async def handler(req, res, gctx, lctx):
                    await asyncio.sleep(0.01)
                    return {"n": req.params["n"]}
            """,
        }
    )
    client = await serve(root)

    slow, *fast = await asyncio.gather(client.get("/slow"), *(client.get(f"/fast/{n}") for n in range(20)))
    assert slow.status == 504
    assert (await slow.json())["error"]["code"] == "handler_timeout"
    for n, r in enumerate(fast):
        assert (r.status, await r.json()) == (200, {"n": str(n)})
    slow_id = slow.headers["X-Request-Id"]
    assert log.read_text().splitlines() == [f"compensated {slow_id}", f"cleaned {slow_id}"]

    client.app[RUNTIME].executions.flush()  # records are written in batches (within FLUSH_S)
    record = next(r for r in read_records(gati_home / "executions.jsonl") if r["request_id"] == slow_id)
    assert (record["status"], record["outcome"], record["handler"]) == (504, "error", "slow.py")
    assert [e["type"] for e in record["events"]] == ["handler:start", "timeout", "compensation:start", "compensation:end"]


async def test_execution_record_names_handler_version_hash_and_events(make_project, serve, gati_home):
    source = textwrap.dedent(
        """
        VERSION = "7"
        BEFORE = [lambda req, res, gctx, lctx: None]
        async def handler(req, res, gctx, lctx):
            return {"ok": True}
        """
    )
    root = make_project({"things/index.py": source})
    client = await serve(root)
    r = await client.get("/things")
    assert r.status == 200
    client.app[RUNTIME].executions.flush()
    [record] = [x for x in read_records(gati_home / "executions.jsonl") if x["request_id"] == r.headers["X-Request-Id"]]
    assert record["handler"] == "things/index.py" and record["version"] == "7" and record["route"] == "/things"
    assert record["handler_sha256"] == hashlib.sha256((root / "handlers/things/index.py").read_bytes()).hexdigest()
    assert record["status"] == 200 and record["outcome"] == "ok"
    assert [e["type"] for e in record["events"]] == ["hook:start", "hook:end", "handler:start", "handler:end"]
    assert all(e["request_id"] == record["request_id"] for e in record["events"])


# -- request ids under concurrency ---------------------------------------------------------------------------------


def _serve_and(project_dir, scenario):
    async def main():
        client = TestClient(TestServer(build_app(project_dir), host="127.0.0.1"))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.fixture
def id_project(make_project):
    return make_project({"index.py": "import asyncio\nasync def handler(req, res, gctx, lctx):\n    await asyncio.sleep(0)\n    return {'id': lctx.request_id}\n"})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 200), sent=st.lists(st.sampled_from(["", "same", "edge-1", "x" * 40]), min_size=1, max_size=5))
def test_request_ids_are_unique_over_many_concurrent_requests(id_project, n, sent):
    async def scenario(client):
        async def one(i):
            given_id = sent[i % len(sent)]
            r = await client.get("/", headers={"X-Request-Id": given_id} if given_id else {})
            body = await r.json()
            assert body["id"] == r.headers["X-Request-Id"]
            return body["id"]

        return await asyncio.gather(*(one(i) for i in range(n)))

    ids = _serve_and(id_project, scenario)
    assert len(set(ids)) == n  # even when callers send the same X-Request-Id


# -- config immutability -------------------------------------------------------------------------------------------------

TOML_VALUES = st.recursive(
    st.integers() | st.text(max_size=5) | st.booleans() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=4), inner, min_size=1, max_size=3),
    max_leaves=8,
)


def _paths(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


ATTEMPTS = {
    "setitem": lambda c, k: c.__setitem__(k, "x"),
    "delitem": lambda c, k: c.__delitem__(k),
    "update": lambda c, k: c.update({k: 1}) if hasattr(c, "keys") else c.extend([1]),
    "pop": lambda c, k: c.pop(k) if hasattr(c, "keys") else c.pop(),
    "clear": lambda c, k: c.clear(),
    "setattr": lambda c, k: setattr(c, "anything", 1),
    "append": lambda c, k: c.append(1) if not hasattr(c, "keys") else c.setdefault(k, 1),
}


@settings(max_examples=200)
@given(config=st.dictionaries(st.text(min_size=1, max_size=5), TOML_VALUES, min_size=1, max_size=4), data=st.data())
def test_config_cannot_be_changed_through_any_key(config, data):
    snapshot = json.dumps(config, sort_keys=True)
    gctx = GlobalContext(config, modules=None)
    containers = [(p, v) for p, v in _paths(config) if isinstance(v, (dict, list)) and v]
    path, value = data.draw(st.sampled_from(containers))
    target = gctx.config
    for k in path:
        target = target[k]
    key = next(iter(value)) if isinstance(value, dict) else 0
    attempt = data.draw(st.sampled_from(sorted(ATTEMPTS)))
    with pytest.raises((TypeError, AttributeError)):
        ATTEMPTS[attempt](target, key)
    with pytest.raises(TypeError):
        gctx.config = {}
    assert json.dumps(_thaw(gctx.config), sort_keys=True) == snapshot


def _thaw(v):
    if hasattr(v, "keys"):
        return {k: _thaw(v[k]) for k in v}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


# -- health, metrics, spans -------------------------------------------------------------------------------------------------


async def test_health_readiness_metrics_and_spans(make_project, serve):
    root = make_project(
        {
            "items/[id].py": """
                VERSION = "2"
                async def handler(req, res, gctx, lctx):
                    gctx.metrics.counter("items_viewed", 1, {"kind": "book"})
                    return {"id": req.params["id"]}
            """
        }
    )
    client = await serve(root)
    exporter = InMemorySpanExporter()
    client.server.app[TRACER].add_span_processor(SimpleSpanProcessor(exporter))

    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status == 200 and (await r.json())["status"] == "ready"

    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for i in range(3):
        r = await client.get(f"/items/{i}", headers={"traceparent": parent})
        assert r.status == 200
    await client.get("/nowhere")

    text = await (await client.get("/metrics")).text()
    assert re.search(r'http_server_request_duration_seconds_count\{http_request_method="GET",http_response_status_code="200",http_route="/items/\{id\}"[^}]*\} 3\.0', text)
    assert 'http_route="(unmatched)"' in text
    assert "http_server_request_duration_seconds_bucket" in text
    assert 'items_viewed_total{kind="book"' in text

    spans = [s for s in exporter.get_finished_spans() if s.name == "GET /items/{id}"]
    assert len(spans) == 3
    span = spans[0]
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes["gati.version"] == "2" and span.attributes["gati.handler"] == "items/[id].py"
    assert span.attributes["gati.request_id"] and span.attributes["http.response.status_code"] == 200
    assert r.headers["traceparent"].split("-")[2] == format(spans[-1].context.span_id, "016x")


async def test_system_paths_may_not_collide_with_handlers(make_project):
    from runtime.http.project import ProjectError

    root = make_project({"metrics.py": "async def handler(req, res, gctx, lctx):\n    return 1\n"})
    with pytest.raises(ProjectError, match="metrics_path"):
        build_app(root)
    (root / "gati.toml").write_text('[server]\nmetrics_path = "/_prom"\n')
    build_app(root)


def test_a_metric_name_with_a_line_break_is_refused():
    # A name ending in a newline would split its line of the Prometheus exposition in two.
    with pytest.raises(ValueError, match="metric name"):
        Metrics().counter("items_viewed\n", 1)
