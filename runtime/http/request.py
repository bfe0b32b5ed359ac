"""The request a handler sees: small and read-only, with the aiohttp request behind it as `raw`.

    req.params       # from the route: handlers/users/[id].py -> {"id": "7"}
    req.data         # the body, validated against the route's REQUEST type (see runtime.http.gtype)
    req.headers      # normalised by ingress: lower-case names, no hop-by-hop headers
    await req.json() # the body as JSON (400 when it is not); the size limit applies (413)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy

from runtime.core.errors import GatiError

T = TypeVar("T")
DEFAULT_MAX_BODY = 1024 * 1024

# Headers about one connection, not about the request: a handler must not act on them.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
)


class BadRequest(GatiError):
    code = "bad_request"
    http_status = 400


class PayloadTooLarge(GatiError):
    code = "payload_too_large"
    http_status = 413


_NO_DATA = object()


class Request(Generic[T]):
    """`req: Request[NewUser]` in a handler's signature declares the body type (like REQUEST = NewUser)."""

    __slots__ = ("raw", "params", "max_body", "_data", "_body", "_headers")

    def __init__(self, raw: web.Request, params: dict[str, str], max_body: int = DEFAULT_MAX_BODY):
        self.raw = raw  # the aiohttp request, for what this class does not cover (streaming, remote, cookies)
        self.params = params
        self.max_body = max_body
        self._data: Any = _NO_DATA
        self._body: bytes | None = None
        self._headers: CIMultiDictProxy[str] | None = None

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
        if self._headers is None:
            self._headers = normalize_headers(self.raw.headers)
        return self._headers

    @property
    def data(self) -> T:
        if self._data is _NO_DATA:
            raise GatiError(
                "req.data is the validated body, and this route declares no request type",
                fix="declare one: REQUEST = MyTypedDict in the handler file (or req: Request[MyType]); or read await req.json()",
            )
        return self._data

    @data.setter
    def data(self, value: T) -> None:
        self._data = value

    async def body(self) -> bytes:
        """The body, at most max_body bytes (413 past that, also for chunked bodies)."""
        if self._body is None:
            length = self.raw.content_length
            if length is not None and length > self.max_body:
                raise too_large(length, self.max_body)
            if length is not None:
                raw = self.raw
                content = raw.content
                if getattr(raw, "_read_bytes", False) is None and content.is_eof():
                    # All of it came with the headers (a small body usually does): taken as it lies, without
                    # aiohttp's read() loop and copy (1 µs a request). Kept where raw.read() finds it, as read() keeps it.
                    # _read_bytes is aiohttp's own (3.9 to 3.14): were it renamed, read() below does the work.
                    self._body = raw._read_bytes = bytes(content.read_nowait())
                else:
                    self._body = await raw.read()
            else:
                data = bytearray()
                async for chunk in self.raw.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > self.max_body:
                        raise too_large(len(data), self.max_body)
                self._body = bytes(data)
                # aiohttp's cache of read(), where a later raw.read() and snapshots (runtime.http.recorder) find the body
                self.raw._read_bytes = self._body
        return self._body

    def replace_body(self, data: bytes) -> None:
        """Serve the handler this body instead of the client's (transformers, runtime.http.versions)."""
        self._body, self._data = data, _NO_DATA

    async def text(self) -> str:
        return (await self.body()).decode(self.raw.charset or "utf-8")

    async def json(self) -> Any:
        """The body as JSON; a missing or malformed body is the client's fault (400), not a 500."""
        body = await self.body()
        if not body.strip():
            raise BadRequest("the request has no body, JSON expected", fix="send a JSON body")
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}", fix="send a valid JSON body") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} params={self.params}>"


def too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body has {size}{'+' if size > limit else ''} bytes; this route takes at most {limit}",
        fix="send a smaller body, or raise MAX_BODY_BYTES in the handler file or [ingress] max_body_bytes in gati.toml",
        limit=limit,
    )


def normalize_headers(headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str]:
    """Lower-case names, trimmed values, no hop-by-hop headers (nor those Connection names)."""
    drop = set(HOP_BY_HOP)
    for value in headers.getall("Connection", ()):
        drop.update(token.strip().lower() for token in value.split(","))
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in drop:
            out.add(lower, value.strip())
    return CIMultiDictProxy(out)
