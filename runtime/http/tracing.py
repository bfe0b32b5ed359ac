"""OpenTelemetry spans for requests, continuing the caller's W3C trace context.

Each request gets one SERVER span named `METHOD /route/{param}`, with the attributes of the HTTP
semantic conventions (http.request.method, url.path, url.scheme, http.route, server.address,
server.port, client.address, user_agent.original, network.protocol.version,
http.response.status_code, error.type) and gati's (gati.request_id, gati.handler, gati.version).
Under it: a span per hook and one for the handler (runtime.http.lifecycle), and one per module
call (runtime.modules.manager). Every span started while a request is served, a handler's own
included, carries gati.request_id, gati.handler and gati.version (RequestAttributes).

The caller's traceparent, tracestate and baggage are read by OpenTelemetry's propagators
(OTEL_PROPAGATORS, W3C Trace Context and Baggage by default); the request's span context is
attached while it is served, so spans started under it are its children.

Spans are built only when something consumes them: when the process has an SDK tracer provider
installed (`gati serve` with OTEL_* set: runtime.http.telemetry), or once a span processor is added
here (`app[TRACER].add_span_processor(...)`). Until then a request costs no span and attaches no
context; lctx still carries the W3C ids (continuing the caller's trace id, with a fresh span id of
its own) into module calls and the traceparent response header.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from runtime.http.context import LocalContext, current_request


class RequestAttributes(SpanProcessor):
    """Stamps every span started while a request is served with its request id, handler and version (property 22)."""

    def on_start(self, span, parent_context=None) -> None:
        lctx = current_request.get()
        if lctx is not None:
            span.set_attribute("gati.request_id", lctx.request_id)
            if lctx.handler:
                span.set_attributes({"gati.handler": lctx.handler, "gati.version": lctx.version})


class Tracer:
    def __init__(self, provider: trace.TracerProvider | None = None):
        installed = provider is not None or isinstance(trace.get_tracer_provider(), TracerProvider)
        if provider is None:
            current = trace.get_tracer_provider()
            provider = current if isinstance(current, TracerProvider) else TracerProvider()
        self.provider = provider
        self.exporting = installed  # someone set up this provider, so someone reads its spans
        self.otel = provider.get_tracer("gati")
        if isinstance(provider, TracerProvider) and not any(isinstance(p, RequestAttributes) for p in _processors(provider)):
            provider.add_span_processor(RequestAttributes())

    def add_span_processor(self, processor) -> None:
        """Send this app's spans to processor (an exporter's BatchSpanProcessor, or a test's in-memory one)."""
        self.provider.add_span_processor(processor)
        self.exporting = True

    def start(self, request: web.Request, lctx: LocalContext) -> None:
        """Start the request's span as a child of the caller's (when its headers carry one), adopt its ids in lctx, attach it."""
        if not self.exporting:
            return  # no span, no context: lctx's own ids stand
        parent = propagate.extract(request.headers)  # traceparent, tracestate, baggage
        attributes = {
            "http.request.method": request.method,
            "url.path": request.path,
            "url.scheme": request.scheme,
            "network.protocol.version": f"{request.version.major}.{request.version.minor}",
            "gati.request_id": lctx.request_id,
        }
        url = request.url  # built here only: a request that is not traced never makes it
        if url.host:
            attributes["server.address"] = url.host
        if url.explicit_port:
            attributes["server.port"] = url.explicit_port
        if request.remote:
            attributes["client.address"] = request.remote
        agent = request.headers.get("User-Agent")
        if agent:
            attributes["user_agent.original"] = agent
        span = self.otel.start_span(request.method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        ctx = span.get_span_context()
        lctx.trace_id = format(ctx.trace_id, "032x")
        lctx.span_id = format(ctx.span_id, "016x")
        lctx.trace_flags = format(ctx.trace_flags, "02x")
        lctx.tracer, lctx.span = self, span
        lctx._otel_token = otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def routed(lctx: LocalContext, method: str) -> None:
        """The route is known: name the span after it (low cardinality) and stamp the handler."""
        span = lctx.span
        span.update_name(f"{method} {lctx.route}")
        span.set_attributes({"http.route": lctx.route, "gati.handler": lctx.handler, "gati.version": lctx.version})

    @staticmethod
    def end(lctx: LocalContext, status: int, error: str | None) -> None:
        span = lctx.span
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            # A server span fails on a 5xx only (a 4xx is the client's); error.type: the error's code or
            # exception class when one escaped, else the status code (semantic conventions)
            span.set_attribute("error.type", error or str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(lctx._otel_token)
        lctx.tracer = lctx.span = None

    @contextlib.contextmanager
    def child(self, name: str, attributes: dict[str, Any]) -> Iterator[trace.Span]:
        """A span under the current one (a hook, the handler): current while the block runs, ERROR if it raises."""
        with self.otel.start_as_current_span(name, attributes=attributes) as span:
            yield span


def _processors(provider: TracerProvider) -> tuple:
    return getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
