"""The runtime's side of the start-up handshake: the line is defined once, in gati_sdk.protocol.wire
(shared with the SDK, as go-plugin's HandshakeConfig); here a bad line becomes ModuleStartError."""

from __future__ import annotations

from gati_sdk.protocol import wire

from runtime.core.errors import GatiError


class ModuleStartError(GatiError):
    code = "module_start_failed"
    http_status = 502


def parse(line: str, module: str, stderr_tail: str = "") -> str:
    """The socket path from a handshake line, or a ModuleStartError that says what was wrong."""
    try:
        return wire.parse_handshake(line, module)
    except wire.HandshakeError as err:
        tail = {"stderr": stderr_tail} if stderr_tail else {}
        raise ModuleStartError(err.message, fix=err.fix or None, module=module, **tail) from None
