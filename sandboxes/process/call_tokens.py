"""Call tokens: which call a host service request or an egress proxy request serves.

One module process serves several calls at once and reaches the host through one socket
and one proxy: the socket says which module asks, never for which call. So each call is
handed an unguessable token (CallContext.call_token) that the module presents on every
host request and proxy request (gati_sdk.protocol.wire says how). The token, not anything
the module says about itself, attributes the request to its call in the audit log.
A token that is missing, unknown, or whose call has ended is refused and audited as such:
nothing is attributed by guessing, and a thread left behind by a finished call acts for
no one.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from runtime.core.call import CallContext
from runtime.core.errors import GatiError
from runtime.core.host import Host

# Ended calls remembered, so that a late request is told its call ended (and is recorded
# under that call) rather than "unknown"; bounded, as a module may make many calls.
ENDED_REMEMBERED = 1024


class CallTokenRefused(GatiError):
    code = "call_token_refused"
    http_status = 403


class CallTokens:
    """The calls in flight of one module instance, by token; one per instance."""

    def __init__(self, host: Host):
        self.host = host
        self._live: dict[str, CallContext] = {}
        self._ended: OrderedDict[str, CallContext] = OrderedDict()

    @contextmanager
    def issued(self, ctx: CallContext) -> Iterator[str]:
        """A fresh token naming this call while the block runs."""
        token = secrets.token_urlsafe(32)
        self._live[token] = ctx
        try:
            yield token
        finally:
            self._ended[token] = self._live.pop(token)
            while len(self._ended) > ENDED_REMEMBERED:
                self._ended.popitem(last=False)

    @property
    def in_flight(self) -> int:
        return len(self._live)

    def context(self, token: str, capability: str, target: str) -> CallContext:
        """The call a token names; else audit the refusal of `capability` on `target` and raise."""
        ctx = self._live.get(token)
        if ctx is not None:
            return ctx
        name = self.host.manifest.name
        ended = self._ended.get(token) if token else None
        if ended is not None:
            ctx, reason = ended, "the call this token was issued to has ended"
        else:
            ctx = CallContext(caller=f"module:{name}")
            reason = "unknown call token" if token else "no call token"
        self.host.refuse(ctx, capability, target, reason)
        raise CallTokenRefused(
            f"module {name!r} may not use {capability} on {target!r}: {reason}",
            fix="present the call_token of the call this request serves (CallContext.call_token; the gati SDKs do); "
            "a request made after its call ended acts for no one",
            module=name,
            capability=capability,
            target=target,
            reason=reason,
        )
