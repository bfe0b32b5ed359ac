"""Why a server could not listen, as a GatiError with the fix that fits (serve and dev share it)."""

from __future__ import annotations

import errno
import socket

from runtime.core.errors import GatiError


def cannot_listen(host: str, port: int, exc: OSError) -> Exception:
    """The bind error with the fix that fits it; any other OSError is not about listening."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return GatiError(
            f"{where}: {host!r} is neither an IP address nor a name that resolves ({exc.strerror})",
            fix="give an address of this machine, e.g. --host 127.0.0.1 (0.0.0.0: every interface)",
        )
    if exc.errno == errno.EADDRINUSE:
        return GatiError(f"{where}: the port is in use", fix="choose another --port, or stop what listens there")
    if exc.errno == errno.EADDRNOTAVAIL:
        return GatiError(f"{where}: {host} is not an address of this machine", fix="give one of its addresses, e.g. --host 127.0.0.1 (0.0.0.0: every interface)")
    if exc.errno == errno.EACCES and port < 1024:
        return GatiError(f"{where}: ports below 1024 need privileges", fix="choose --port 1024 or above")
    return exc
