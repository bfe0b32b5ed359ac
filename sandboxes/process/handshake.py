"""The start-up handshake: one line on the module's stdout, as in hashicorp/go-plugin.

    GATI|1|unix|/run/gati/module.sock

fields: magic, protocol version, network, address.
"""

from __future__ import annotations

from runtime.core.errors import GatiError

MAGIC = "GATI"
PROTOCOL_VERSION = 1


class ModuleStartError(GatiError):
    code = "module_start_failed"
    http_status = 502


def parse(line: str, module: str, stderr_tail: str = "") -> str:
    """The socket path from a handshake line, or an error that says what was wrong."""
    parts = line.strip().split("|")
    tail = {"stderr": stderr_tail} if stderr_tail else {}
    if len(parts) != 4 or parts[0] != MAGIC:
        raise ModuleStartError(
            f"module {module} printed {line.strip()[:120]!r} instead of the handshake line",
            fix=f"print '{MAGIC}|{PROTOCOL_VERSION}|unix|SOCKET' on stdout once serving (the SDK does this)",
            module=module,
            **tail,
        )
    if parts[1] != str(PROTOCOL_VERSION):
        raise ModuleStartError(
            f"module {module} speaks handshake protocol {parts[1]!r}; this runtime speaks {PROTOCOL_VERSION}",
            fix="rebuild the module against a matching SDK",
            module=module,
            **tail,
        )
    if parts[2] != "unix" or not parts[3]:
        raise ModuleStartError(f"module {module} offered {parts[2]}:{parts[3]!r}; only unix sockets are accepted", module=module, **tail)
    return parts[3]
