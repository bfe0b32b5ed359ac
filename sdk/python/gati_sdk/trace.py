"""The W3C trace context of the call being served, as `ctx.trace`, and the caller's trace continued.

The runtime records each module call as a span of its request's trace and sends that span's
context along with the call, as gRPC metadata named like the HTTP headers (traceparent,
tracestate, baggage). `ctx.trace` holds it as text, whatever is installed:

    ctx.trace.trace_id          the request's trace
    ctx.trace.parent_id         the runtime's span of this call
    ctx.trace.headers()         {"traceparent": ..., ...}: pass them on (an HTTP call through egress)

When the module's image has opentelemetry-api (optional: the SDK needs only grpcio and
protobuf), the context is also attached while the method runs, so spans the module starts
with OpenTelemetry are children of the runtime's span: they join the request's trace wherever
the module's own OpenTelemetry SDK sends them (which needs egress to a collector).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Iterator

try:  # optional: without it, ctx.trace is all a module gets
    from opentelemetry import context as _otel_context
    from opentelemetry import propagate as _propagate
except ImportError:  # pragma: no cover - depends on the module's image
    _otel_context = None

KEYS = ("traceparent", "tracestate", "baggage")


@dataclass(frozen=True)
class Trace:
    traceparent: str = ""
    tracestate: str = ""
    baggage: str = ""

    @property
    def trace_id(self) -> str:
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) >= 4 else ""

    @property
    def parent_id(self) -> str:
        """The span id of the runtime's span of this call (the parent of the module's own spans)."""
        parts = self.traceparent.split("-")
        return parts[2] if len(parts) >= 4 else ""

    @property
    def sampled(self) -> bool:
        parts = self.traceparent.split("-")
        return len(parts) >= 4 and int(parts[3][:2] or "0", 16) & 1 == 1

    def headers(self) -> dict[str, str]:
        return {key: value for key, value in zip(KEYS, (self.traceparent, self.tracestate, self.baggage)) if value}


def from_metadata(metadata: Iterable[tuple[str, str]] | None) -> Trace:
    given = {key: value for key, value in metadata or () if key in KEYS and isinstance(value, str)}
    return Trace(**given)


@contextlib.contextmanager
def continued(trace: Trace) -> Iterator[None]:
    """While the block runs, OpenTelemetry's current context is the caller's (when opentelemetry-api is installed)."""
    if _otel_context is None or not trace.traceparent:
        yield
        return
    token = _otel_context.attach(_propagate.extract(trace.headers()))
    try:
        yield
    finally:
        _otel_context.detach(token)
