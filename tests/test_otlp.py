"""OpenTelemetry the conventional way: a real `gati serve`, configured by OTEL_* variables only,
exports its spans and metrics over OTLP/HTTP to a real receiver on loopback.

The receiver is a small aiohttp server decoding the opentelemetry-proto messages the exporters
send (ExportTraceServiceRequest on /v1/traces, ExportMetricsServiceRequest on /v1/metrics). The
served request calls a WASM module and a container module; each answers with the trace context it
was handed, so the test sees the whole trace: the caller's traceparent continued, the request's
SERVER span, its hook and handler spans, a CLIENT span per module call, and each module given the
context of its own call's span. The batch and export intervals are set far beyond the test, so
what arrives was sent by the flush on shutdown.
"""

import asyncio
import json
import os
import signal
import socket
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from tracing_support import TRACE_TOML, TRACE_WAT

from sandboxes.oci import available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 240  # the first run builds the container module's image

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
HEADERS = {
    "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
    "tracestate": "vendor=opaque",
    "baggage": "user=alice",
    "User-Agent": "otlp-test/1",
}


TRACE_PY = """
from gati_sdk import Module

module = Module("tracepy")


@module.method
def context(payload, ctx):
    return {"traceparent": ctx.trace.traceparent, "tracestate": ctx.trace.tracestate, "baggage": ctx.trace.baggage,
            "parent_id": ctx.trace.parent_id, "trace_id": ctx.trace_id}


if __name__ == "__main__":
    module.serve()
"""

HANDLER = """
import logging

VERSION = "3"


def check(req, res, gctx, lctx):
    lctx.set("checked", True)


BEFORE = [check]


async def handler(req, res, gctx, lctx):
    wasm = await gctx.modules.tracewasm.context({})
    oci = await gctx.modules.tracepy.context({})
    logging.getLogger("app").warning("inside the handler")
    return {"wasm": wasm, "oci": oci}
"""


