"""Who may use the playground: loopback without a token, anything else only with one.

The playground shows request headers and bodies and can pause, edit and replay requests, so:

- listening beyond loopback, it needs a token from the secrets manager ([playground] token_secret,
  16 characters or more); without one the server refuses to start. The token comes as
  `Authorization: Bearer <token>`, or once as `?token=` on the page, which sets an HttpOnly,
  SameSite=Strict cookie for the playground's path;
- on loopback, no token, but the Host header must name loopback too: a web page elsewhere cannot
  reach it by pointing a name of its own at 127.0.0.1 (DNS rebinding);
- every request that changes something (POST, PUT, DELETE) carries `X-Gati-Playground: 1`, a
  header a cross-site form cannot send and a cross-site script cannot without a CORS preflight,
  which the playground never grants.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from aiohttp import web

from runtime.http.project import ProjectError

COOKIE = "gati_playground"
CSRF_HEADER = "X-Gati-Playground"
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    def __init__(self, project: Any, secrets: Any, listen_host: str, base: str):
        settings = project.settings.playground
        self.base = base
        self.token: str | None = None
        if not is_loopback(listen_host):
            token = secrets.get(settings.token_secret)
            if not token or len(token) < MIN_TOKEN:
                raise ProjectError(
                    project.dir / "gati.toml", "playground.enabled",
                    f"the playground on {listen_host} (beyond loopback) needs the secret {settings.token_secret!r}, {MIN_TOKEN} characters or more",
                    f"set it, e.g. GATI_SECRET_{settings.token_secret.upper()}=$(openssl rand -hex 16); "
                    "or listen on 127.0.0.1; or set [playground] enabled = false",
                )
            self.token = token

    def refused(self, request: web.Request) -> web.StreamResponse | None:
        """The answer refusing request, or None when it may go on."""
        if self.token is None:
            host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
            if not is_loopback(host):
                return _error(403, "forbidden", f"the playground answers only to a loopback Host, not {request.host!r}", "open it as http://127.0.0.1:PORT")
        elif not self._token_given(request):
            return _error(
                401, "unauthorized", "the playground needs its token",
                f"open {self.base}/?token=<token> once, or send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="gati-playground"'},
            )
        if request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
            return _error(403, "forbidden", f"a change through the playground needs the header {CSRF_HEADER}: 1", "send it (the playground's page does)")
        return None

    def _token_given(self, request: web.Request) -> bool:
        expected = self.token.encode()
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), expected):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), expected)

    def enter(self, request: web.Request) -> web.StreamResponse | None:
        """The page opened with ?token=: keep it in a cookie and drop it from the address bar."""
        given = request.query.get("token")
        if self.token is None or given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        resp = web.Response(status=303, headers={"Location": f"{self.base}/"})
        resp.set_cookie(COOKIE, given, path=self.base, httponly=True, samesite="Strict")
        return resp


def _error(status: int, code: str, message: str, fix: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "fix": fix}}, status=status, headers=headers)
