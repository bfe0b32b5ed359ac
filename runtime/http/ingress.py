"""Ingress: what happens to a request before its route's lifecycle runs.

    open:  a request id (ours, unless [ingress] trust_request_id), debug flags, lctx
    check: ambiguous headers (two Authorization or Host headers) -> 400
    admit: credentials (401/403, runtime.http.auth), rate limit (429, runtime.http.ratelimit),
           declared body size (413; bodies without Content-Length are cut while read)

Header normalisation itself (lower-case names, trimmed values, hop-by-hop headers dropped)
happens when a handler first reads req.headers (runtime.http.request.normalize_headers).
"""

from __future__ import annotations

import re
from typing import Awaitable

from aiohttp import web

from runtime.http.auth import Authenticator
from runtime.http.context import REQUEST_ID_RE, LocalContext, passed_on
from runtime.http.plan import RoutePlan
from runtime.http.ratelimit import Rate, RateLimiter, SharedRateLimiter
from runtime.http.request import BadRequest, too_large
from runtime.http.routing import Route

FLAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_FLAGS = 8
SINGLE = ("Authorization", "Host", "Content-Type", "X-API-Key")  # two different values would be read differently by different parts


class Ingress:
    def __init__(self, settings, authenticator: Authenticator, limiter: RateLimiter | None = None):
        self.settings = settings  # runtime.http.project.Ingress
        self.auth = authenticator
        self.limiter = limiter or RateLimiter()
        self.shared: SharedRateLimiter | None = None  # set at start-up in cluster mode: limits across instances
        self.default_rate = Rate.parse(settings.rate_limit) if settings.rate_limit else None
        self.single = SINGLE + ((settings.api_key_header,) if settings.api_key_header not in SINGLE else ())

    def open(self, request: web.Request) -> LocalContext:
        headers = request.headers
        given = headers.get("X-Request-Id")
        # An id from outside is kept only behind a proxy we trust: anyone else could reuse one and
        # make two requests look like one in logs, the audit log and execution records.
        traceparent = headers.get("traceparent")
        lctx = LocalContext(given if self.settings.trust_request_id else None, traceparent)
        if traceparent is not None and ("tracestate" in headers or "baggage" in headers):  # rare: a request without them pays nothing
            lctx.tracestate, lctx.baggage = passed_on(headers)
        if given and not self.settings.trust_request_id and REQUEST_ID_RE.fullmatch(given):
            lctx.client_request_id = given
        lctx.method, lctx.path = request.method, request.path
        flags = headers.get("X-Gati-Flags")
        if flags:
            lctx.flags = tuple(f for f in (x.strip().lower() for x in flags.split(",")) if FLAG_RE.fullmatch(f))[:MAX_FLAGS]
        return lctx

    def check(self, request: web.Request) -> None:
        headers = request.headers
        for name in self.single:
            values = headers.getall(name, ())
            if len(values) > 1:
                raise BadRequest(f"the request has {len(values)} {name} headers", fix=f"send one {name} header")

    def admit(self, request: web.Request, plan: RoutePlan, lctx: LocalContext) -> Awaitable[None] | None:
        """Authenticate, authorise, rate-limit and size-check the request for plan's route; raise the HTTP error if not.

        Returns what is left to await when the rate limit is shared across instances (cluster mode), else
        None: a request with nothing to wait for makes no coroutine."""
        # Public routes still learn who calls when credentials come along (lctx.auth); bad ones are refused there too.
        route = plan.route
        headers = request.headers
        sent = "Authorization" in headers or self.settings.api_key_header in headers
        principal = self.auth.authenticate(headers) if route.auth is not None or sent else None
        lctx.auth = principal
        if route.auth is not None:
            self.auth.require(route.auth, principal)
        rate = plan.rate
        if rate is not None:
            client = f"{principal.method}:{principal.subject}" if principal else f"ip:{request.remote}"
            if self.shared is not None:
                return self._admit_shared(route.pattern, client, rate, request, plan)
            self.limiter.hit(route.pattern, client, rate)
        _check_size(request, plan)
        return None

    async def _admit_shared(self, pattern: str, client: str, rate: Rate, request: web.Request, plan: RoutePlan) -> None:
        await self.shared.hit(pattern, client, rate)
        _check_size(request, plan)

    def max_body(self, route: Route) -> int:
        return route.max_body_bytes or self.settings.max_body_bytes


def _check_size(request: web.Request, plan: RoutePlan) -> None:
    length = request.content_length
    if length is not None and length > plan.max_body:
        raise too_large(length, plan.max_body)
