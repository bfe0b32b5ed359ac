"""Metrics through OpenTelemetry, exported for Prometheus on /metrics.

The runtime records, per route and per module:

    http_server_request_duration_seconds{http_route, http_request_method, http_response_status_code}
        (histogram, OpenTelemetry's semantic convention; its _count series counts requests)
    gati_module_calls_total{gati_module, gati_method, outcome}
    gati_module_call_duration_seconds{gati_module, gati_method}                (histogram)
    gati_alerts_total{reason}

and handlers add their own through gctx.metrics:

    gctx.metrics.counter("orders_placed", 1, {"kind": "express"})
    gctx.metrics.histogram("basket_size", 3)
    gctx.metrics.gauge("queue_depth", 12)

Each app has its own MeterProvider and Prometheus registry (not the process-global ones),
so two apps in one process never mix their figures. Keep tag values few (no ids in tags).

The runtime's own series are counted in place (_Series: a dict update per measurement) and read
into the same registry when /metrics is scraped: through OpenTelemetry's SDK each measurement
cost 5-7 µs of attribute processing, 20 µs on a request that calls a module, more than the
WASM call itself (docs/performance.md). They come out under the same names and labels.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from typing import Any, Iterator, Mapping, Sequence

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,62}$")
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, service_name: str = "gati", readers: Sequence[MetricReader] = (), resource: Resource | None = None):
        """readers: more readers of the app's MeterProvider (OTLP exporters: runtime.http.telemetry)."""
        self.registry = CollectorRegistry()
        self._reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        seconds = ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)
        resource = resource or Resource.create({"service.name": service_name})
        self.provider = MeterProvider(
            resource=resource,
            metric_readers=[self._reader],
            exemplar_filter=AlwaysOffExemplarFilter(),  # the Prometheus text format carries no exemplars: do not collect them
            # instruments no view names keep the default aggregation
            views=[View(instrument_name="*.duration", aggregation=seconds)],
        )
        self.meter = self.provider.get_meter("gati")
        # Label names in sorted order, as the OpenTelemetry exporter writes them; keys follow that order.
        self._request_s = _Series("http_server_request_duration_seconds", "HTTP requests served and their duration",
                                  ("http_request_method", "http_response_status_code", "http_route"), SECONDS_BUCKETS)
        self._calls = _Series("gati_module_calls", "module calls", ("gati_method", "gati_module", "outcome"))
        self._call_s = _Series("gati_module_call_duration_seconds", "module call duration", ("gati_method", "gati_module"), SECONDS_BUCKETS)
        self._alerts = _Series("gati_alerts", "alerts (failed compensations)", ("reason",))
        self.registry.register(_Collector((self._request_s, self._calls, self._call_s, self._alerts)))
        self._user: dict[tuple[str, str], Any] = {}
        # Exported over OTLP too: the runtime's series as OpenTelemetry instruments (semantic conventions'
        # names), measured only when a reader other than /metrics exists, so a plain server pays nothing.
        # A provider of their own: through /metrics's they would clash with the series of the same names.
        self.otlp_provider = MeterProvider(
            resource=resource, metric_readers=list(readers), exemplar_filter=AlwaysOffExemplarFilter(),
            views=[View(instrument_name="*.duration", aggregation=seconds)],
        ) if readers else None
        self._otlp = _OtlpSeries(self.otlp_provider.get_meter("gati")) if self.otlp_provider else None

    # what the runtime records ------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._request_s.observe((method, status, route), seconds)
        if self._otlp is not None:
            self._otlp.request(route, method, status, seconds)

    def module_call(self, module: str, method: str, outcome: str, seconds: float) -> None:
        self._calls.add((method, module, outcome))
        self._call_s.observe((method, module), seconds)
        if self._otlp is not None:
            self._otlp.module_call(module, method, outcome, seconds)

    def alert(self, reason: str) -> None:
        self._alerts.add((reason,))

    # what handlers record (gctx.metrics) -----------------------------------------------------------

    def counter(self, name: str, value: float = 1, tags: Mapping[str, Any] | None = None) -> None:
        if value < 0:
            raise ValueError(f"counter {name} cannot go down (value {value}); use gauge for values that do")
        self._instrument("counter", name).add(value, dict(tags or {}))

    def histogram(self, name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        self._instrument("histogram", name).record(value, dict(tags or {}))

    def gauge(self, name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        self._instrument("gauge", name).set(value, dict(tags or {}))

    def _instrument(self, kind: str, name: str) -> Any:
        inst = self._user.get((kind, name))
        if inst is None:
            if not NAME_RE.fullmatch(name) or name.startswith("gati."):
                raise ValueError(f"metric name {name!r}: use letters, digits, _ and . (at most 63), not starting with 'gati.'")
            for (other_kind, other), _ in self._user.items():
                if other == name:
                    raise ValueError(f"metric {name!r} is already a {other_kind}; give the {kind} another name")
            inst = _create(self.meter, kind, name)
            if self.otlp_provider is not None:
                inst = _Both(inst, _create(self.otlp_provider.get_meter("gati"), kind, name))
            self._user[(kind, name)] = inst
        return inst

    # export -------------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format, for GET /metrics."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        """Stop the providers; OTLP readers export what they hold first (blocking: call it off the event loop)."""
        self.provider.shutdown()
        if self.otlp_provider is not None:
            try:
                self.otlp_provider.shutdown()
            except Exception:  # an unreachable collector must not stop the server from stopping
                logging.getLogger("gati.telemetry").exception("flushing metrics failed")


def _create(meter, kind: str, name: str) -> Any:
    return {"counter": meter.create_counter, "histogram": meter.create_histogram, "gauge": meter.create_gauge}[kind](name)


class _Both:
    """A handler's instrument on /metrics's provider and the OTLP one: each measurement goes to both."""

    def __init__(self, prometheus, otlp):
        self.prometheus, self.otlp = prometheus, otlp

    def add(self, value, attributes=None) -> None:
        self.prometheus.add(value, attributes)
        self.otlp.add(value, attributes)

    def record(self, value, attributes=None) -> None:
        self.prometheus.record(value, attributes)
        self.otlp.record(value, attributes)

    def set(self, value, attributes=None) -> None:
        self.prometheus.set(value, attributes)
        self.otlp.set(value, attributes)


class _OtlpSeries:
    """The runtime's request and module call measurements as OpenTelemetry instruments, for OTLP readers."""

    def __init__(self, meter):
        self._request_s = meter.create_histogram("http.server.request.duration", unit="s", description="HTTP requests served and their duration")
        self._calls = meter.create_counter("gati.module.calls", description="module calls")
        self._call_s = meter.create_histogram("gati.module.call.duration", unit="s", description="module call duration")

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._request_s.record(seconds, {"http.route": route, "http.request.method": method, "http.response.status_code": status})

    def module_call(self, module: str, method: str, outcome: str, seconds: float) -> None:
        attributes = {"gati.module": module, "gati.method": method}
        self._calls.add(1, {**attributes, "outcome": outcome})
        self._call_s.record(seconds, attributes)


class _Series:
    """One counter or histogram of the runtime's, counted in place per label values.

    Histogram: per key, a count per bucket (value <= bound, then +Inf) and the sum. Measurements come
    from the event loop's thread; a scrape copies a key's list before reading it."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...] | None = None):
        self.name, self.doc, self.labels, self.bounds = name, doc, list(labels), bounds
        self.data: dict[tuple, list] = {}

    def add(self, key: tuple, value: float = 1) -> None:
        counts = self.data.get(key)
        if counts is None:
            counts = self.data[key] = [0.0]
        counts[0] += value

    def observe(self, key: tuple, value: float) -> None:
        counts = self.data.get(key)
        if counts is None:
            counts = self.data[key] = [0] * (len(self.bounds) + 1) + [0.0]
        counts[bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def family(self) -> CounterMetricFamily | HistogramMetricFamily:
        if self.bounds is None:
            counter = CounterMetricFamily(self.name, self.doc, labels=self.labels)
            for key, counts in list(self.data.items()):
                counter.add_metric([str(v) for v in key], counts[0])
            return counter
        histogram = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for key, counts in list(self.data.items()):
            counts, total, buckets = counts[:], 0, []
            for bound, count in zip([*map(str, self.bounds), "+Inf"], counts[:-1]):
                total += count
                buckets.append((bound, total))
            histogram.add_metric([str(v) for v in key], buckets, counts[-1])
        return histogram


class _Collector:
    """Reads the runtime's series into the app's registry when /metrics is scraped."""

    def __init__(self, series: tuple[_Series, ...]):
        self.series = series

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        for one in self.series:
            yield one.family()
