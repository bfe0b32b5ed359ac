"""What one route runs, worked out once when routes are loaded: the request path reads it whole.

A request looks its plan up by its route (one dict look-up) instead of putting it together
each time: the lifecycle (handler, hooks, types), the secret grant, the timeout, the body
limit, the rate limit, the caller name its module calls carry and the manifest's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from runtime.core.secrets import Grant
from runtime.http.lifecycle import Lifecycle
from runtime.http.ratelimit import Rate
from runtime.http.routing import Route


@dataclass(frozen=True)
class RoutePlan:
    route: Route
    lifecycle: Lifecycle
    grant: Grant  # what gctx.secrets may read: the route's SECRETS and hooks.py's
    timeout_ms: int  # the whole lifecycle: TIMEOUT_MS, else [server] handler_timeout_ms
    max_body: int  # MAX_BODY_BYTES, else [ingress] max_body_bytes
    rate: Rate | None  # RATE_LIMIT, else [ingress] rate_limit
    caller: str  # "handler:/route": who the route's module calls come from
    fingerprint: str = ""  # of the route's handler manifest, named in its execution records
    pins: Mapping[str, str] | None = None  # its MODULES: module name -> version constraint (runtime.http.module_pins)

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000
