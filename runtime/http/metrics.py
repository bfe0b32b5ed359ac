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
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,62}$")
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, service_name: str = "gati"):
        self.registry = CollectorRegistry()
        self._reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        seconds = ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)
        self.provider = MeterProvider(
            resource=Resource.create({"service.name": service_name}),
            metric_readers=[self._reader],
            exemplar_filter=AlwaysOffExemplarFilter(),  # the Prometheus text format carries no exemplars: do not collect them
            # instruments no view names keep the default aggregation
            views=[View(instrument_name="*.duration", aggregation=seconds)],
        )
        self.meter = self.provider.get_meter("gati")
        self._request_s = self.meter.create_histogram("http.server.request.duration", unit="s", description="HTTP requests served and their duration")
        self._calls = self.meter.create_counter("gati.module.calls", unit="1", description="module calls")
        self._call_s = self.meter.create_histogram("gati.module.call.duration", unit="s", description="module call duration")
        self._alerts = self.meter.create_counter("gati.alerts", unit="1", description="alerts (failed compensations)")
        self._user: dict[tuple[str, str], Any] = {}

    # what the runtime records ------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        # One histogram, not a counter beside it: each measurement costs microseconds on every request.
        self._request_s.record(seconds, {"http.route": route, "http.request.method": method, "http.response.status_code": status})

    def module_call(self, module: str, method: str, outcome: str, seconds: float) -> None:
        self._calls.add(1, {"gati.module": module, "gati.method": method, "outcome": outcome})
        self._call_s.record(seconds, {"gati.module": module, "gati.method": method})

    def alert(self, reason: str) -> None:
        self._alerts.add(1, {"reason": reason})

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
            if not NAME_RE.match(name) or name.startswith("gati."):
                raise ValueError(f"metric name {name!r}: use letters, digits, _ and . (at most 63), not starting with 'gati.'")
            for (other_kind, other), _ in self._user.items():
                if other == name:
                    raise ValueError(f"metric {name!r} is already a {other_kind}; give the {kind} another name")
            create = {"counter": self.meter.create_counter, "histogram": self.meter.create_histogram, "gauge": self.meter.create_gauge}[kind]
            inst = self._user[(kind, name)] = create(name)
        return inst

    # export -------------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format, for GET /metrics."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.provider.shutdown()
