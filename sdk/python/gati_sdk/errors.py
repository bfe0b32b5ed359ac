"""Errors a module raises or receives; `code` matches the runtime's error codes."""

from __future__ import annotations

from typing import Any, Mapping

from gati_sdk.protocol import wire


class ModuleError(Exception):
    """Raise from a method to report a failure to the caller (code module_error)."""

    code = "module_error"

    def __init__(self, message: str, *, code: str = "", fix: str = "", **details: str):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fix = fix
        self.details = {k: str(v) for k, v in details.items()}

    def to_dict(self) -> dict[str, Any]:
        """The plain wire form: {"code", "message", "fix"?, **details}."""
        return {"code": self.code, "message": self.message, **({"fix": self.fix} if self.fix else {}), **self.details}


class HostError(ModuleError):
    """The host refused or failed a request."""

    code = "host_error"


class CapabilityDenied(HostError):
    """The manifest does not grant this; `details["grant"]` is the line that would."""

    code = "capability_denied"


class KvConflict(HostError):
    """A compare-and-set or delete found the entry at another revision: `current_revision` (0: absent)."""

    code = "kv_conflict"

    @property
    def current_revision(self) -> int:
        return int(self.details.get("current_revision", "0"))


KINDS = {kind.code: kind for kind in (CapabilityDenied, KvConflict)}


def from_body(body: Mapping[str, Any]) -> HostError:
    """The exception for an error in its plain wire form (a host reply, the egress proxy's refusal)."""
    body = dict(body)
    code = str(body.pop("code", "") or "host_error")
    message = str(body.pop("message", "") or code)
    fix = str(body.pop("fix", "") or "")
    kind = KINDS.get(code, HostError)
    return kind(message, code=code, fix=fix, **body)


def from_error(err) -> HostError:
    """The exception for a gati.module.v1.Error message."""
    return from_body(wire.error_body(err))
