"""OpenTelemetry spans for requests, continuing the caller's W3C trace context.

Each request gets one server span named `METHOD /route/{param}` whose attributes name the
request id, the handler and its version; its trace id and span id are lctx.trace_id and
lctx.span_id, and the response's traceparent header points at it.

Spans are built only when something consumes them: when the process has an SDK tracer
provider installed (with its exporters), or once a span processor is added here
(`app[TRACER].add_span_processor(BatchSpanProcessor(exporter))`). Until then a request
costs no span at all; lctx still carries the W3C ids (continuing the caller's trace id,
with a fresh span id of its own) into module calls and the traceparent response header.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from runtime.http.context import LocalContext, parse_traceparent


class Tracer:
    def __init__(self, provider: trace.TracerProvider | None = None):
        installed = provider is not None or isinstance(trace.get_tracer_provider(), TracerProvider)
        if provider is None:
            current = trace.get_tracer_provider()
            provider = current if isinstance(current, TracerProvider) else TracerProvider()
        self.provider = provider
        self.exporting = installed  # someone set up this provider, so someone reads its spans
        self._tracer = provider.get_tracer("gati")

    def add_span_processor(self, processor) -> None:
        """Send this app's spans to processor (an exporter's BatchSpanProcessor, or a test's in-memory one)."""
        self.provider.add_span_processor(processor)
        self.exporting = True

    def start(self, name: str, traceparent: str | None, lctx: LocalContext, attributes: dict) -> trace.Span:
        """Start the request's span as a child of the caller's (when the header is valid) and adopt its ids in lctx."""
        if not self.exporting:
            return trace.INVALID_SPAN  # no-op methods; lctx's own ids stand
        parent = None
        parsed = parse_traceparent(traceparent)
        if parsed:
            trace_id, parent_id, flags = parsed
            remote = SpanContext(int(trace_id, 16), int(parent_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        ctx = span.get_span_context()
        if ctx.is_valid:
            lctx.trace_id = format(ctx.trace_id, "032x")
            lctx.span_id = format(ctx.span_id, "016x")
            lctx.trace_flags = format(ctx.trace_flags, "02x")
        return span
