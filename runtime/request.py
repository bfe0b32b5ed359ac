"""The request a handler sees: small and read-only, with the aiohttp request behind it as `raw`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from runtime.errors import GatiError


class BadRequest(GatiError):
    code = "bad_request"
    http_status = 400


class Request:
    __slots__ = ("raw", "params")

    def __init__(self, raw: web.Request, params: dict[str, str]):
        self.raw = raw  # the aiohttp request, for what this class does not cover (streaming, remote, cookies)
        self.params = params  # from the route: handlers/users/[id].py -> {"id": ...}

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.raw.query

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.raw.headers

    async def body(self) -> bytes:
        return await self.raw.read()

    async def text(self) -> str:
        return await self.raw.text()

    async def json(self) -> Any:
        """The body as JSON; a missing or malformed body is the client's fault (400), not a 500."""
        body = await self.raw.read()
        if not body.strip():
            raise BadRequest("the request has no body, JSON expected", fix="send a JSON body")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}", fix="send a valid JSON body") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} params={self.params}>"
