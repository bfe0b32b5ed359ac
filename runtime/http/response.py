"""The response a handler fills in: every setter returns the response, so calls chain.

    res.status(201).header("Location", "/users/7").json({"id": 7})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web


def _to_builtin(obj: Any) -> Any:
    # gctx.config values are frozen mappings and lists; handlers may return them as they are.
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, str):  # str subclasses, such as the header names of req.headers
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-encodable: return dicts, lists, strings, numbers, booleans or None")


_encoder = msgspec.json.Encoder(enc_hook=_to_builtin)


def encode_json(obj: Any) -> bytes:
    return _encoder.encode(obj)


class Response:
    __slots__ = ("status_code", "headers", "_body", "_content_type")

    def __init__(self) -> None:
        self.status_code = 200
        self.headers: dict[str, str] = {}
        self._body: bytes | None = None
        self._content_type: str | None = None

    @property
    def has_body(self) -> bool:
        return self._body is not None

    @property
    def content(self) -> bytes | None:
        return self._body

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type", self._content_type)

    def status(self, code: int) -> "Response":
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"{code!r} is not an HTTP status code (100-599)")
        self.status_code = code
        return self

    def header(self, name: str, value: str) -> "Response":
        self.headers[name] = str(value)
        return self

    def json(self, obj: Any) -> "Response":
        # Encode now, so an unencodable value fails inside the handler's own call, at its line.
        return self.body(encode_json(obj), "application/json")

    def text(self, text: str) -> "Response":
        return self.body(text.encode(), "text/plain; charset=utf-8")

    def body(self, data: bytes, content_type: str = "application/octet-stream") -> "Response":
        self._body, self._content_type = bytes(data), content_type
        return self

    def to_aiohttp(self) -> web.Response:
        if not self.headers:  # most answers: no CIMultiDict made from an empty dict
            resp = web.Response(status=self.status_code, body=self._body)
            if self._content_type:
                resp.headers["Content-Type"] = self._content_type
            return resp
        resp = web.Response(status=self.status_code, body=self._body, headers=self.headers)
        if self._content_type and "Content-Type" not in resp.headers:
            resp.headers["Content-Type"] = self._content_type
        return resp
