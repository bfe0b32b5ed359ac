"""POST /thumbs : the size of a thumbnail, for a typed JSON body (validated before the handler runs)."""

from typing import Annotated, TypedDict

from msgspec import Meta

Pixels = Annotated[int, Meta(ge=1, le=1_000_000_000)]


class ThumbRequest(TypedDict):
    width: Pixels
    height: Pixels
    max: Pixels


class Thumbnail(TypedDict):
    width: int
    height: int
    scale: float


METHODS = ["POST"]
REQUEST = ThumbRequest
RESPONSE = Thumbnail


async def handler(req, res, gctx, lctx):
    return await gctx.modules.thumbs.resize(req.data)
