"""OpenTelemetry for `gati serve` and `gati dev`, configured from the standard OTEL_* variables.

    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT   where to send (any one turns it on)
    OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL   http/protobuf (the default) or grpc
    OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER                                 otlp (default), console, none
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES                                 the resource (default service.name: the project's folder)
    OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG                                read by the SDK's TracerProvider itself
    OTEL_PROPAGATORS                                                            read by opentelemetry.propagate itself
    OTEL_SDK_DISABLED=true                                                      nothing at all

The exporters read their own OTEL_EXPORTER_OTLP_* settings (endpoint, headers, timeout,
compression, certificates): nothing here parses them. With no endpoint and no exporter named,
nothing is configured and a request makes no span (runtime.http.tracing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_METRICS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.util._importlib_metadata import entry_points

from runtime.core.errors import GatiError

log = logging.getLogger("gati.telemetry")

# The OTLP protocols and the entry points of opentelemetry-exporter-otlp that speak them.
PROTOCOLS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
DEFAULT_PROTOCOL = "http/protobuf"  # the OpenTelemetry specification's default (the Python SDK's own is grpc)


class TelemetryError(GatiError):
    code = "telemetry_config"
    http_status = 500


@dataclass
class Telemetry:
    """The SDK parts one app exports through: what `gati serve` made from the environment."""

    tracer_provider: TracerProvider | None = None
    # OTLP metrics: readers for the app's own MeterProvider (runtime.http.metrics), beside /metrics
    metric_readers: list[MetricReader] = field(default_factory=list)
    resource: Resource | None = None
    exporters: dict[str, list[str]] = field(default_factory=dict)  # signal -> exporter names, for the start-up line

    @property
    def on(self) -> bool:
        return self.tracer_provider is not None or bool(self.metric_readers)

    def describe(self) -> str:
        return "; ".join(f"{signal} via {', '.join(names)}" for signal, names in self.exporters.items()) or "off"

    def shutdown(self) -> None:
        """Flush the spans still batched and stop the span exporters (blocking: call it off the event loop).

        The metric readers belong to the app's MeterProvider, which Metrics.shutdown flushes."""
        if self.tracer_provider is not None:
            try:
                self.tracer_provider.shutdown()
            except Exception:  # an unreachable collector must not stop the server from stopping
                log.exception("flushing spans failed")


def from_env(default_service: str, *, install_global: bool = True) -> Telemetry:
    """The tracer and meter providers the OTEL_* variables ask for (none when they ask for nothing).

    install_global makes them the process's providers too, so a handler's own
    `trace.get_tracer(...)` spans land in the same trace and exporter."""
    env = os.environ  # the exporters and the SDK read it too: one source for every setting
    if env.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return Telemetry()
    traces = _exporter_names(env, "traces", OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
    metrics = _exporter_names(env, "metrics", OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)
    telemetry = Telemetry(exporters={s: names for s, names in (("traces", traces), ("metrics", metrics)) if names})
    if not traces and not metrics:
        return telemetry
    resource = _resource(default_service)
    if traces:
        provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER(_ARG) read by the SDK
        for name in traces:
            exporter = _load(name, "opentelemetry_traces_exporter", SpanExporter)()
            # console is for a person watching: each span at once; the rest batch off the event loop's thread
            provider.add_span_processor(SimpleSpanProcessor(exporter) if name == "console" else BatchSpanProcessor(exporter))
        telemetry.tracer_provider = provider
        if install_global and not isinstance(trace.get_tracer_provider(), TracerProvider):  # it can be set once per process
            trace.set_tracer_provider(provider)
    telemetry.resource = resource
    for name in metrics:
        cls = _load(name, "opentelemetry_metrics_exporter", (MetricExporter, MetricReader))
        # a push exporter is read every OTEL_METRIC_EXPORT_INTERVAL ms (the SDK's reader reads the variable)
        telemetry.metric_readers.append(cls() if issubclass(cls, MetricReader) else PeriodicExportingMetricReader(cls()))
    log.info("OpenTelemetry: %s (%s)", telemetry.describe(), resource.attributes.get(SERVICE_NAME))
    return telemetry


def _exporter_names(env: Mapping[str, str], signal: str, names_var: str, endpoint_var: str, protocol_var: str) -> list[str]:
    """The entry point names of a signal's exporters: none unless an exporter is named or an OTLP endpoint set."""
    given = env.get(names_var, "").strip()
    if given.lower() == "none":
        return []
    endpoint = env.get(endpoint_var) or env.get(OTEL_EXPORTER_OTLP_ENDPOINT)
    if not given and not endpoint:
        return []  # nowhere to send: not configured, and a request costs no span
    names = []
    for name in (n.strip() for n in (given or "otlp").split(",") if n.strip()):
        if name == "otlp":
            protocol = (env.get(protocol_var) or env.get(OTEL_EXPORTER_OTLP_PROTOCOL) or DEFAULT_PROTOCOL).strip()
            if protocol not in PROTOCOLS:
                var = protocol_var if env.get(protocol_var) else OTEL_EXPORTER_OTLP_PROTOCOL
                raise TelemetryError(f"{var}={protocol!r} is not an OTLP protocol gati speaks", fix=f"use one of: {', '.join(PROTOCOLS)}")
            name = PROTOCOLS[protocol]
        names.append(name)
    return names


def _load(name: str, group: str, kind: Any) -> Any:
    found = list(entry_points(group=group, name=name))
    if not found:
        raise TelemetryError(
            f"no {group.split('_')[1]} exporter named {name!r} is installed",
            fix="use otlp, console or none (OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER), or install the package that provides it",
        )
    cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise TelemetryError(f"{name!r} is not a {group.split('_')[1]} exporter", fix="name another exporter")
    return cls


def _resource(default_service: str) -> Resource:
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the project's name
    # stands in only when neither names the service.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service}))
    return resource
