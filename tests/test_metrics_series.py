"""The runtime's own metric series, counted in place (runtime/http/metrics.py _Series), come out of
/metrics exactly as OpenTelemetry's SDK and its Prometheus exporter wrote them before: same names,
labels, buckets, counts and sums, for any measurements."""

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runtime.http.metrics import SECONDS_BUCKETS, Metrics

RUNTIME = {"http_server_request_duration_seconds", "gati_module_calls", "gati_module_call_duration_seconds", "gati_alerts"}

requests = st.lists(st.tuples(st.sampled_from(["/", "/items/{id}"]), st.sampled_from(["GET", "POST"]), st.sampled_from([200, 404, 500]),
                              st.sampled_from([0.0, 0.0005, 1.0, 30.0, 31.0]) | st.floats(0, 40, allow_nan=False)), max_size=30)
calls = st.lists(st.tuples(st.sampled_from(["greet", "thumbs"]), st.sampled_from(["hello", "resize"]), st.sampled_from(["ok", "timeout"]),
                           st.floats(0, 40, allow_nan=False)), max_size=30)
alerts = st.lists(st.sampled_from(["compensation_failed", "other"]), max_size=5)


def through_otel(reqs, module_calls, reasons) -> bytes:
    """The same measurements through OpenTelemetry's SDK, as runtime/http/metrics.py recorded them before."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry, scope_info_enabled=False)],
        exemplar_filter=AlwaysOffExemplarFilter(),
        views=[View(instrument_name="*.duration", aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS))],
    )
    meter = provider.get_meter("gati")
    request_s = meter.create_histogram("http.server.request.duration", unit="s", description="HTTP requests served and their duration")
    calls_total = meter.create_counter("gati.module.calls", unit="1", description="module calls")
    call_s = meter.create_histogram("gati.module.call.duration", unit="s", description="module call duration")
    alerts_total = meter.create_counter("gati.alerts", unit="1", description="alerts (failed compensations)")
    for route, method, status, seconds in reqs:
        request_s.record(seconds, {"http.route": route, "http.request.method": method, "http.response.status_code": status})
    for module, method, outcome, seconds in module_calls:
        calls_total.add(1, {"gati.module": module, "gati.method": method, "outcome": outcome})
        call_s.record(seconds, {"gati.module": module, "gati.method": method})
    for reason in reasons:
        alerts_total.add(1, {"reason": reason})
    try:
        return generate_latest(registry)
    finally:
        provider.shutdown()


def samples(exposition: bytes) -> dict:
    out = {}
    for family in text_string_to_metric_families(exposition.decode()):
        if family.name in RUNTIME:
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = round(s.value, 9)
    return out


@settings(max_examples=60, deadline=None)
@given(requests, calls, alerts)
def test_in_place_series_expose_what_opentelemetry_did(reqs, module_calls, reasons):
    metrics = Metrics("app")
    try:
        for route, method, status, seconds in reqs:
            metrics.request(route, method, status, seconds)
        for module, method, outcome, seconds in module_calls:
            metrics.module_call(module, method, outcome, seconds)
        for reason in reasons:
            metrics.alert(reason)
        assert samples(metrics.exposition()) == samples(through_otel(reqs, module_calls, reasons))
    finally:
        metrics.shutdown()
