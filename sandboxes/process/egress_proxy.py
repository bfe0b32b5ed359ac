"""Domain-based egress for code that uses ordinary HTTP clients (HTTP_PROXY / HTTPS_PROXY).

The proxy listens inside the sandbox's own network namespace (netns.py) and serves
one module: `CONNECT host:port` (https) and absolute-URI requests (`GET http://...`).
Each request names the call it serves by the call's token (Proxy-Authorization, see
gati_sdk.protocol.wire): one without the token of a call in flight is answered `407` and
audited. Then it goes through Host.egress, the same name rules, resolved-address checks
and audit events as the WASM host call, and connects only to an address that passed.
A refusal is answered `403` with the denial as JSON, naming the grant to add.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from gati_sdk.protocol import wire

from runtime.core.capabilities.egress import DEFAULT_PORTS, Target
from runtime.core.errors import CapabilityDenied, GatiError
from runtime.core.host import Host
from sandboxes.process.call_tokens import CallTokenRefused, CallTokens

PROXY_PORT = 3128
HEAD_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0


class EgressProxy:
    def __init__(self, host: Host, calls: CallTokens):
        self.host = host
        self.calls = calls
        self.servers: list[asyncio.base_events.Server] = []

    async def serve(self, sock) -> None:
        self.servers.append(await asyncio.start_server(self.handle, sock=sock))

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # The reader's limit (64 KiB) bounds the head: past it, readuntil raises LimitOverrunError.
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        try:
            await self._forward(head, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return await _reply(writer, 400, {"code": "bad_request", "message": "not an HTTP proxy request"})
        tunnel = method.upper() == "CONNECT"
        url = f"https://{target}" if tunnel else target
        token = wire.token_from_proxy_authorization(_header(lines, wire.PROXY_AUTHORIZATION))
        try:
            egress_target, addresses = await self.host.egress(self.calls.context(token, "egress", url), url)
        except CallTokenRefused as refused:
            return await _reply(writer, 407, refused.to_dict(), token)
        except CapabilityDenied as denied:
            return await _reply(writer, 403, denied.to_dict(), token)
        except GatiError as err:
            return await _reply(writer, 502, err.to_dict(), token)
        upstream = await _connect(addresses, egress_target.port)
        if upstream is None:
            return await _reply(writer, 502, {"code": "egress_failed", "message": f"cannot connect to {egress_target}"}, token)
        up_reader, up_writer = upstream
        if tunnel:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            parts = urlsplit(target)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            # The Host sent is the one that was checked: the module's own header could name another
            # site behind the same address (a CDN, a virtual host), reached under this target's grant.
            headers = [h for h in lines[1:] if _forwarded(h)]
            host_line = f"Host: {_host_header(egress_target)}"
            up_writer.write("\r\n".join([f"{method} {path} {version}", host_line, *headers, "Connection: close", "", ""]).encode("latin-1"))
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


def _forwarded(line: str) -> bool:
    """Is this header line passed on? Not Host, Connection, Proxy-*, nor an obsolete folded continuation."""
    name = line.split(":", 1)[0].strip().lower()
    return bool(line) and line[:1] not in (" ", "\t") and name not in ("host", "connection") and not name.startswith("proxy-")


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if DEFAULT_PORTS.get(target.scheme) == target.port else f"{host}:{target.port}"


async def _connect(addresses, port: int):
    for ip in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(str(ip), port), 10.0)
        except (OSError, asyncio.TimeoutError):
            continue
    return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT_S):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.TimeoutError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass


def _header(lines: list[str], name: str) -> str | None:
    prefix = name.lower() + ":"
    return next((line[len(prefix):].strip() for line in lines[1:] if line.lower().startswith(prefix)), None)


async def _reply(writer: asyncio.StreamWriter, status: int, body: dict, token: str = "") -> None:
    data = json.dumps({"error": body}).encode()
    reason = {400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required", 502: "Bad Gateway"}[status]
    challenge = 'Proxy-Authenticate: Basic realm="gati call token"\r\n' if status == 407 else ""
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{wire.DENIED}: {body.get('capability', '')}\r\n"
        f"{wire.DENIED_FOR}: {wire.token_digest(token)}\r\n{challenge}"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data
    )
    await writer.drain()
