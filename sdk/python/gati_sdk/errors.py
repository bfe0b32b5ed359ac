"""Errors a module raises or receives; `code` matches the runtime's error codes."""


class ModuleError(Exception):
    """Raise from a method to report a failure to the caller (code module_error)."""

    code = "module_error"

    def __init__(self, message: str, *, code: str = "", fix: str = "", **details: str):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fix = fix
        self.details = {k: str(v) for k, v in details.items()}


class HostError(ModuleError):
    """The host refused or failed a request."""

    code = "host_error"


class CapabilityDenied(HostError):
    """The manifest does not grant this; `details["grant"]` is the line that would."""

    code = "capability_denied"


def from_error(err) -> HostError:
    """Build the exception for a gati.module.v1.Error message."""
    kind = CapabilityDenied if err.code == "capability_denied" else HostError
    return kind(err.message, code=err.code, fix=err.fix, **dict(err.details))
