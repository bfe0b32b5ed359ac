"""Ordinary HTTP clients through gati's egress proxy: the call token, and refusals as exceptions.

Inside the sandbox HTTP_PROXY and HTTPS_PROXY point at the egress proxy. Module.serve()
hooks http.client, the layer urllib, urllib3 and requests all stand on, so that on a
connection to that proxy:

- every request presents the token of the call it is made for (call.py): the CONNECT of
  an https request and each plain http request carry Proxy-Authorization (protocol/wire.py);
- the proxy's own refusal raises, from the line that made the request, what a host call's
  refusal raises: CapabilityDenied (code capability_denied, `details["grant"]` naming the
  manifest line to add) or HostError (a refused call token, an unreachable host). Without
  this an https refusal reaches the module as "Tunnel connection failed: 403" and the grant
  is lost. The exceptions are not OSError, so urllib and requests pass them on unwrapped.

A refusal is told from an upstream server's own 403 by X-Gati-Denied-For, a digest of the
token the request presented, which an upstream never sees.

Clients that do not use http.client (httpx, aiohttp, ...) present the token themselves:
`ctx.proxy_url` is the proxy's URL with it (http://gati:TOKEN@127.0.0.1:3128).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request

from gati_sdk.call import current_token
from gati_sdk.errors import HostError, from_body
from gati_sdk.protocol import wire

_proxies: set[tuple[str, int]] = set()  # (host, port) of the egress proxy, from the environment

_set_tunnel = http.client.HTTPConnection.set_tunnel
_putrequest = http.client.HTTPConnection.putrequest
_getresponse = http.client.HTTPConnection.getresponse


def install() -> None:
    """Hook http.client for the proxy named by HTTP_PROXY / HTTPS_PROXY (Module.serve does this)."""
    for scheme, url in urllib.request.getproxies_environment().items():
        if scheme in ("http", "https"):
            parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
            if parts.hostname:
                _proxies.add((parts.hostname, parts.port or 80))
    http.client.HTTPConnection.set_tunnel = _set_tunnel_presenting_token
    http.client.HTTPConnection.putrequest = _putrequest_presenting_token
    http.client.HTTPConnection.getresponse = _getresponse_raising_refusal


def proxy_url(token: str) -> str | None:
    """The egress proxy's URL carrying a call token, for clients that take a proxy URL."""
    if not _proxies:
        url = urllib.request.getproxies_environment().get("http")
        if not url:
            return None
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname, parts.port or 80
    else:
        host, port = sorted(_proxies)[0]
    return f"http://gati:{urllib.parse.quote(token, safe='')}@{host}:{port}"


def _to_proxy(conn: http.client.HTTPConnection) -> bool:
    return (conn.host, conn.port) in _proxies


def _set_tunnel_presenting_token(self, host, port=None, headers=None, **kwargs):
    if _to_proxy(self):
        token = current_token()
        headers = dict(headers or {})  # never the caller's dict: urllib3 shares one per pool
        if token and not any(k.lower() == wire.PROXY_AUTHORIZATION.lower() for k in headers):
            headers[wire.PROXY_AUTHORIZATION] = wire.proxy_authorization(token)
        presented = wire.token_from_proxy_authorization(
            next((v for k, v in headers.items() if k.lower() == wire.PROXY_AUTHORIZATION.lower()), "")
        )
        # An instance attribute, so it covers urllib3's own copy of _tunnel as well as http.client's.
        self._tunnel = _TunnelOrRefusal(self, type(self)._tunnel, presented)
    return _set_tunnel(self, host, port, headers, **kwargs)


def _putrequest_presenting_token(self, method, url, *args, **kwargs):
    _putrequest(self, method, url, *args, **kwargs)
    self._gati_presented = None
    if _to_proxy(self) and not getattr(self, "_tunnel_host", None) and "://" in url:
        token = current_token()
        if token:
            self.putheader(wire.PROXY_AUTHORIZATION, wire.proxy_authorization(token))
        self._gati_presented = token


def _getresponse_raising_refusal(self):
    response = _getresponse(self)
    presented = getattr(self, "_gati_presented", None)
    if presented is not None and response.getheader(wire.DENIED) is not None:
        if response.getheader(wire.DENIED_FOR) == wire.token_digest(presented):
            # from the stream, not response.read(): the answer to a HEAD has a body here, which read() would skip
            refusal = _refusal(response.fp.read(int(response.getheader("Content-Length") or 0)))
            self.close()
            raise refusal
    return response


class _TunnelOrRefusal:
    """http.client's CONNECT, reading the proxy's refusal before http.client drops it."""

    def __init__(self, conn, tunnel, presented: str):
        self.conn, self.tunnel, self.presented = conn, tunnel, presented

    def __call__(self) -> None:
        refusals: list[HostError] = []
        presented = self.presented
        base = self.conn.response_class

        class ConnectResponse(base):
            def _read_status(self):
                status = super()._read_status()
                if status[1] != 200:
                    headers = http.client.parse_headers(self.fp)
                    if headers.get(wire.DENIED) is not None and headers.get(wire.DENIED_FOR) == wire.token_digest(presented):
                        refusals.append(_refusal(self.fp.read(int(headers.get("Content-Length") or 0))))
                return status

        self.conn.response_class = ConnectResponse
        try:
            self.tunnel(self.conn)
        except OSError:
            if refusals:
                raise refusals[0] from None
            raise
        finally:
            self.conn.response_class = base


def _refusal(body: bytes) -> HostError:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "egress_failed", "message": "the egress proxy refused the request"}
    return from_body(error)
