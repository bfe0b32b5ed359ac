"""Typed errors a handler can catch, each one serialisable to a structured JSON body.

Every error says what went wrong and what to do about it; the `code` is stable and
is what crosses process boundaries (gRPC, CLI exit output, HTTP error bodies).
"""

from __future__ import annotations

from typing import Any

# Every error class by its code, so that an error that crossed a process boundary (gRPC, a
# module's reply) comes back as the same type. Filled in by GatiError.__init_subclass__.
ERRORS_BY_CODE: dict[str, type["GatiError"]] = {}


class GatiError(Exception):
    code = "internal"
    http_status = 500
    # For the operator (the server log, the CLI), never in to_dict: what would tell a client or a
    # module more about the server than its own call needs, e.g. the names of every registered module.
    note: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ERRORS_BY_CODE.setdefault(cls.code, cls)

    def __init__(self, message: str, *, fix: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fix:
            body["fix"] = self.fix
        body.update(self.details)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> "GatiError":
        """Rebuild the typed error from its wire form (the inverse of to_dict)."""
        body = dict(body)
        kind = ERRORS_BY_CODE.get(body.pop("code", "internal"), GatiError)
        message = body.pop("message", "module error")
        fix = body.pop("fix", None)
        err = kind.__new__(kind)
        GatiError.__init__(err, message, fix=fix, **body)
        return err

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


ERRORS_BY_CODE[GatiError.code] = GatiError


class ManifestError(GatiError):
    """A module.toml that cannot be accepted: names the file, the key, the problem and the fix."""

    code = "manifest_invalid"

    def __init__(self, file: str, key: str, problem: str, fix: str):
        super().__init__(f"{file}: {key}: {problem}", fix=fix, file=file, key=key, problem=problem)


class ModuleNotFound(GatiError):
    code = "module_not_found"
    http_status = 500


class MethodNotFound(GatiError):
    code = "method_not_found"
    http_status = 500


class CapabilityDenied(GatiError):
    """Names the capability, the target and the manifest line that would grant it."""

    code = "capability_denied"
    http_status = 403

    def __init__(self, module: str, capability: str, target: str, grant: str, reason: str = "not declared"):
        super().__init__(
            f"module {module!r} may not use {capability} on {target!r}: {reason}",
            fix=f"add to {module}'s module.toml: {grant}",
            module=module,
            capability=capability,
            target=target,
            grant=grant,
            reason=reason,
        )


class ModuleTimeout(GatiError):
    code = "module_timeout"
    http_status = 504


class ModuleCrashed(GatiError):
    code = "module_crashed"
    http_status = 502


class ModuleBusy(GatiError):
    code = "module_busy"
    http_status = 503


class BadPayload(GatiError):
    code = "bad_payload"
    http_status = 500


class ModuleError(GatiError):
    """The module ran and reported an error of its own (its business, not the sandbox's)."""

    code = "module_error"
    http_status = 502


class IntegrityError(GatiError):
    code = "artifact_mismatch"
    http_status = 500


class StateUnavailable(GatiError):
    """Shared state (cluster mode's NATS server) did not answer: nothing was done, retrying may succeed."""

    code = "state_unavailable"
    http_status = 503


class HandlerTimeout(GatiError):
    code = "handler_timeout"
    http_status = 504



class VersionNotFound(GatiError):
    """A version constraint (a handler's pin, `name@^1`, a module grant) that no registered version satisfies."""

    code = "version_not_found"
    http_status = 500


class VersionUnhealthy(GatiError):
    """An exact pin to a module version its health checks took out of service."""

    code = "version_unhealthy"
    http_status = 503
