"""The gati wire protocol, beyond the messages of proto/: defined once, used by both sides.

As go-plugin's client and server embed one HandshakeConfig, the runtime (sandboxes/process,
runtime/modules) and the module SDK (gati_sdk) import this file, so the two cannot drift:

- the start-up handshake, one line on the module's stdout once it serves:

      GATI|2|unix|/run/gati/module.sock        magic | protocol version | network | address

- the call token: each call hands the module an unguessable token (CallContext.call_token)
  that names the call; the module presents it in `call_token` of every host service request
  and as the password of `Proxy-Authorization: Basic` on every egress proxy request (what an
  ordinary HTTP client sends for the proxy URL http://gati:TOKEN@127.0.0.1:3128);
- a refusal of the egress proxy: status 403 (or 407 for a token it refused), the header
  X-Gati-Denied, the error as JSON `{"error": {...}}`, and X-Gati-Denied-For, a digest of the
  token the request presented, so that a module can tell the proxy's own refusal from an
  upstream server's answer (an upstream never sees the token);
- an error on the wire: gati.module.v1.Error <-> its plain form, the flat dict
  {"code", "message", "fix"?, **details} that runtime errors and SDK errors are built from.

Plain Python and the generated messages only: the SDK must not import the runtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Mapping

from gati_sdk.protocol.gati.module.v1 import module_pb2

MAGIC = "GATI"
# Bumped on any change a module built for the previous version would get wrong:
# 2 = calls carry call_token, host requests present it (field 1, formerly request_id).
PROTOCOL_VERSION = 2
NETWORK = "unix"


# -- the handshake ------------------------------------------------------------------------


class HandshakeError(ValueError):
    """A handshake line that cannot be accepted: what was wrong and what to do about it."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.fix = fix


def handshake_line(socket_path: str) -> str:
    return f"{MAGIC}|{PROTOCOL_VERSION}|{NETWORK}|{socket_path}"


def parse_handshake(line: str, module: str) -> str:
    """The socket path a handshake line offers, or HandshakeError saying what was wrong."""
    parts = line.strip().split("|")
    if len(parts) != 4 or parts[0] != MAGIC:
        raise HandshakeError(
            f"module {module} printed {line.strip()[:120]!r} instead of the handshake line",
            f"print '{handshake_line('SOCKET')}' on stdout once serving (the SDK does this)",
        )
    if parts[1] != str(PROTOCOL_VERSION):
        raise HandshakeError(
            f"module {module} speaks handshake protocol {parts[1]!r}; this runtime speaks {PROTOCOL_VERSION}",
            "rebuild the module against a matching SDK",
        )
    if parts[2] != NETWORK or not parts[3]:
        raise HandshakeError(f"module {module} offered {parts[2]}:{parts[3]!r}; only unix sockets are accepted")
    return parts[3]


# -- the call token on egress proxy requests ------------------------------------------------

PROXY_AUTHORIZATION = "Proxy-Authorization"
DENIED = "X-Gati-Denied"  # the capability refused ("egress"), or "call" for a refused token
DENIED_FOR = "X-Gati-Denied-For"


def proxy_authorization(token: str) -> str:
    """The Proxy-Authorization value that presents a call token (user name "gati")."""
    return "Basic " + base64.b64encode(f"gati:{token}".encode()).decode("ascii")


def token_from_proxy_authorization(value: str | None) -> str:
    """The call token of a Proxy-Authorization value (any user name, the token as password); "" if none."""
    scheme, _, credentials = (value or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def token_digest(token: str) -> str:
    """What a refusal says of the token it answers; the token cannot be recovered from it."""
    return hashlib.sha256(f"gati-denied-for:{token}".encode()).hexdigest()[:32]


# -- errors -----------------------------------------------------------------------------------

_FIELDS = ("code", "message", "fix")


def error_message(body: Mapping[str, Any]) -> module_pb2.Error:
    """The wire form of an error in its plain form (details travel as strings)."""
    details = {str(k): str(v) for k, v in body.items() if k not in _FIELDS and v is not None}
    return module_pb2.Error(
        code=str(body.get("code") or "internal"), message=str(body.get("message") or ""), fix=str(body.get("fix") or ""), details=details
    )


def error_body(err: module_pb2.Error) -> dict[str, Any]:
    """The plain form of a wire error: {"code", "message", "fix"?, **details}."""
    body: dict[str, Any] = {"code": err.code or "internal", "message": err.message}
    if err.fix:
        body["fix"] = err.fix
    body.update({k: v for k, v in err.details.items() if k not in _FIELDS})
    return body