def project(root: Path) -> Path:
    files = {
        "gati.toml": "",
        "handlers/both.py": HANDLER,
        "modules/tracewasm/module.toml": TRACE_TOML,
        "modules/tracewasm/trace.wat": TRACE_WAT,
        "modules/tracepy/module.toml": 'name = "tracepy"\nversion = "1.0.0"\nkind = "oci"\n[artifact]\nbuild = "."\n[methods.context]\n',
        "modules/tracepy/Dockerfile": 'ARG GATI_PYTHON\nFROM ${GATI_PYTHON}\nCOPY trace.py /module/trace.py\nENTRYPOINT ["python3", "/module/trace.py"]\n',
        "modules/tracepy/trace.py": TRACE_PY,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


class Receiver:
    """An OTLP/HTTP receiver: what each POST to /v1/traces and /v1/metrics held, decoded."""

    def __init__(self):
        self.spans: list[tuple[dict, Span]] = []  # (resource attributes, span)
        self.metrics: list[tuple[dict, object]] = []  # (resource attributes, metric)

    async def traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest.FromString(await request.read())
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                self.spans += [(attributes(rs.resource.attributes), span) for span in ss.spans]
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def metrics_(self, request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest.FromString(await request.read())
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                self.metrics += [(attributes(rm.resource.attributes), metric) for metric in sm.metrics]
        return web.Response(body=b"", content_type="application/x-protobuf")


def attributes(kvs) -> dict:
    out = {}
    for kv in kvs:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def receiver():
    received = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", received.traces)
    app.router.add_post("/v1/metrics", received.metrics_)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    received.url = "http://127.0.0.1:%d" % runner.addresses[0][1]
    yield received
    await runner.cleanup()


async def served(root: Path, env: dict, port: int):
    """`gati serve` as a subprocess; its stderr lines collected."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime.cli.main", "serve", str(root), "--port", str(port), "--workers", "1", "--log-format", "json",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    return proc


async def test_a_request_across_a_wasm_and_a_container_module_is_one_trace_over_otlp(tmp_path, gati_home, receiver):
    root = project(tmp_path / "app")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk" / "python")]),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "otlp-test",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # nothing leaves before shutdown: the flush must send it
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    }
    proc = await served(root, env, port)
    stderr = asyncio.ensure_future(proc.stderr.read())
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(WAIT_S):
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    assert proc.returncode is None, (await stderr).decode()
                    await asyncio.sleep(0.2)
            async with asyncio.timeout(WAIT_S):
                async with http.get(f"http://127.0.0.1:{port}/both", headers=HEADERS) as r:
                    assert r.status == 200, await r.text()
                    body = await r.json()
                    request_id, traceparent = r.headers["X-Request-Id"], r.headers["traceparent"]
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
    log = (await stderr).decode()

    spans = {span.name: span for resource, span in receiver.spans if resource.get("service.name") == "otlp-test"}
    assert set(spans) >= {"GET /both", "before hook check", "handler both.py", "tracewasm.context", "tracepy.context"}, (sorted(spans), log[-3000:])
    resource = next(r for r, s in receiver.spans if s.name == "GET /both")
    assert resource["deployment.environment.name"] == "test"

    # one trace, the caller's, continued
    assert {s.trace_id.hex() for s in spans.values()} == {TRACE_ID}
    server, hook, handler = spans["GET /both"], spans["before hook check"], spans["handler both.py"]
    wasm, oci = spans["tracewasm.context"], spans["tracepy.context"]
    assert server.parent_span_id.hex() == CALLER_SPAN and server.kind == Span.SPAN_KIND_SERVER
    assert hook.parent_span_id == handler.parent_span_id == server.span_id
    assert wasm.parent_span_id == oci.parent_span_id == handler.span_id
    assert wasm.kind == oci.kind == Span.SPAN_KIND_CLIENT
    assert traceparent == f"00-{TRACE_ID}-{server.span_id.hex()}-01"

    # the HTTP semantic conventions on the server span; request id, handler and version on every span
    a = attributes(server.attributes)
    assert (a["http.request.method"], a["url.path"], a["http.route"], a["http.response.status_code"]) == ("GET", "/both", "/both", 200)
    assert (a["server.address"], a["server.port"], a["user_agent.original"], a["url.scheme"]) == ("127.0.0.1", port, "otlp-test/1", "http")
    for span in spans.values():
        got = attributes(span.attributes)
        assert (got["gati.request_id"], got["gati.handler"], got["gati.version"]) == (request_id, "both.py", "3"), span.name
    assert attributes(oci.attributes)["rpc.method"] == "context" and attributes(wasm.attributes)["gati.module"] == "tracewasm"

    # each module was handed the context of its own call's span, with the caller's tracestate and baggage
    assert body["wasm"] == {"traceparent": f"00-{TRACE_ID}-{wasm.span_id.hex()}-01", "tracestate": "vendor=opaque", "baggage": "user=alice"}
    assert body["oci"] == {
        "traceparent": f"00-{TRACE_ID}-{oci.span_id.hex()}-01", "tracestate": "vendor=opaque", "baggage": "user=alice",
        "parent_id": oci.span_id.hex(), "trace_id": TRACE_ID,
    }

    # the request's metrics went out over OTLP too
    durations = [m for r, m in receiver.metrics if m.name == "http.server.request.duration" and r.get("service.name") == "otlp-test"]
    points = [p for m in durations for p in m.histogram.data_points if attributes(p.attributes).get("http.route") == "/both"]
    assert points and sum(p.count for p in points) == 1 and attributes(points[0].attributes)["http.response.status_code"] == 200
    calls = [m for r, m in receiver.metrics if m.name == "gati.module.calls"]
    assert {attributes(p.attributes)["gati.module"] for m in calls for p in m.sum.data_points} == {"tracewasm", "tracepy"}

    # and the handler's log line names the trace and the handler's span
    line = next(json.loads(x) for x in log.splitlines() if x.startswith("{") and '"inside the handler"' in x)
    assert (line["trace_id"], line["span_id"], line["request_id"]) == (TRACE_ID, handler.span_id.hex(), request_id)
