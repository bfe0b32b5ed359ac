"""The aiohttp resource that hands every path the app's own routes do not claim to gati's dispatch.

aiohttp resolves each request through its router before any handler runs. Registered as
`/{path:.*}`, the catch-all was a DynamicResource: a regular expression over the path and its
parameter unquoted, per request, for a parameter nobody reads (runtime.http.dispatch matches the
raw path with gati's own Router). This resource matches every path as it is. It sits where that
one sat, in aiohttp's index under "/", after the app's own routes: /healthz, /metrics and the
rest still win on their paths.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

_NO_PARAMS: dict[str, str] = {}  # aiohttp copies it into each request's match_info


class Everything(web.Resource):
    @property
    def canonical(self) -> str:
        return "/"

    def _match(self, path: str) -> dict[str, str]:
        return _NO_PARAMS

    def raw_match(self, path: str) -> bool:
        return False  # never reused by a later add_route

    def get_info(self) -> dict[str, Any]:
        return {"path": "/", "matches": "every path"}

    def url_for(self) -> URL:
        return URL.build(path="/", encoded=True)

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("the catch-all serves a whole application, not a sub-application")

    def __repr__(self) -> str:
        return "<Everything />"


def add_catchall(app: web.Application, handler: Any) -> None:
    """Serve every method of every path no earlier route claims with handler."""
    resource = Everything()
    app.router.register_resource(resource)
    resource.add_route("*", handler)
