"""Breaking or not: what a client of the older version would see from the newer one.

A step from version A to version B of a route breaks clients when
  - B does not serve an HTTP method A serves;
  - the request type now refuses a body A accepted (a new required field, a removed field,
    a narrower type or constraint), or B declares a request type where A took any body;
  - the response type may now hold an answer a reader of A cannot read (a removed required
    field, a wider type), or B drops the response type A promised.
Adding an optional request field or a response field is not breaking (tolerant readers).
The rules per change are runtime.http.gtype.diff's; this decides per pair of versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.http.gtype import GType, diff


@dataclass(frozen=True)
class Compat:
    breaking: bool
    reasons: tuple[str, ...]  # "request $.name: required field added", ...


def compare(
    old_request: GType | None,
    new_request: GType | None,
    old_response: GType | None,
    new_response: GType | None,
    lost_methods: tuple[str, ...] = (),
) -> Compat:
    reasons: list[str] = [f"method {m} is no longer served" for m in lost_methods]
    if new_request is not None:
        if old_request is None:
            reasons.append("request: a body type is now declared where any body was taken")
        else:
            d = diff(old_request, new_request, role="request")
            reasons += [f"request {c.path}: {c.what}" for c in d.changes if d.is_breaking(c)]
    if old_response is not None:
        if new_response is None:
            reasons.append("response: the declared type was dropped")
        else:
            d = diff(old_response, new_response, role="response")
            reasons += [f"response {c.path}: {c.what}" for c in d.changes if d.is_breaking(c)]
    return Compat(bool(reasons), tuple(reasons))
