"""Trace context without an exporter, and at each boundary: the OTEL_* configuration, the W3C
headers read by OpenTelemetry's propagators, a WASM module's `trace_context` import, the Python
SDK continuing the caller's trace, log lines naming their trace and span.

The whole trace over OTLP from a real `gati serve` is tests/test_otlp.py.
"""

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from hypothesis import given
from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from hypothesis import strategies as st
from tracing_support import wasm_module

from runtime.core.call import CallContext, TraceContext
from runtime.http.context import LocalContext, current_request, parse_traceparent
from runtime.http.logs import TextFormatter
from runtime.http.telemetry import TelemetryError, from_env
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
SDK = ROOT / "sdk" / "python"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


# -- configuration from OTEL_* ----------------------------------------------------------------------


@pytest.fixture
def otel_env(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME",
                 "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def exporters(telemetry) -> dict:
    out = {"traces": [], "metrics": [type(r._exporter).__module__ for r in telemetry.metric_readers]}
    if telemetry.tracer_provider is not None:
        out["traces"] = [type(p.span_exporter).__module__ for p in telemetry.tracer_provider._active_span_processor._span_processors if hasattr(p, "span_exporter")]
    return out


def test_nothing_is_configured_without_an_endpoint_or_an_exporter(otel_env):
    telemetry = from_env("shop", install_global=False)
    assert not telemetry.on and telemetry.describe() == "off"


def test_an_endpoint_exports_traces_and_metrics_over_otlp_http_by_default(otel_env):
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    telemetry = from_env("shop", install_global=False)
    got = exporters(telemetry)
    assert got["traces"] == ["opentelemetry.exporter.otlp.proto.http.trace_exporter"]
    assert got["metrics"] == ["opentelemetry.exporter.otlp.proto.http.metric_exporter"]
    assert telemetry.resource.attributes["service.name"] == "shop"  # the project's name when OTEL_SERVICE_NAME is unset
    telemetry.shutdown()


def test_protocol_per_signal_service_name_and_none(otel_env):
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    otel_env.setenv("OTEL_METRICS_EXPORTER", "none")
    otel_env.setenv("OTEL_SERVICE_NAME", "checkout")
    telemetry = from_env("shop", install_global=False)
    assert exporters(telemetry) == {"traces": ["opentelemetry.exporter.otlp.proto.grpc.trace_exporter"], "metrics": []}
    assert telemetry.resource.attributes["service.name"] == "checkout"
    telemetry.shutdown()


def test_traces_exporter_none_and_sdk_disabled_turn_it_off(otel_env):
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_env.setenv("OTEL_TRACES_EXPORTER", "none")
    telemetry = from_env("shop", install_global=False)
    assert telemetry.tracer_provider is None and len(telemetry.metric_readers) == 1
    otel_env.setenv("OTEL_SDK_DISABLED", "true")
    assert not from_env("shop", install_global=False).on


@pytest.mark.parametrize("var, value, named", [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTLP protocol"), ("OTEL_TRACES_EXPORTER", "zipkin-ish", "no traces exporter")])
def test_what_cannot_be_configured_is_an_error_with_a_fix(otel_env, var, value, named):
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_env.setenv(var, value)
    with pytest.raises(TelemetryError, match=named) as caught:
        from_env("shop", install_global=False)
    assert caught.value.fix


# -- W3C headers through the propagators --------------------------------------------------------------


@given(st.text("0123456789abcdef", min_size=32, max_size=32), st.text("0123456789abcdef", min_size=16, max_size=16), st.sampled_from(["00", "01"]))
def test_a_valid_traceparent_is_continued(trace_id, span_id, flags):
    parsed = parse_traceparent(f"00-{trace_id}-{span_id}-{flags}")
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        assert parsed is None  # all-zero ids are invalid
    else:
        assert parsed == (trace_id, span_id, flags)
        assert LocalContext(None, f"00-{trace_id}-{span_id}-{flags}").trace_id == trace_id


def propagators_answer(header: str):
    """What OpenTelemetry's W3C propagator reads from the header: the reference for the untraced fast path."""
    parent = get_current_span(TraceContextTextMapPropagator().extract({"traceparent": header})).get_span_context()
    if not parent.is_valid:
        return None
    return format(parent.trace_id, "032x"), format(parent.span_id, "016x"), format(parent.trace_flags, "02x")


HEX = "0123456789abcdef"
hex_of = lambda n: st.one_of(st.text(HEX, min_size=n, max_size=n), st.just("0" * n), st.text(HEX + "ABCxz-", min_size=n - 1, max_size=n + 1))  # noqa: E731
headers = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda pad1, version, trace_id, span_id, flags, rest, pad2: f"{pad1}{version}-{trace_id}-{span_id}-{flags}{rest}{pad2}",
        st.sampled_from(["", " ", "\t", "\n"]), st.one_of(st.sampled_from(["00", "01", "cc", "ff"]), hex_of(2)), hex_of(32), hex_of(16), hex_of(2),
        st.sampled_from(["", "-", "-x", "-what-ever", "x"]), st.sampled_from(["", " ", "\t", "\n", " x"]),
    ),
    st.builds(lambda n: "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + " " * n, st.integers(400, 520)),
)


@given(headers)
def test_the_fast_path_reads_every_traceparent_as_the_propagator_does(header):
    assert parse_traceparent(header) == propagators_answer(header)


@given(st.text(max_size=80))
def test_any_header_starts_or_continues_a_well_formed_trace(header):
    lctx = LocalContext(None, header)
    assert len(lctx.trace_id) == 32 and int(lctx.trace_id, 16) and lctx.trace_flags in ("00", "01")
    assert parse_traceparent(lctx.traceparent)[0] == lctx.trace_id


# -- without an exporter: no span, the context still reaches the modules ------------------------------

UNTRACED = """
from opentelemetry import trace

async def handler(req, res, gctx, lctx):
    current = trace.get_current_span()
    module = await gctx.modules.tracewasm.context({})
    return {"recording": current.is_recording(), "valid": current.get_span_context().is_valid, "span": lctx.span, "module": module}
"""


async def test_an_untraced_request_makes_no_span_and_still_hands_its_context_to_modules(make_project, serve):
    root = make_project({"index.py": UNTRACED})
    wasm_module(root / "modules" / "tracewasm")
    client = await serve(root)
    r = await client.get("/", headers={"traceparent": TRACEPARENT, "tracestate": "vendor=opaque", "baggage": "user=alice"})
    body = await r.json()
    assert (body["recording"], body["valid"], body["span"]) == (False, False, None)  # nothing attached, no span object
    parent = r.headers["traceparent"]
    assert parent.split("-")[1] == TRACE_ID
    assert body["module"] == {"traceparent": parent, "tracestate": "vendor=opaque", "baggage": "user=alice"}

    r = await client.get("/", headers={"tracestate": "vendor=opaque"})  # a tracestate without a traceparent is dropped
    assert (await r.json())["module"] == {"traceparent": r.headers["traceparent"], "tracestate": "", "baggage": ""}


# -- WASM: trace_context -----------------------------------------------------------------------------


async def test_a_wasm_module_reads_its_calls_trace_context(state, tmp_path):
    register_module(state, wasm_module(tmp_path / "tracewasm"))
    manager = ModuleManager(state)
    try:
        assert await manager.call("tracewasm", "context", None, ctx=CallContext(request_id="r")) is None  # no trace: GATI_NOT_FOUND
        trace = TraceContext(TRACEPARENT, "a=1", "k=v")
        got = await manager.call("tracewasm", "context", None, ctx=CallContext(request_id="r", trace=trace))
        assert got == {"traceparent": TRACEPARENT, "tracestate": "a=1", "baggage": "k=v"}
    finally:
        await manager.close()


# -- the Python SDK continues the trace ------------------------------------------------------------------

MODULE = '''
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from gati_sdk import Module

trace.set_tracer_provider(TracerProvider())
module = Module("spans")


@module.method
def work(payload, ctx):
    with trace.get_tracer("module").start_as_current_span("inner") as span:
        own = span.get_span_context()
        return {"trace_id": format(own.trace_id, "032x"), "parent": format(span.parent.span_id, "016x") if span.parent else None,
                "ctx_trace": [ctx.trace.traceparent, ctx.trace.tracestate, ctx.trace.baggage, ctx.trace.trace_id, ctx.trace.parent_id]}
'''


async def test_the_python_sdk_continues_the_callers_trace_and_shows_it_as_ctx_trace(tmp_path):
    mod = tmp_path / "spans.py"
    mod.write_text(textwrap.dedent(MODULE) + "\nmodule.serve()\n")
    sock = tmp_path / "m.sock"
    proc = subprocess.Popen([sys.executable, str(mod)], env={"GATI_MODULE_SOCKET": str(sock), "PYTHONPATH": str(SDK)}, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().decode().startswith("GATI|")
        async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
            stub = module_pb2_grpc.ModuleServiceStub(channel)
            request = module_pb2.CallRequest(method="work", payload=b"null", context=module_pb2.CallContext(request_id="r"))
            metadata = (("traceparent", TRACEPARENT), ("tracestate", "a=1"), ("baggage", "k=v"))
            with_trace = json.loads((await stub.Call(request, metadata=metadata, timeout=20)).payload)
            without = json.loads((await stub.Call(request, timeout=20)).payload)
    finally:
        proc.kill()
        proc.wait()
    assert with_trace["trace_id"] == TRACE_ID and with_trace["parent"] == "00f067aa0ba902b7"  # the module's span joins the trace
    assert with_trace["ctx_trace"] == [TRACEPARENT, "a=1", "k=v", TRACE_ID, "00f067aa0ba902b7"]
    assert without["trace_id"] != TRACE_ID and without["parent"] is None and without["ctx_trace"] == ["", "", "", "", ""]


# -- logs ----------------------------------------------------------------------------------------------------


def test_a_text_log_line_of_a_request_names_its_trace_and_span():
    formatter = TextFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "inside", (), None)
    assert formatter.format(record) == "WARNING app: inside"  # outside a request: as it was
    lctx = LocalContext(None, TRACEPARENT)
    token = current_request.set(lctx)
    try:
        line = formatter.format(record)
    finally:
        current_request.reset(token)
    assert line == f"WARNING app: inside trace_id={TRACE_ID} span_id={lctx.span_id}"


# -- failures on spans ----------------------------------------------------------------------------------------

FAILING = """
VERSION = "9"

def refuse(req, res, gctx, lctx):
    if req.query.get("refuse"):
        raise NotAllowed("no", fix="ask")

BEFORE = [refuse]

async def handler(req, res, gctx, lctx):
    raise RuntimeError("boom")
"""


async def test_a_failing_request_marks_its_spans_and_a_4xx_is_not_a_server_error(make_project, serve):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from runtime.http.app import TRACER

    root = make_project({"fail.py": "from runtime.core.errors import GatiError\n\nclass NotAllowed(GatiError):\n    code = 'not_allowed'\n    http_status = 403\n" + FAILING})
    client = await serve(root)
    exporter = InMemorySpanExporter()
    client.server.app[TRACER].add_span_processor(SimpleSpanProcessor(exporter))

    assert (await client.get("/fail")).status == 500
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server, handler = spans["GET /fail"], spans["handler fail.py"]
    assert server.kind == SpanKind.SERVER and server.status.status_code == StatusCode.ERROR
    assert server.attributes["error.type"] == "RuntimeError" and server.attributes["http.response.status_code"] == 500
    assert handler.status.status_code == StatusCode.ERROR and handler.parent.span_id == server.context.span_id
    assert any(e.name == "exception" for e in handler.events)
    assert spans["before hook refuse"].attributes["gati.hook.level"] == "route"
    assert all(s.attributes["gati.version"] == "9" and s.attributes["gati.handler"] == "fail.py" for s in spans.values())

    exporter.clear()
    assert (await client.get("/fail?refuse=1")).status == 403
    assert (await client.get("/nowhere")).status == 404
    server = next(s for s in exporter.get_finished_spans() if s.name == "GET /fail")
    assert server.status.status_code == StatusCode.UNSET and "error.type" not in server.attributes
    unmatched = next(s for s in exporter.get_finished_spans() if s.name == "GET")
    assert unmatched.attributes["http.response.status_code"] == 404 and "http.route" not in unmatched.attributes


# -- a module calling another through the host is a span of the same trace ---------------------------------

RELAY = '''#!/usr/bin/python3
from gati_sdk import Module

module = Module("relay", "1.0.0")


@module.method
def relay(payload, ctx):
    ctx.host.log("relaying", level=2)
    return ctx.host.call("tracewasm", "context", {})


if __name__ == "__main__":
    module.serve()
'''


class _RequestOfEachLine(logging.Handler):
    """Which request each log line of the host service was written in (what the log formatters read)."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    def emit(self, record):
        lctx = current_request.get()
        self.seen.append((record.getMessage(), lctx.request_id if lctx is not None else None))


async def test_a_module_calling_another_through_the_host_is_a_span_under_its_own(make_project, serve):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from runtime.http.app import TRACER

    root = make_project({"relay.py": "async def handler(req, res, gctx, lctx):\n    return await gctx.modules.relay.relay({})\n"})
    wasm_module(root / "modules" / "tracewasm")
    relay = root / "modules" / "relay"
    relay.mkdir()
    (relay / "relay.py").write_text(RELAY)
    (relay / "relay.py").chmod(0o755)
    (relay / "module.toml").write_text(
        'name = "relay"\nversion = "1.0.0"\nkind = "native"\n[artifact]\npath = "relay.py"\n[methods.relay]\n[capabilities]\nmodules = ["tracewasm"]\n'
    )
    client = await serve(root)
    exporter = InMemorySpanExporter()
    client.server.app[TRACER].add_span_processor(SimpleSpanProcessor(exporter))

    lines = _RequestOfEachLine()
    logging.getLogger("gati.module").addHandler(lines)
    try:
        first = await client.get("/relay")  # the module starts in another request's trace
        exporter.clear()
        r = await client.get("/relay", headers={"traceparent": TRACEPARENT})
    finally:
        logging.getLogger("gati.module").removeHandler(lines)
    assert r.status == 200, await r.text()
    # the host service serves each call in a context of its own, not the one of the request that started it
    (second,) = [request for message, request in lines.seen if r.headers["X-Request-Id"] in message]
    assert second != first.headers["X-Request-Id"]
    body = await r.json()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    outer, inner = spans["relay.relay"], spans["tracewasm.context"]
    assert inner.context.trace_id == outer.context.trace_id == int(TRACE_ID, 16)
    assert inner.parent.span_id == outer.context.span_id  # under the call that made it, not a new trace
    assert inner.attributes["gati.request_id"] == r.headers["X-Request-Id"]
    # and the callee was handed its own call's span as its parent
    assert body["traceparent"] == f"00-{TRACE_ID}-{format(inner.context.span_id, '016x')}-01"


async def test_a_wasm_module_calling_another_through_the_host_is_a_span_under_its_own(make_project, serve):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from versions_support import caller, greet

    from runtime.http.app import TRACER

    root = make_project({"relay.py": "async def handler(req, res, gctx, lctx):\n    return await gctx.modules.caller.one({})\n"})
    greet(root / "modules" / "greet", "1.0.0", health=None)
    caller(root / "modules" / "caller", "greet", {"one": "greet"})
    client = await serve(root)
    exporter = InMemorySpanExporter()
    client.server.app[TRACER].add_span_processor(SimpleSpanProcessor(exporter))
    for _ in range(2):  # the second call finds its sandboxes started
        exporter.clear()
        r = await client.get("/relay", headers={"traceparent": TRACEPARENT})
        assert r.status == 200 and await r.json() == {"message": "hello from 1.0.0"}
        spans = {s.name: s for s in exporter.get_finished_spans()}
        outer, inner = spans["caller.one"], spans["greet.hello"]
        assert inner.context.trace_id == outer.context.trace_id == int(TRACE_ID, 16)
        assert inner.parent.span_id == outer.context.span_id


UNDOING = """
async def handler(req, res, gctx, lctx):
    lctx.compensate(lambda: None, name="refund")

    def fail():
        raise RuntimeError("the ledger is down")

    lctx.compensate(fail, name="release_stock")
    lctx.on_cleanup(lambda: None)
    raise RuntimeError("payment failed")
"""


async def test_compensations_and_cleanup_hooks_are_spans_of_the_request(make_project, serve):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from runtime.http.app import TRACER

    root = make_project({"order.py": UNDOING})
    client = await serve(root)
    exporter = InMemorySpanExporter()
    client.server.app[TRACER].add_span_processor(SimpleSpanProcessor(exporter))
    assert (await client.get("/order", headers={"traceparent": TRACEPARENT})).status == 500
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server = spans["GET /order"]
    refund, release = spans["compensation refund"], spans["compensation release_stock"]
    cleanup = next(s for name, s in spans.items() if name.startswith("cleanup "))
    for span in (refund, release, cleanup):
        assert span.parent.span_id == server.context.span_id and span.context.trace_id == int(TRACE_ID, 16)
    assert release.end_time <= refund.start_time  # newest first
    assert release.status.status_code == StatusCode.ERROR and any(e.name == "exception" for e in release.events)
    assert refund.status.status_code == StatusCode.UNSET
    assert (refund.attributes["gati.phase"], cleanup.attributes["gati.phase"]) == ("compensate", "cleanup")
