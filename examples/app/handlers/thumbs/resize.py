"""GET /thumbs/resize?width=W&height=H[&max=M] : thumbnail size from the thumbs module (C)."""

from typing import TypedDict

from runtime.http.request import BadRequest


class Thumbnail(TypedDict):
    width: int
    height: int
    scale: float


async def handler(req, res, gctx, lctx) -> Thumbnail:
    try:
        width, height = int(req.query["width"]), int(req.query["height"])
        largest = int(req.query.get("max", gctx.config["default_thumb_max"]))
    except (KeyError, ValueError):
        raise BadRequest("width and height must be whole numbers", fix="e.g. /thumbs/resize?width=1920&height=1080") from None
    return await gctx.modules.thumbs.resize({"width": width, "height": height, "max": largest})
